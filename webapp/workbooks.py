"""What Intake accepts as an Excel workbook (.xlsx), and how its cells read as text.

A workbook is a ZIP archive of XML parts, checked before openpyxl opens it: an
OLE file (an encrypted workbook, or an old .xls) and a zip bomb are refused
unread. openpyxl's reader, in read-only mode, reads the workbook's own parts; a
sheet is then read one row at a time, with the values its formulas had when it
was last saved. The form and the ingest job both open workbooks here.
"""
import datetime
import zipfile
import zlib
from array import array

from openpyxl.reader.excel import ExcelReader
from openpyxl.styles.stylesheet import apply_stylesheet
from openpyxl.worksheet._reader import WorkSheetParser
from openpyxl.cell.text import Text
from openpyxl.xml.constants import SHARED_STRINGS, SHEET_MAIN_NS
from openpyxl.xml.functions import iterparse

from webapp.csv_contract import NotACsvFile, checked_header

ZIP_SIGNATURE = b"PK\x03\x04"
SHEET_DATA, ROW = f"{{{SHEET_MAIN_NS}}}sheetData", f"{{{SHEET_MAIN_NS}}}row"
STRING = f"{{{SHEET_MAIN_NS}}}si"
CONTENT_TYPES = "[Content_Types].xml"     # the part every workbook starts from
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# An encrypted workbook is an OLE file that holds the encrypted ZIP in a stream of this name.
ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
SCAN_BYTES = 1 << 20
# What openpyxl's ZIP and XML readers raise on a damaged workbook (ParseError is a SyntaxError).
DAMAGED = (zipfile.BadZipFile, zlib.error, SyntaxError, ValueError, LookupError, EOFError, OSError)
# Real workbooks unpack to at most about 20 times their size; a zip bomb to about 1,000.
MAX_UNPACK_RATIO = 100


class NotAWorkbook(ValueError):
    """The file cannot be read as a workbook; the message says why."""


def open_workbook(stream):
    """The workbook in a seekable binary stream, opened read-only; raises NotAWorkbook."""
    stream.seek(0)
    signature = stream.read(len(OLE_SIGNATURE))
    if signature == OLE_SIGNATURE:
        raise NotAWorkbook(ole_file_problem(stream))
    if not signature.startswith(ZIP_SIGNATURE):
        raise NotAWorkbook("this is not an .xlsx workbook: it is not a ZIP archive "
                           "(a CSV file needs a name ending .csv)")
    try:
        with zipfile.ZipFile(stream) as archive:
            if CONTENT_TYPES not in archive.namelist():
                raise NotAWorkbook(f"this ZIP archive is not an .xlsx workbook (it has no {CONTENT_TYPES})")
            check_unpacked_size(archive, stream.seek(0, 2))
        stream.seek(0)
        return Workbook(stream)
    except NotAWorkbook:
        raise
    except DAMAGED as error:
        raise NotAWorkbook(f"the workbook is damaged and cannot be read ({error})") from None


def ole_file_problem(stream):
    """Why an OLE file is refused: an encrypted workbook, or an old Office document."""
    stream.seek(0)
    tail = b""
    while block := stream.read(SCAN_BYTES):
        if ENCRYPTED_PACKAGE in tail + block:
            return "the workbook is encrypted (password-protected): save it without a password"
        tail = block[-len(ENCRYPTED_PACKAGE):]
    return "this is an old Excel (.xls) or other Office document: save it as .xlsx or CSV"


def check_unpacked_size(archive, size):
    """Refuse an archive whose parts declare more than MAX_UNPACK_RATIO times its size.

    Python's ZIP reader stops at a part's declared size, so the declaration bounds the work."""
    unpacked = sum(part.file_size for part in archive.infolist())
    if unpacked > MAX_UNPACK_RATIO * size:
        raise NotAWorkbook(f"the workbook would unpack to {unpacked:,} bytes, more than {MAX_UNPACK_RATIO} "
                           "times its size: it is refused as a possible zip bomb")


