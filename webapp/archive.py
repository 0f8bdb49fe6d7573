"""The archive format (cold storage), shared by the job that writes archives
(jobs/archive.py) and the command that restores them (webapp/archive_restore.py).

An archived upload is three files in ARCHIVE_DIR, named after the upload and
the time it was archived:

    upload-42-20261105T030000Z.records.csv.gz    its records, one line each
    upload-42-20261105T030000Z.errors.csv.gz     its row errors
    upload-42-20261105T030000Z.manifest.json     the upload row, and for each file
                                                 its columns, rows and SHA-256

The CSV files are PostgreSQL's CSV (an empty cell is NULL, "" an empty text)
with a header line, times in UTC. A text cell that a spreadsheet would run as
a formula, or that starts with ', is written with a ' in front; restoring
removes it again, so every value comes back exactly.
"""
import csv
import gzip
import hashlib
import io
import json
import sys
from pathlib import Path

from psycopg import sql

from webapp.models import Record, RowError
from webapp.spreadsheet import FORMULA_STARTS
from webapp.validation import FIELDS

FORMAT = "intake-archive/1"
MANIFEST_SUFFIX = ".manifest.json"
PARTS = {"records": ".records.csv.gz", "row_errors": ".errors.csv.gz"}
QUOTE = "'"
QUOTED_STARTS = (*FORMULA_STARTS, QUOTE)
BLOCK = 1 << 20

# Every column of a record: what the file supplied first, as the export has them, then what Intake filled in.
RECORD_COLUMNS = (*FIELDS, "extra",
                  *(column.name for column in Record.__table__.columns if column.name not in (*FIELDS, "extra")))
# Every column of a row error, what it says first.
ROW_ERROR_COLUMNS = ("line", "column_name", "reason", "raw_line",
                     *(column.name for column in RowError.__table__.columns
                       if column.name not in ("line", "column_name", "reason", "raw_line")))


def text_columns(model, columns):
    return [name for name in columns if model.__table__.columns[name].type.python_type is str]


# part: (table, columns, text columns, order of the lines: the order they were stored in)
TABLES = {
    "records": ("records", RECORD_COLUMNS, text_columns(Record, RECORD_COLUMNS), ("created_at", "id")),
    "row_errors": ("row_errors", ROW_ERROR_COLUMNS, text_columns(RowError, ROW_ERROR_COLUMNS), ("line", "id")),
}


class ArchiveDamaged(Exception):
    """An archive file is missing, or differs from what its manifest says; the message says how."""


def unit_name(upload_id, archived_at):
    return f"upload-{upload_id}-{archived_at:%Y%m%dT%H%M%SZ}"


def manifest_path(path):
    """The manifest of the archive that `path` (the manifest or one of its CSV files) belongs to."""
    path = Path(path)
    for suffix in PARTS.values():
        if path.name.endswith(suffix):
            return path.with_name(path.name[:-len(suffix)] + MANIFEST_SUFFIX)
    return path


def quoted(column):
    """SQL: the text column as the archive writes it (see the module's docstring), under its name."""
    starts = sql.SQL(", ").join(map(sql.Literal, QUOTED_STARTS))
    return sql.SQL("CASE WHEN left({0}, 1) IN ({1}) THEN {2} || {0} ELSE {0} END AS {0}").format(
        sql.Identifier(column), starts, sql.Literal(QUOTE))


def unquoted(column):
    """SQL: the archived text column as it was stored, under its name."""
    return sql.SQL("CASE WHEN left({0}, 1) = {1} THEN substr({0}, 2) ELSE {0} END AS {0}").format(
        sql.Identifier(column), sql.Literal(QUOTE))


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def csv_header_and_rows(path):
    """(header, number of rows after it) of a gzip-compressed CSV file, read as a spreadsheet would."""
    csv.field_size_limit(sys.maxsize)   # a row error keeps a whole line of the file, however long
    with gzip.open(path, "rb") as compressed, io.TextIOWrapper(compressed, encoding="utf-8", newline="") as text:
        reader = csv.reader(text)
        header = next(reader, None)
        return header, sum(1 for _ in reader)


def check_file(path, description):
    """Raises ArchiveDamaged unless the file at `path` is what `description` (from a manifest) says."""
    if not path.is_file():
        raise ArchiveDamaged(f"{path} is missing")
    sha256 = file_sha256(path)
    if sha256 != description["sha256"]:
        raise ArchiveDamaged(f"{path} is damaged: its SHA-256 is {sha256}, the manifest says "
                             f"{description['sha256']}")
    try:
        header, rows = csv_header_and_rows(path)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
        raise ArchiveDamaged(f"{path} cannot be read: {error}") from None
    if header != description["columns"] or rows != description["rows"]:
        raise ArchiveDamaged(f"{path} holds {rows} rows with columns {header}; the manifest says "
                             f"{description['rows']} rows with columns {description['columns']}")


def read_manifest(path):
    """The manifest of the archive `path` belongs to, after checking every file it lists.
    Raises ArchiveDamaged with the reason when anything is off."""
    path = manifest_path(path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArchiveDamaged(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ArchiveDamaged(f"{path} is not an archive manifest: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveDamaged(f"{path} is not an archive manifest of this version ({FORMAT})")
    if sorted(manifest.get("files", ())) != sorted(PARTS):
        raise ArchiveDamaged(f"{path} lists the files {sorted(manifest.get('files', ()))}, not {sorted(PARTS)}")
    for description in manifest["files"].values():
        check_file(part_path(path, description), description)
    return manifest


def part_path(manifest_file, description):
    """Where a file the manifest lists is: next to the manifest, whatever the name says."""
    return Path(manifest_file).with_name(Path(description["name"]).name)
