"""The rows of a workbook's sheet as chunks of validated rows, as RowReader
makes them of a CSV file: the sheet is read one row at a time, so memory does
not grow with it. Positions are the sheet's row numbers (the header is row 1);
a row of empty cells is skipped like a blank line."""
import csv
import io
from itertools import islice

from jobs.rows import Chunk, FileTerms
from webapp.workbooks import DAMAGED, NotAWorkbook, cell_text, header_of, open_workbook


class UnreadableWorkbook(ValueError):
    """The workbook cannot be read (on from some row); the message says why."""


class WorkbookRowReader(FileTerms):
    """RowReader's interface (as jobs.ingest drives it) over a seekable binary stream of a workbook."""

    count_records = False

    def __init__(self, stream, sheet_name, upload_id):
        self.stream = stream
        self.upload_id = upload_id
        try:
            workbook = open_workbook(stream)
            title = workbook.sheet_title(sheet_name)
            self.rows = workbook.rows(title)
            self.header = header_of(title, next(self.rows, None))
        except NotAWorkbook as error:
            raise UnreadableWorkbook(str(error)) from None
        self.width = len(self.header.names)
        self.row_number = 1     # of the last row read

    def new_chunk(self):
        # A row's raw text is a rendering of its cells: each value is checked on its own.
        return Chunk(unit=self.unit, upload_id=self.upload_id, raw_is_source=False)

    def skip(self, records):
        for self.row_number, _ in islice(self.rows, records):
            pass

    def fill(self, chunk, size):
        """Read up to `size` rows into `chunk`; False once the sheet is used up."""
        try:
            return self._fill(chunk, size)
        except DAMAGED as error:
            chunk.unreadable_rest = UnreadableWorkbook(
                f"the workbook is damaged after row {self.row_number} ({error})")
            return False
        finally:
            chunk.bytes_read = self.stream.tell()

    def _fill(self, chunk, size):
        while chunk.records < size:
            row = next(self.rows, None)
            if row is None:
                return False
            self.row_number, values = row
            chunk.records += 1
            cells = [cell_text(value) for value in values]
            if any(cells):
                chunk.lines += 1
                self._take(chunk, cells)
        return True

    def _take(self, chunk, cells):
        raw = csv_line(cells)
        beyond = [index for index in range(self.width, len(cells)) if cells[index]]
        if beyond:
            reason = (f"row {self.row_number} has a value in column {beyond[0] + 1} "
                      f"but the header has {self.width} columns")
            return chunk.reject(self.row_number, None, reason, raw)
        cells += [""] * (self.width - len(cells))
        values = {name: cells[index] for name, index in self.header.fields.items()}
        values["email"] = values["email"].strip()
        extra = {name: cells[index] for index, name in self.header.extra.items() if cells[index]}
        return chunk.take(self.row_number, values, extra, raw)


def csv_line(cells):
    """The cells as a line of CSV: how a row stands in the error report."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(cells)
    return text.getvalue()
