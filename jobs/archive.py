"""Archive (cold storage): uploads finished more than ARCHIVE_AFTER_DAYS ago move,
with their records and row errors, out of PostgreSQL into files under
ARCHIVE_DIR (the format is described in webapp/archive.py). Off while
ARCHIVE_AFTER_DAYS is 0.

One upload per transaction, which keeps the upload locked and reads one
snapshot (REPEATABLE READ) throughout: its files are streamed to temporary
names by COPY, synced, read back and checked (SHA-256, header, row count);
then its rows are deleted and the deletions compared with the files; then the
files get their final names, and only then does the transaction commit. A
failure before that leaves PostgreSQL as it was and removes the temporary
files; a record edited meanwhile makes the deletion fail the same way, and
the next run tries again.
"""
import gzip
import hashlib
import json
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from flask import current_app
from psycopg import sql

from webapp.archive import FORMAT, MANIFEST_SUFFIX, PARTS, TABLES, check_file, quoted, unit_name
from webapp.models import UploadStatus

log = logging.getLogger(__name__)

NEXT_OLD = """
    SELECT id FROM uploads
    WHERE status = ANY(%s) AND finished_at < now() - make_interval(days => %s)
    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"""
# A run starts no further upload after this long, so that the maintenance worker
# is soon free again for the other periodic jobs; the next run goes on.
RUN_SECONDS = 300


class ArchiveError(RuntimeError):
    """What was deleted differs from what was written; the transaction is rolled back."""


def archive_old_uploads():
    """RQ entry point (periodic); returns the ids of the uploads it archived."""
    config = current_app.config
    if not config["ARCHIVE_AFTER_DAYS"]:
        return []
    directory = Path(config["ARCHIVE_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    archived = []
    deadline = time.monotonic() + RUN_SECONDS
    with psycopg.connect(config["DATABASE_URL"], autocommit=True) as connection:
        connection.execute("SET TIME ZONE 'UTC'")   # the times in the files
        while time.monotonic() < deadline and (
                upload_id := archive_next(connection, config["ARCHIVE_AFTER_DAYS"], directory)):
            archived.append(upload_id)
    return archived


def archive_next(connection, days, directory):
    with connection.transaction():
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        row = connection.execute(NEXT_OLD, (list(UploadStatus.FINISHED), days)).fetchone()
        if row is None:
            return None
        UploadArchive(directory, row[0]).write(connection)
        return row[0]


class HashingFile:
    """Passes the bytes written to `file` through a SHA-256 on the way."""

    def __init__(self, file):
        self.file = file
        self.digest = hashlib.sha256()

    def write(self, data):
        self.digest.update(data)
        return self.file.write(data)

    def flush(self):
        self.file.flush()


def synced(file):
    file.flush()
    os.fsync(file.fileno())


class UploadArchive:
    def __init__(self, directory, upload_id):
        self.directory = directory
        self.upload_id = upload_id
        self.archived_at = datetime.now(timezone.utc).replace(microsecond=0)
        self.name = unit_name(upload_id, self.archived_at)
        self.renames = []   # (temporary path, final path), the manifest last

    def write(self, connection):
        try:
            manifest = self._write_files(connection)
            self._delete_rows(connection, manifest)
            self._publish()
        except BaseException:
            for temporary, _ in self.renames:
                temporary.unlink(missing_ok=True)
            raise
        files = manifest["files"]
        log.info("archived upload %s (%s records, %s row errors) to %s", self.upload_id,
                 files["records"]["rows"], files["row_errors"]["rows"], self.directory / (self.name + MANIFEST_SUFFIX))

    def _temporary(self, suffix):
        final = self.directory / (self.name + suffix)
        temporary = final.with_name(f".{final.name}.tmp")
        self.renames.append((temporary, final))
        return temporary

    def _write_files(self, connection):
        upload = connection.execute("SELECT row_to_json(uploads) FROM uploads WHERE id = %s",
                                    (self.upload_id,)).fetchone()[0]
        # The uploaded bytes are not archived: once restored, the upload says its file was deleted.
        upload["raw_deleted_at"] = upload["raw_deleted_at"] or self.archived_at.isoformat()
        files = {part: self._write_csv(connection, part) for part in PARTS}
        manifest = {"format": FORMAT, "archived_at": self.archived_at.isoformat(), "upload": upload, "files": files}
        with open(self._temporary(MANIFEST_SUFFIX), "x", encoding="utf-8") as file:
            json.dump(manifest, file, indent=2, ensure_ascii=False)
            file.write("\n")
            synced(file)
        return manifest

    def _write_csv(self, connection, part):
        table, columns, text, order = TABLES[part]
        path = self._temporary(PARTS[part])
        statement = sql.SQL("COPY (SELECT {} FROM {} WHERE upload_id = {} ORDER BY {}) "
                            "TO STDOUT (FORMAT csv, HEADER)").format(
            sql.SQL(", ").join(quoted(name) if name in text else sql.Identifier(name) for name in columns),
            sql.Identifier(table), sql.Literal(self.upload_id), sql.SQL(", ").join(map(sql.Identifier, order)))
        with open(path, "xb") as file:
            hashing = HashingFile(file)
            with gzip.GzipFile(filename="", mode="wb", fileobj=hashing, mtime=self.archived_at.timestamp()) as packed:
                with connection.cursor() as cursor:
                    with cursor.copy(statement) as copy:
                        for data in copy:
                            packed.write(data)
                    rows = cursor.rowcount
            synced(file)
        description = {"name": self.name + PARTS[part], "rows": rows, "sha256": hashing.digest.hexdigest(),
                       "columns": list(columns), "quoted": text}
        check_file(path, description)   # read back from the disk
        return description

    def _delete_rows(self, connection, manifest):
        for part in PARTS:
            table = TABLES[part][0]
            deleted = connection.execute(sql.SQL("DELETE FROM {} WHERE upload_id = %s").format(sql.Identifier(table)),
                                         (self.upload_id,)).rowcount
            if deleted != manifest["files"][part]["rows"]:
                raise ArchiveError(f"upload {self.upload_id}: {deleted} {table} to delete, "
                                   f"{manifest['files'][part]['rows']} archived")
        connection.execute("DELETE FROM upload_pieces WHERE upload_id = %s", (self.upload_id,))
        connection.execute("DELETE FROM uploads WHERE id = %s", (self.upload_id,))

    def _publish(self):
        for temporary, final in self.renames:
            os.rename(temporary, final)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
