"""The reader of an upload's file, chosen by its type (webapp.file_types): each
gives the ingest job the same chunks of validated rows."""
import io

from jobs.jsonl_rows import JsonLinesReader
from jobs.source import PieceStream, SeekablePieceStream
from jobs.vector_rows import VectorRowReader
from jobs.xlsx_rows import WorkbookRowReader
from webapp.file_types import JSONL, XLSX, file_type


def open_reader(connection, upload_id, filename, encoding, delimiter, count_records):
    """A reader of the upload's stored bytes (read through `connection`)."""
    kind = file_type(filename)
    if kind == XLSX:
        # A workbook's upload keeps the name of its sheet where a CSV file's keeps its delimiter.
        return WorkbookRowReader(SeekablePieceStream(connection, upload_id), delimiter, upload_id)
    binary = io.BufferedReader(PieceStream(connection, upload_id), 1 << 20)
    if kind == JSONL:
        return JsonLinesReader(binary, encoding, upload_id)
    return VectorRowReader(binary, encoding, delimiter, upload_id, count_records=count_records)
