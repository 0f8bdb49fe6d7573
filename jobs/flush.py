"""Stores the records POST /api/records buffered in Redis, into one "API
stream" upload a day, through the same validation and chunk writer as files.

No accepted record is lost: the buffer is renamed to a processing list, which
is stored a slice at a time and trimmed only after each slice is committed. A
flush that dies leaves the rest for the next one; a slice stored twice is
harmless, the unique index turns the second time into duplicates.
"""
import json
import logging
from datetime import date

import psycopg
from flask import current_app
from redis.exceptions import ResponseError

from jobs.chunk_writer import ChunkWriter
from jobs.events import UploadEvents
from jobs.progress import save_progress
from jobs.rows import Chunk
from webapp.api.buffer import BUFFER, PROCESSING
from webapp.csv_contract import split_fields
from webapp.extensions import db
from webapp.models import Upload, UploadStatus, utcnow
from webapp.queueing import redis_connection

log = logging.getLogger(__name__)
STREAM_SOURCE = "api-stream"
LOCK = "intake:api-buffer:lock"
# A flush that died holds the lock this long at most; each slice renews it.
LOCK_SECONDS = 10
SLICE = 10_000


def flush_api_buffer():
    """RQ entry point (periodic, and enqueued early when the buffer is large);
    returns how many records it stored."""
    redis = redis_connection()
    lock = redis.lock(LOCK, timeout=LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        return 0
    try:
        stored = 0
        for items in _claimed_slices(redis):
            _store(items, redis)
            redis.ltrim(PROCESSING, len(items), -1)
            lock.reacquire()
            stored += len(items)
        return stored
    finally:
        lock.release()


def _claimed_slices(redis):
    """Slices of the records to store: a dead flush's first, else everything buffered so far."""
    if not redis.exists(PROCESSING):
        try:
            redis.rename(BUFFER, PROCESSING)
        except ResponseError:  # no buffer: nothing arrived
            return
    while items := redis.lrange(PROCESSING, 0, SLICE - 1):
        yield [json.loads(item) for item in items]


def _store(items, redis):
    with psycopg.connect(current_app.config["DATABASE_URL"], autocommit=True) as connection:
        upload_id, lines_before = _todays_upload()
        chunk = Chunk(unit="record", raw_is_source=False, upload_id=upload_id)
        for number, item in enumerate(items, lines_before + 1):
            values, extra = split_fields(item["record"])
            values["email"] = values.get("email", "").strip()
            chunk.lines += 1
            chunk.take(number, values, extra, json.dumps(item["record"], ensure_ascii=False))
        writer = ChunkWriter(connection, connection, upload_id, "skip")
        with connection.transaction():
            written = writer.write(chunk)
            save_progress(connection, upload_id, chunk, written, checkpoint=False)
    UploadEvents(redis, upload_id, log).changed(UploadStatus.COMPLETED, final=True)
    log.info("stored %s buffered API records in upload %s", len(items), upload_id)


def _todays_upload():
    """(id, lines so far) of today's API stream upload, created on first use."""
    filename = f"API stream {date.today().isoformat()}"
    upload = db.session.scalar(db.select(Upload).filter_by(source=STREAM_SOURCE, filename=filename))
    if upload is None:
        upload = Upload(filename=filename, source=STREAM_SOURCE, source_name="POST /api/records",
                        status=UploadStatus.COMPLETED, started_at=utcnow(), finished_at=utcnow())
        db.session.add(upload)
        db.session.commit()
    return upload.id, upload.lines_read
