"""Writes one chunk of validated rows: new records by COPY, existing ones
skipped or updated, row errors, all decided by the unique index on
records.email_norm."""
from dataclasses import dataclass

from psycopg import errors, sql

from jobs.rows import COPY_COLUMNS
from webapp.validation import FIELDS

# A concurrent upload may store one of our emails between the look-up and the
# COPY; the chunk is then simply tried again, and the look-up sees it.
RACE_ERRORS = (errors.UniqueViolation, errors.DeadlockDetected)
MAX_ATTEMPTS = 10
COPY_COLUMN_LIST = sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS))


@dataclass
class Written:
    inserted: int = 0
    updated: int = 0
    duplicates_in_file: int = 0
    duplicates_existing: int = 0


class ChunkWriter:
    """Records go through `connection`; row errors through `report_connection`,
    which is the same one unless the file is stored all-or-nothing."""

    def __init__(self, connection, report_connection, upload_id, on_duplicate, update_columns=FIELDS):
        self.connection = connection
        self.report_connection = report_connection
        self.upload_id = upload_id
        self.on_duplicate = on_duplicate
        self.update_columns = update_columns
        self._staging_ready = False

    def write(self, chunk):
        """Store the chunk's rows; appends its duplicates to chunk.errors. Retries lost races."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                with self.connection.transaction():
                    written, duplicate_errors = self._write_rows(chunk)
                break
            except RACE_ERRORS:
                if attempt == MAX_ATTEMPTS - 1:
                    raise
        chunk.errors.extend(duplicate_errors)
        self._write_errors(chunk.errors)
        written.duplicates_in_file += chunk.duplicates
        return written

    def _write_rows(self, chunk):
        existing = self._existing(list(chunk.rows))
        new, updates, duplicate_errors = [], [], []
        written = Written()
        for email_norm, row in chunk.rows.items():
            holder = existing.get(email_norm)
            if holder is None:
                new.append(row.copy_line)
            elif holder[0] == self.upload_id:
                written.duplicates_in_file += 1
                duplicate_errors.append((row.line, "email", chunk.duplicate_reason(holder[1]), row.raw))
            elif self.on_duplicate == "update":
                updates.append(row.copy_line)
            else:
                written.duplicates_existing += 1
                duplicate_errors.append((row.line, "email", "email is already stored (record "
                                         f"#{holder[2]}); kept the stored record", row.raw))
        written.inserted = self._copy("records", new)
        written.updated = self._update(updates)
        return written, duplicate_errors

    def _existing(self, emails):
        """email_norm -> (upload_id, source_line, record id) for the emails already stored."""
        rows = self.connection.execute(
            "SELECT email_norm, upload_id, source_line, id FROM records "
            "WHERE email_norm = ANY(string_to_array(%s, E'\\n'))",
            ("\n".join(emails),))
        return {email: (upload_id, line, record_id) for email, upload_id, line, record_id in rows}

    def _copy(self, table, lines):
        if not lines:
            return 0
        statement = sql.SQL("COPY {} ({}) FROM STDIN (NULL '')").format(sql.Identifier(table), COPY_COLUMN_LIST)
        with self.connection.cursor().copy(statement) as copy:
            copy.write(b"".join(lines))
        return len(lines)

    def _update(self, lines):
        if not lines:
            return 0
        if not self._staging_ready:
            self.connection.execute(sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS ingest_staging ON COMMIT DELETE ROWS AS "
                "SELECT {} FROM records WITH NO DATA").format(COPY_COLUMN_LIST))
            self._staging_ready = True
        self._copy("ingest_staging", lines)
        assignments = [sql.SQL("{0} = staged.{0}").format(sql.Identifier(name)) for name in self.update_columns]
        statement = sql.SQL(
            "UPDATE records SET {}, extra = records.extra || staged.extra, upload_id = staged.upload_id, "
            "source_line = staged.source_line, updated_at = now(), updated_by = NULL "
            "FROM ingest_staging AS staged WHERE records.email_norm = staged.email_norm"
        ).format(sql.SQL(", ").join(assignments))
        updated = self.connection.execute(statement).rowcount
        self.connection.execute("TRUNCATE ingest_staging")
        return updated

    def _write_errors(self, row_errors):
        if not row_errors:
            return
        with self.report_connection.cursor().copy(
                "COPY row_errors (upload_id, line, column_name, reason, raw_line) FROM STDIN") as copy:
            for line, column, reason, raw in row_errors:
                # PostgreSQL text cannot hold NUL; the report shows U+FFFD in its place.
                copy.write_row((self.upload_id, line, column, reason, raw.replace("\x00", "\ufffd")))
