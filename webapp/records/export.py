"""The CSV export of a record list, streamed from a server-side cursor so that
memory stays flat however many rows there are."""
import csv
import io

from sqlalchemy import Text, cast, select

from webapp.models import Record
from webapp.records.query import conditions, sort_order
from webapp.spreadsheet import safe_cell

# What operators and files supplied, in the order an upload reads them, so an
# export can be uploaded again. These cells are neutralised against formulas.
SUPPLIED = (Record.email, Record.first_name, Record.last_name, Record.phone, Record.company, Record.city,
            Record.country)
# What Intake filled in: the extra columns as one JSON object (they differ from
# upload to upload), numbers and times. None of them can start like a formula.
# Casting to text in PostgreSQL is much cheaper than building Python objects.
FILLED = (cast(Record.extra, Text).label("extra"), Record.id, Record.upload_id, Record.source_line,
          cast(Record.created_at, Text).label("created_at"), cast(Record.updated_at, Text).label("updated_at"))
HEADER = [column.name for column in SUPPLIED + FILLED]
BATCH_ROWS = 5000
BOM = "\ufeff"


def export_statement(query):
    """Every row of the list `query` describes, in its order (all pages)."""
    return select(*SUPPLIED, *FILLED).where(*conditions(query)).order_by(*sort_order(query))


def csv_row(row):
    return (*map(safe_cell, row[:len(SUPPLIED)]), *row[len(SUPPLIED):])


def _drain(buffer):
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text.encode("utf-8")


def csv_chunks(engine, query, bom=False):
    """The CSV file as UTF-8 byte strings, one per batch of rows.

    It uses a connection of its own: the response is sent after the request's
    database session has ended.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if bom:
        buffer.write(BOM)
    writer.writerow(HEADER)
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=BATCH_ROWS).execute(export_statement(query))
        for rows in result.partitions():
            writer.writerows(map(csv_row, rows))
            yield _drain(buffer)
    if buffer.tell():
        yield _drain(buffer)
