"""Checks what can be checked in the request, then streams the file into
PostgreSQL piece by piece, so a worker on any host can read it and the web
process never holds a whole file in memory."""
import ntpath

from webapp.csv_contract import EncodingDetector, NotACsvFile, binary_kind, read_header
from webapp.extensions import db
from webapp.models import Upload, UploadPiece

PIECE_SIZE = 1 << 20
MAX_FILENAME = 255


class FileRefused(ValueError):
    """This file cannot be ingested; the message tells the operator why."""


def display_name(filename):
    """The file's own name, without any directories a browser sent along."""
    name = ntpath.basename((filename or "").replace("/", "\\")).strip()
    return (name or "unnamed.csv")[:MAX_FILENAME]


def check_start(first_piece):
    """Refuse an empty, binary or headerless file; returns the delimiter."""
    if not first_piece.strip(b"\r\n\t \xef\xbb\xbf"):
        raise FileRefused("the file is empty")
    kind = binary_kind(first_piece[:8192])
    if kind:
        raise FileRefused(f"this is not a CSV text file: it looks like {kind}")
    try:
        _, delimiter = read_header(first_piece, "utf-8")
    except NotACsvFile as error:
        raise FileRefused(str(error)) from None
    return delimiter


def store_upload(file, operator_id, on_duplicate, validate_only, **origin):
    """Check and store one file as a queued Upload (committed); raises FileRefused.

    `origin` sets where it came from (source, source_name, expected_lines) when not the form.
    """
    first_piece = file.stream.read(PIECE_SIZE)
    delimiter = check_start(first_piece)
    upload = Upload(filename=display_name(file.filename), operator_id=operator_id, on_duplicate=on_duplicate,
                    validate_only=validate_only, delimiter=delimiter, **origin)
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
    upload.encoding = detector.encoding
    db.session.commit()
    return upload
