"""The ingest job: one upload's file into `records`, chunk by chunk.

Each chunk's records, row errors, counters and checkpoint commit together, so a
job that dies is resumed from its checkpoint and no line is lost or stored
twice. Files stored all-or-nothing (on_duplicate=reject, or validate only) keep
their records in one transaction until the end instead, and start over when
resumed.
"""
import logging
import queue
import threading

import psycopg
from flask import current_app
from redis import Redis
from rq import Queue

from jobs import partition
from jobs.alerts import send_failure_email
from jobs.chunk_writer import ChunkWriter
from jobs.events import UploadEvents
from jobs.progress import save_progress
from jobs.readers import open_reader
from jobs.rows import UnterminatedQuote
from jobs.xlsx_rows import UnreadableWorkbook
from webapp.models import UploadStatus
from webapp.queueing import MAINTENANCE_QUEUE, UPKEEP_JOB_TIMEOUT

log = logging.getLogger(__name__)

# pg_try_advisory_lock(LOCK_SPACE, upload id) is held by whichever worker ingests the upload.
LOCK_SPACE = 1
# One chunk being written while the next is parsed: memory holds two chunks at most.
CHUNKS_IN_MEMORY = 2

START_OVER = """
    UPDATE uploads SET lines_read = 0, rows_inserted = 0, rows_updated = 0, rows_invalid = 0,
        duplicates_in_file = 0, duplicates_existing = 0, checkpoint_records = 0, bytes_processed = 0
    WHERE id = %s"""


def ingest_upload(upload_id):
    """RQ entry point (enqueued by name as jobs.ingest.ingest_upload)."""
    config = current_app.config
    # Closed on the way out: an API batch runs in the worker itself, which outlives the job.
    with psycopg.connect(config["DATABASE_URL"], autocommit=True) as control, \
            Redis.from_url(config["REDIS_URL"]) as redis:
        locked = control.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_SPACE, upload_id)).fetchone()[0]
        if not locked:
            log.info("upload %s is being ingested by another worker", upload_id)
            return "busy elsewhere"
        return Ingest(control, upload_id, config, UploadEvents(redis, upload_id, log)).run()


