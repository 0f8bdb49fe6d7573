"""Checks what can be checked in the request, then streams the file into
PostgreSQL piece by piece, so a worker on any host can read it and the web
process never holds a whole file in memory."""
import ntpath

from webapp.csv_contract import UTF8, EncodingDetector, NotACsvFile, binary_kind, read_header
from webapp.extensions import db
from webapp.file_types import JSONL, XLSX, file_type
from webapp.json_lines import first_object_header
from webapp.models import Upload, UploadPiece
from webapp.workbooks import NotAWorkbook, header_of, open_workbook

PIECE_SIZE = 1 << 20
MAX_FILENAME = 255


class FileRefused(ValueError):
    """This file cannot be ingested; the message tells the operator why."""


def display_name(filename):
    """The file's own name, without any directories a browser sent along."""
    name = ntpath.basename((filename or "").replace("/", "\\")).strip()
    return (name or "unnamed.csv")[:MAX_FILENAME]


def check_text_start(first_piece, kind="CSV"):
    """Refuse an empty or binary file."""
    if not first_piece.strip(b"\r\n\t \xef\xbb\xbf"):
        raise FileRefused("the file is empty")
    binary = binary_kind(first_piece[:8192])
    if binary:
        raise FileRefused(f"this is not a {kind} text file: it looks like {binary}")


def check_start(first_piece):
    """Refuse an empty, binary or headerless file; returns the delimiter."""
    check_text_start(first_piece)
    try:
        _, delimiter = read_header(first_piece, "utf-8")
    except NotACsvFile as error:
        raise FileRefused(str(error)) from None
    return delimiter


def check_json_lines_start(first_piece):
    """Refuse an empty or binary file, or one whose first line is no object with an email."""
    check_text_start(first_piece, "JSON Lines")
    if b"\n" not in first_piece.lstrip() and len(first_piece) == PIECE_SIZE:
        raise FileRefused(f"the first line is longer than {PIECE_SIZE // 1024 // 1024} MB")
    try:
        first_object_header(first_piece.decode(UTF8, errors="replace"))
    except NotACsvFile as error:
        raise FileRefused(str(error)) from None


def check_workbook(stream, sheet_name):
    """Refuse what is no readable workbook, or has no such sheet, or no email in its
    header row; returns the name of the sheet to read."""
    try:
        workbook = open_workbook(stream)
        try:
            title = workbook.sheet_title(sheet_name)
            header_of(title, workbook.first_row(title))
        finally:
            workbook.close()
    except NotAWorkbook as error:
        raise FileRefused(str(error)) from None
    stream.seek(0)
    return title


def checked_start(kind, file):
    """(the first piece, the Upload's columns that the file decides); raises FileRefused."""
    if kind == XLSX:
        # A workbook has no delimiter: the upload keeps the name of its sheet there instead.
        sheet = check_workbook(file.stream, getattr(file, "sheet", None))
        return file.stream.read(PIECE_SIZE), dict(delimiter=sheet)
    first_piece = file.stream.read(PIECE_SIZE)
    if kind == JSONL:
        check_json_lines_start(first_piece)
        return first_piece, {}
    return first_piece, dict(delimiter=check_start(first_piece))


def store_upload(file, operator_id, on_duplicate, validate_only, **origin):
    """Check and store one file as a queued Upload (committed); raises FileRefused.

    `file` has a filename and a stream (a workbook's must be seekable), and may name
    the `sheet` of a workbook to read. `origin` sets where it came from (source,
    source_name, expected_lines) when not the form.
    """
    filename = display_name(file.filename)
    kind = file_type(filename)
    first_piece, terms = checked_start(kind, file)
    upload = Upload(filename=filename, operator_id=operator_id, on_duplicate=on_duplicate,
                    validate_only=validate_only, **terms, **origin)
    db.session.add(upload)
    db.session.flush()
    detector = EncodingDetector()
    size, seq, piece = 0, 0, first_piece
    while piece:
        detector.feed(piece)
        db.session.execute(db.insert(UploadPiece), {"upload_id": upload.id, "seq": seq, "data": piece})
        size, seq = size + len(piece), seq + 1
        piece = file.stream.read(PIECE_SIZE)
    detector.feed(b"", final=True)
    upload.size_bytes = size
    upload.encoding = UTF8 if kind == XLSX else detector.encoding
    db.session.commit()
    return upload
