"""Writes one chunk of validated rows: new records by COPY, existing ones
skipped or updated, row errors, all decided by the email registry
(record_emails), whose primary key is the normalized email."""
import io
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from psycopg import errors, sql

from jobs.rows import COPY_COLUMNS
from webapp.validation import FIELDS

# A concurrent upload may store one of our emails between the look-up and the
# COPY; the chunk is then simply tried again, and the look-up sees it.
RACE_ERRORS = (errors.UniqueViolation, errors.DeadlockDetected)
MAX_ATTEMPTS = 10
CSV_WITHOUT_HEADER = pa_csv.WriteOptions(include_header=False)
IDS_READ = pa_csv.ReadOptions(column_names=["id"])
IDS_CONVERT = pa_csv.ConvertOptions(column_types={"id": pa.int64()})


@dataclass
class Written:
    inserted: int = 0
    updated: int = 0
    duplicates_in_file: int = 0
    duplicates_existing: int = 0


class ChunkWriter:
    """Records go through `connection`; row errors through `report_connection`,
    which is the same one unless the file is stored all-or-nothing.

    New records go into `records` (its shared partition, whose triggers keep the
    registry in step), or, with `own_table`, into the upload's own table,
    which has no triggers: the registry rows are then written here, in the same
    transaction."""

    def __init__(self, connection, report_connection, upload_id, on_duplicate, update_columns=FIELDS,
                 own_table=None):
        self.connection = connection
        self.report_connection = report_connection
        self.upload_id = upload_id
        self.on_duplicate = on_duplicate
        self.update_columns = update_columns
        self.own_table = own_table
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
        candidates = chunk.candidate_table()
        existing = self._existing(candidates.column("email_norm"))
        if not existing:
            return Written(inserted=self._insert(candidates)), []
        stored = pc.is_in(candidates.column("email_norm"), value_set=pa.array(list(existing), pa.string()))
        written, duplicate_errors, updates = Written(), [], []
        for index in pc.indices_nonzero(stored).to_pylist():
            upload_id, first_line, record_id = existing[candidates.column("email_norm")[index].as_py()]
            if upload_id != self.upload_id and self.on_duplicate == "update":
                updates.append(index)
                continue
            if upload_id == self.upload_id:
                written.duplicates_in_file += 1
                reason = chunk.duplicate_reason(first_line)
            else:
                written.duplicates_existing += 1
                reason = f"email is already stored (record #{record_id}); kept the stored record"
            line = candidates.column("source_line")[index].as_py()
            duplicate_errors.append((line, "email", reason, chunk.candidate_raw(index)))
        written.inserted = self._insert(candidates.filter(pc.invert(stored)))
        if updates:
            written.updated = self._update(candidates.take(updates))
        return written, duplicate_errors

    def _existing(self, emails):
        """email_norm -> (upload_id, source_line, record id) for the `emails` (an Arrow column) already stored."""
        if not len(emails):
            return {}
        # One string joined by Arrow: no Python object for each email.
        joined = pc.binary_join(pa.ListArray.from_arrays([0, len(emails)], emails.combine_chunks()), "\n")
        rows = self.connection.execute(
            "SELECT email_norm, upload_id, source_line, record_id FROM record_emails "
            "WHERE email_norm = ANY(string_to_array(%s, E'\\n'))", (joined[0].as_py(),))
        return {email: (upload_id, line, record_id) for email, upload_id, line, record_id in rows}

    def _insert(self, table):
        if not table.num_rows:
            return 0
        if self.own_table is None:
            return self._copy("records", table)
        table = table.append_column("id", self._new_ids(table.num_rows))
        registry = pa.table({
            "email_norm": table.column("email_norm"),
            "record_id": table.column("id"),
            "segment": pa.repeat(pa.scalar(self.upload_id, pa.int64()), table.num_rows),
            "upload_id": table.column("upload_id"),
            "source_line": table.column("source_line"),
        })
        self._copy("record_emails", registry)
        return self._copy(self.own_table, table)

    def _new_ids(self, count):
        """`count` new record ids, read as one block of text and parsed by Arrow."""
        data = io.BytesIO()
        with self.connection.cursor().copy(
                "COPY (SELECT nextval('records_id_seq') FROM generate_series(1, %s)) TO STDOUT", (count,)) as copy:
            for block in copy:
                data.write(block)
        data.seek(0)
        return pa_csv.read_csv(data, read_options=IDS_READ, convert_options=IDS_CONVERT).column("id")

    def _copy(self, table_name, table):
        """COPY an Arrow table's rows (its columns by name) in CSV format: an empty cell is NULL."""
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
            sql.Identifier(table_name), sql.SQL(", ").join(map(sql.Identifier, table.column_names)))
        data = io.BytesIO()
        pa_csv.write_csv(table, data, CSV_WITHOUT_HEADER)
        with self.connection.cursor().copy(statement) as copy:
            copy.write(data.getbuffer())
        return table.num_rows

    def _update(self, table):
        if not self._staging_ready:
            self.connection.execute(sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS ingest_staging ON COMMIT DELETE ROWS AS "
                "SELECT {} FROM records WITH NO DATA").format(sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS))))
            self._staging_ready = True
        self._copy("ingest_staging", table)
        assignments = [sql.SQL("{0} = staged.{0}").format(sql.Identifier(name)) for name in self.update_columns]
        statement = sql.SQL(
            "UPDATE records SET {}, extra = records.extra || staged.extra, upload_id = staged.upload_id, "
            "source_line = staged.source_line, updated_at = now(), updated_by = NULL "
            "FROM ingest_staging AS staged JOIN record_emails AS stored USING (email_norm) "
            "WHERE records.id = stored.record_id AND records.segment = stored.segment"
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