class Ingest:
    def __init__(self, control, upload_id, config, events):
        self.control = control
        self.upload_id = upload_id
        self.config = config
        self.events = events
        self.upload = control.execute(
            "SELECT status, cancel_requested, on_duplicate, validate_only, encoding, delimiter, filename, "
            "checkpoint_records, source, loading_alone, size_bytes FROM uploads WHERE id = %s",
            (upload_id,)).fetchone()

    @property
    def all_or_nothing(self):
        _, _, on_duplicate, validate_only, *_ = self.upload
        return validate_only or on_duplicate == "reject"

    def run(self):
        if self.upload is None:
            return "upload no longer exists"
        status, cancel_requested, *_ = self.upload
        if status in UploadStatus.FINISHED:
            return status
        if cancel_requested:
            return self.finish(UploadStatus.CANCELLED)
        self.run_started_at = self.control.execute(
            "UPDATE uploads SET status = %s, started_at = coalesce(started_at, now()), "
            "heartbeat_at = now(), failure_reason = NULL WHERE id = %s RETURNING now()",
            (UploadStatus.RUNNING, self.upload_id)).fetchone()[0]
        self.events.changed(UploadStatus.RUNNING, final=True)
        log.info("ingest started (resuming after record %s)", self.upload[7])
        try:
            return self.ingest()
        except (UnterminatedQuote, UnreadableWorkbook) as error:
            if not self.all_or_nothing:
                return self.finish(UploadStatus.FAILED, f"{error}; the lines before it were stored")
            self.control.execute("UPDATE uploads SET rows_inserted = 0, rows_updated = 0 WHERE id = %s",
                                 (self.upload_id,))
            return self.finish(UploadStatus.FAILED, f"{error}; nothing was stored")

    def ingest(self):
        with psycopg.connect(self.config["DATABASE_URL"], autocommit=True) as source_connection:
            _, _, _, _, encoding, delimiter, filename, checkpoint, origin, *_ = self.upload
            reader = open_reader(source_connection, self.upload_id, filename, encoding, delimiter,
                                 count_records=origin == "api")
            if not reader.header.has_email:
                return self.finish(UploadStatus.FAILED, "the header has no email column")
            if self.all_or_nothing:
                return self.store_all_or_nothing(reader)
            reader.skip(checkpoint)
            return self.store_chunk_by_chunk(reader)

    def own_table(self):
        """The table of its own that the upload loads into, made when a large one starts; None
        when its rows go to the shared partition (a small upload, or one whose table is attached)."""
        *_, checkpoint, origin, loading_alone, size_bytes = self.upload
        large = origin == "form" and size_bytes >= self.config["OWN_PARTITION_MIN_BYTES"]
        if loading_alone or (large and checkpoint == 0 and not partition.exists(self.control, self.upload_id)):
            return partition.create(self.control, self.upload_id)
        return None

    def store_chunk_by_chunk(self, reader):
        _, _, on_duplicate, *_ = self.upload
        writer = ChunkWriter(self.control, self.control, self.upload_id, on_duplicate, reader.update_columns,
                             self.own_table())
        for chunk in self.chunks(reader):
            with self.control.transaction():
                written = writer.write(chunk)
                cancel = save_progress(self.control, self.upload_id, chunk, written, checkpoint=True,
                                       run_started_at=self.run_started_at)
            self.events.changed(UploadStatus.RUNNING)
            if chunk.unreadable_rest:
                raise chunk.unreadable_rest
            if cancel:
                return self.finish(UploadStatus.CANCELLED)
        return self.finish(UploadStatus.COMPLETED)

    def store_all_or_nothing(self, reader):
        _, _, on_duplicate, validate_only, *_ = self.upload
        self.control.execute("DELETE FROM row_errors WHERE upload_id = %s", (self.upload_id,))
        self.control.execute(START_OVER, (self.upload_id,))
        problems, cancelled = 0, False
        with psycopg.connect(self.config["DATABASE_URL"], autocommit=True) as records_connection, \
                records_connection.transaction():
            writer = ChunkWriter(records_connection, self.control, self.upload_id, on_duplicate,
                                 reader.update_columns)
            for chunk in self.chunks(reader):
                written = writer.write(chunk)
                problems += chunk.invalid + written.duplicates_in_file + written.duplicates_existing
                cancelled = save_progress(self.control, self.upload_id, chunk, written, checkpoint=False,
                                          run_started_at=self.run_started_at)
                self.events.changed(UploadStatus.RUNNING)
                if chunk.unreadable_rest:
                    raise chunk.unreadable_rest
                if cancelled:
                    break
            if cancelled or problems or validate_only:
                raise psycopg.Rollback()
        if cancelled:
            return self.finish(UploadStatus.CANCELLED)
        if problems and not validate_only:
            self.control.execute("UPDATE uploads SET rows_inserted = 0, rows_updated = 0 WHERE id = %s",
                                 (self.upload_id,))
            return self.finish(UploadStatus.FAILED, self.rejection_reason(problems))
        return self.finish(UploadStatus.COMPLETED)

    def rejection_reason(self, problems):
        line, reason = self.control.execute(
            "SELECT line, reason FROM row_errors WHERE upload_id = %s ORDER BY line LIMIT 1",
            (self.upload_id,)).fetchone()
        return (f"rejected: {problems:,} line(s) are invalid or duplicates (first: line {line}, "
                f"{reason}); nothing was stored")

    def chunks(self, reader):
        """Chunks parsed in a thread of their own while the previous one is written."""
        ready = queue.SimpleQueue()
        free_slots = threading.Semaphore(CHUNKS_IN_MEMORY)
        stop = threading.Event()
        thread = threading.Thread(target=self._parse, args=(reader, ready, free_slots, stop), daemon=True)
        thread.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
                free_slots.release()
        finally:
            stop.set()
            thread.join()

    def _parse(self, reader, ready, free_slots, stop):
        try:
            more = True
            while more and not stop.is_set():
                while not free_slots.acquire(timeout=0.2):
                    if stop.is_set():
                        return
                chunk = reader.new_chunk()
                more = reader.fill(chunk, self.config["INGEST_CHUNK_ROWS"])
                if chunk.records or chunk.unreadable_rest:
                    ready.put(chunk)
            ready.put(None)
        except BaseException as error:  # handed to the writing thread, which raises it
            ready.put(error)

    def finish(self, status, reason=None):
        if partition.finish(self.control, self.config["DATABASE_URL"], self.upload_id,
                            announce=lambda: self.events.changed(UploadStatus.RUNNING, final=True)):
            # The list's statistics of records as a whole should count the new partition soon.
            Queue(MAINTENANCE_QUEUE, connection=self.events.redis).enqueue(
                "jobs.maintenance.tend_record_partitions", job_timeout=UPKEEP_JOB_TIMEOUT)
        self.control.execute("UPDATE uploads SET status = %s, failure_reason = %s, finished_at = now(), "
                             "heartbeat_at = now(), bytes_processed = CASE WHEN %s THEN size_bytes "
                             "ELSE bytes_processed END WHERE id = %s",
                             (status, reason, status == UploadStatus.COMPLETED, self.upload_id))
        self.events.changed(status, final=True)
        log.info("ingest %s%s", status, f": {reason}" if reason else "")
        if status == UploadStatus.FAILED:
            send_failure_email(self.upload_id)
        return status


def record_failure(job, connection, exc_type, exc_value, traceback):
    """RQ failure callback: the upload fails for good once RQ has no retries left."""
    upload_id = job.args[0]
    summary = f"{exc_type.__name__}: {exc_value}"[:500]
    final = not job.retries_left
    reason = f"the worker kept failing ({summary})" if final else f"attempt failed, retrying ({summary})"
    with psycopg.connect(current_app.config["DATABASE_URL"], autocommit=True) as control:
        # Only an unfinished upload: a stale copy of a job that was resumed elsewhere may fail late.
        control.execute(
            "UPDATE uploads SET failure_reason = %s, status = CASE WHEN %s THEN %s ELSE status END, "
            "finished_at = CASE WHEN %s THEN now() ELSE finished_at END WHERE id = %s AND status = ANY(%s)",
            (reason, final, UploadStatus.FAILED, final, upload_id, list(UploadStatus.ACTIVE)))
    if final:
        UploadEvents(connection, upload_id, log).changed(UploadStatus.FAILED, final=True)
        send_failure_email(upload_id)
