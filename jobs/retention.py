"""Raw-file retention: the uploaded bytes of a finished upload are deleted
RAW_RETENTION_DAYS after it finished. Its records, counters and row errors
stay; uploads.raw_deleted_at tells the upload page that the file is gone."""
import logging

import psycopg
from flask import current_app

from webapp.models import UploadStatus

log = logging.getLogger(__name__)

# FOR UPDATE: a retry pressed at this moment waits, then finds the file gone.
NEXT_EXPIRED = """
    SELECT id FROM uploads
    WHERE status = ANY(%s) AND raw_deleted_at IS NULL AND finished_at < now() - make_interval(days => %s)
      AND EXISTS (SELECT 1 FROM upload_pieces WHERE upload_id = uploads.id)
    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"""


def delete_expired_raw_files():
    """RQ entry point (periodic); returns the ids of the uploads whose file it deleted."""
    config = current_app.config
    deleted = []
    with psycopg.connect(config["DATABASE_URL"], autocommit=True) as connection:
        # One upload per transaction: a file can be gigabytes of pieces.
        while upload_id := delete_next(connection, config["RAW_RETENTION_DAYS"]):
            deleted.append(upload_id)
    if deleted:
        log.info("deleted the raw files of uploads %s", deleted)
    return deleted


def delete_next(connection, days):
    with connection.transaction():
        row = connection.execute(NEXT_EXPIRED, (list(UploadStatus.FINISHED), days)).fetchone()
        if row is None:
            return None
        connection.execute("DELETE FROM upload_pieces WHERE upload_id = %s", row)
        connection.execute("UPDATE uploads SET raw_deleted_at = now() WHERE id = %s", row)
        return row[0]