class Workbook:
    """A workbook's sheets, each read row by row.

    openpyxl's load_workbook(read_only=True) reads every sheet once on opening to
    learn its size, all of it when the sheet does not declare its dimension, keeping
    an emptied element per row; and its row reader keeps them too, so memory grows
    with the sheet. Here openpyxl reads the workbook's own parts (sheet names,
    shared strings, date styles) and each row is taken out of the tree once read.
    This uses openpyxl's reader internals, hence the pinned openpyxl. The shared
    strings (where Excel keeps each distinct text once) are held packed.
    """

    def __init__(self, stream):
        reader = ExcelReader(stream, read_only=True, data_only=True)
        reader.read_manifest()
        reader.read_workbook()
        apply_stylesheet(reader.archive, reader.wb)
        self.archive = reader.archive
        strings = reader.package.find(SHARED_STRINGS)
        self.shared_strings = StringTable(self.archive, strings and strings.PartName[1:])
        self.book = reader.wb
        self.sheet_parts = {sheet.name: rel.target for sheet, rel in reader.parser.find_sheets()
                            if rel.target in reader.valid_files and "chartsheet" not in rel.Type}

    def close(self):
        self.archive.close()

    def sheet_title(self, name=None):
        """The title of the sheet of that name, or of the first one; raises NotAWorkbook."""
        if not self.sheet_parts:
            raise NotAWorkbook("the workbook has no worksheet")
        if not name:
            return next(iter(self.sheet_parts))
        if name not in self.sheet_parts:
            listed = ", ".join(repr(title) for title in self.sheet_parts)
            raise NotAWorkbook(f"the workbook has no sheet {name!r}; its sheets are {listed}")
        return name

    def rows(self, title):
        """(row number, [cell values from column A]) of each row the sheet's XML holds, in its order."""
        cells = WorkSheetParser(None, self.shared_strings, data_only=True, epoch=self.book.epoch,
                                date_formats=self.book._date_formats,
                                timedelta_formats=self.book._timedelta_formats)
        number, sheet_data = 0, None
        with self.archive.open(self.sheet_parts[title]) as source:
            for event, element in iterparse(source, events=("start", "end")):
                if event == "start":
                    if element.tag == SHEET_DATA:
                        sheet_data = element
                elif element.tag == ROW:
                    number = int(element.get("r", number + 1))
                    cells.row_counter, cells.col_counter = number, 0
                    values = {}
                    for cell in element:
                        parsed = cells.parse_cell(cell)
                        values[parsed["column"]] = parsed["value"]
                    sheet_data.remove(element)
                    yield number, [values.get(column) for column in range(1, max(values, default=0) + 1)]

    def first_row(self, title):
        """rows(title)'s first item, or None."""
        rows = self.rows(title)
        try:
            return next(rows, None)
        finally:
            rows.close()


class StringTable:
    """A workbook's shared strings, packed as UTF-8 in one buffer: about a fifth of
    the memory of the list of str openpyxl keeps."""

    def __init__(self, archive, part):
        self.text = bytearray()
        self.ends = array("Q", [0])
        if part is None:
            return
        with archive.open(part) as source:
            table = None
            for event, element in iterparse(source, events=("start", "end")):
                if table is None:
                    table = element     # the first start: the table itself
                elif event == "end" and element.tag == STRING:
                    # As openpyxl reads a shared string (reader/strings.py).
                    self.text += Text.from_tree(element).content.replace("x005F_", "").encode()
                    self.ends.append(len(self.text))
                    table.remove(element)

    def __getitem__(self, index):
        return self.text[self.ends[index]:self.ends[index + 1]].decode()


def header_of(title, first):
    """The Header of the sheet's row 1, given its first row (from Workbook.rows); raises NotAWorkbook."""
    number, values = first or (None, ())
    names = [cell_text(value) for value in values] if number == 1 else []
    if not any(names):
        raise NotAWorkbook(f"the sheet {title!r} has no header row (row 1 is empty)")
    try:
        return checked_header(names, where=f"in row 1 of the sheet {title!r}")
    except NotACsvFile as error:
        raise NotAWorkbook(str(error)) from None


def cell_text(value):
    """A cell's value as text: dates in ISO 8601, whole numbers without '.0', TRUE/FALSE."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()     # a date cell: Excel stores dates as midnight
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)
