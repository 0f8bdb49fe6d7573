"""From a text stream to chunks of validated rows, ready for COPY.

This runs in its own thread while the previous chunk is written, so nothing
here touches the database.
"""
import csv
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import NamedTuple

import pyarrow as pa

from webapp.csv_contract import SEP_LINE, Header
from webapp.validation import FIELDS, MAX_FIELD_LENGTH, normalize_email, record_problems

# A field longer than this is not parsed at all (the row is rejected): it
# bounds the memory one line can take.
MAX_PARSED_FIELD = 16 * 1024 * 1024
csv.field_size_limit(MAX_PARSED_FIELD)

# Columns of `records` in the order of a chunk's candidate_table().
COPY_COLUMNS = (*FIELDS, "email_norm", "extra", "upload_id", "source_line")
CANDIDATE_SCHEMA = pa.schema([(name, pa.int64() if name in ("upload_id", "source_line") else pa.string())
                              for name in COPY_COLUMNS])


class UnterminatedQuote(ValueError):
    def __init__(self, line):
        super().__init__(f"file is not valid CSV: unterminated quote starting at line {line}")
        self.line = line


class Row(NamedTuple):
    """A valid record waiting for its chunk to be written; a tuple, to keep a chunk small."""
    line: int
    cells: tuple    # the values of FIELDS, email_norm and extra; '' stands for NULL
    raw: str


@dataclass
class Chunk:
    """What one chunk of the file holds; `records` counts every CSV record consumed.

    Positions are file lines, or record numbers for API batches (`unit`).
    """
    unit: str = "line"
    records: int = 0
    lines: int = 0
    rows: dict = field(default_factory=dict)        # email_norm -> first Row with it
    errors: list = field(default_factory=list)      # (position, column, reason, raw)
    invalid: int = 0
    duplicates: int = 0
    bytes_read: int = 0
    unreadable_rest: UnterminatedQuote | None = None    # the file ends here, broken
    raw_is_source: bool = True      # raw is the text the values were parsed from, not a rendering of them
    upload_id: int | None = None
    _raws: list | None = None

    def take(self, position, values, extra, raw):
        """Validate one record and keep it, or note why not."""
        problems = record_problems({**values, **extra}, raw if self.raw_is_source else None)
        if problems:
            column, reason = problems[0]
            return self.reject(position, column, reason, raw)
        return self.keep(position, values, extra, raw)

    def keep(self, position, values, extra, raw):
        """A valid record: the first of its email in the chunk, or a duplicate of that one."""
        email_norm = normalize_email(values["email"])
        first = self.rows.get(email_norm)
        if first:
            self.duplicates += 1
            self.errors.append((position, "email", self.duplicate_reason(first.line), raw))
            return None
        self.rows[email_norm] = Row(position, candidate_cells(values, email_norm, extra), raw)
        return None

    def reject(self, position, column, reason, raw):
        self.invalid += 1
        self.errors.append((position, column, reason, raw))

    def candidate_table(self):
        """The valid records that are the first of their email in the chunk, in line order, as a table."""
        rows = list(self.rows.values())
        columns = [pa.array([row.cells[index] or None for row in rows], pa.string())
                   for index in range(len(FIELDS) + 2)]
        columns.append(pa.array([self.upload_id] * len(rows), pa.int64()))
        columns.append(pa.array([row.line for row in rows], pa.int64()))
        return pa.Table.from_arrays(columns, schema=CANDIDATE_SCHEMA)

    def candidate_raw(self, index):
        return self._candidate_raws()[index]

    def _candidate_raws(self):
        if self._raws is None:
            self._raws = [row.raw for row in self.rows.values()]
        return self._raws

    def duplicate_reason(self, first_position):
        return f"duplicate of {self.unit} {first_position} in this {'file' if self.unit == 'line' else 'batch'}"


def candidate_cells(values, email_norm, extra):
    """A candidate row's text: the values of FIELDS, email_norm and extra; '' stands for NULL."""
    return (*(values.get(name, "") for name in FIELDS), email_norm, json_object(extra))


def json_object(strings):
    """A JSON object of string values, several times quicker than json.dumps for one this small."""
    members = (f"{encode_basestring(key)}:{encode_basestring(value)}" for key, value in strings.items())
    return "{" + ",".join(members) + "}"


class UnreadableLine(Exception):
    """A physical line too big to parse; the record it belongs to is rejected unread."""


class LineTap:
    """Hands lines to csv.reader and remembers them, so a bad record can be
    reported exactly as it stood in the file. A line too long, or with far more
    fields than any storable record, is refused before csv splits it, so one
    hostile line cannot take the worker's memory."""

    def __init__(self, text, delimiter):
        self.text = text
        self.delimiter = delimiter
        self.taken = []
        self.max_delimiters = None      # set once the header is known

    def __iter__(self):
        return self

    def __next__(self):
        line = self.text.readline(MAX_PARSED_FIELD)
        if not line:
            raise StopIteration
        if len(line) == MAX_PARSED_FIELD and not line.endswith(("\n", "\r")):
            size = len(line) + self._skip_rest_of_line()
            self.taken.append(line[:1000] + "\u2026\n")
            raise UnreadableLine(f"the line is larger than {MAX_PARSED_FIELD // 1024 // 1024} MB "
                                 f"({size:,} characters); it was not read")
        delimiters = line.count(self.delimiter)
        if self.max_delimiters is not None and delimiters > self.max_delimiters:
            self.taken.append(line[:1000] + "\u2026\n")
            raise UnreadableLine(f"{delimiters + 1:,} fields")
        self.taken.append(line)
        return line

    def _skip_rest_of_line(self):
        size = 0
        while rest := self.text.readline(MAX_PARSED_FIELD):
            size += len(rest)
            if rest.endswith(("\n", "\r")):
                break
        return size

    def drain(self):
        raw = "".join(self.taken)
        self.taken.clear()
        return raw


def most_delimiters(width):
    """How many delimiters a line of a storable record can hold: MAX_FIELD_LENGTH inside each value."""
    return width * (MAX_FIELD_LENGTH + 1) + 1000


def is_blank(fields):
    """A blank line, or one of bare delimiters (spreadsheets write those for empty rows)."""
    return isinstance(fields, list) and not any(fields)


class FileTerms:
    """What a reader tells the ingest job about the file it reads (`header`, `count_records`)."""

    @property
    def unit(self):
        return "record" if self.count_records else "line"

    @property
    def update_columns(self):
        """The fields an 'update' run overwrites: those the header has."""
        return [name for name in FIELDS if name in self.header.fields]


class RowReader(FileTerms):
    """Reads the records after the header; knows each one's starting line."""

    def __init__(self, text, delimiter, upload_id, count_records=False, header=None, lines_before=0):
        """`header` and `lines_before` (the lines up to `text`) continue a file read so far by other means."""
        self.tap = LineTap(text, delimiter)
        self.reader = csv.reader(self.tap, delimiter=delimiter, strict=True)
        self.header = self._read_header(delimiter) if header is None else header
        self.upload_id = upload_id
        self.width = len(self.header.names)
        self.tap.max_delimiters = most_delimiters(self.width)
        self.lines_not_parsed = lines_before    # lines csv.reader never saw: its line_num misses them
        # API batches number their records (1, 2, …) rather than the lines of the file.
        self.count_records = count_records
        self.record_number = 0

    def _read_header(self, delimiter):
        first = next(self.reader, [])
        if len(first) == 2 and first[1] == "" and SEP_LINE.fullmatch(f"{first[0]}{delimiter}"):
            first = next(self.reader, [])
        self.tap.drain()
        return Header(first)

    def new_chunk(self):
        return Chunk(unit=self.unit, upload_id=self.upload_id)

    def skip(self, records):
        for _ in range(records):
            _, fields, _ = self._next_record()
            self.record_number += not is_blank(fields)

    def _next_record(self):
        """(first line, fields or an error reason, raw text); StopIteration at the end."""
        line = self.reader.line_num + self.lines_not_parsed + 1
        try:
            fields = next(self.reader)
        except UnreadableLine as error:
            self.lines_not_parsed += 1
            reason = str(error)
            if reason.endswith(" fields"):
                reason = f"{self.unit} {line} has {reason} but the header has {self.width}"
            return line, reason, self.tap.drain()
        except csv.Error as error:
            if "unexpected end of data" in str(error):
                raise UnterminatedQuote(line) from None
            return line, f"not valid CSV: {error}", self.tap.drain()
        return line, fields, self.tap.drain()

    def fill(self, chunk, size, position):
        """Read up to `size` records into `chunk`; False once the file is used up."""
        try:
            return self._fill(chunk, size)
        finally:
            chunk.bytes_read = position()

    def _fill(self, chunk, size):
        while chunk.records < size:
            try:
                line, fields, raw = self._next_record()
            except StopIteration:
                return False
            except UnterminatedQuote as error:
                chunk.unreadable_rest = error
                return False
            chunk.records += 1
            if is_blank(fields):
                continue
            chunk.lines += 1
            self.record_number += 1
            self._take(chunk, self.record_number if self.count_records else line, fields, raw)
        return True

    def _take(self, chunk, position, fields, raw):
        if isinstance(fields, str):
            return chunk.reject(position, None, fields, raw)
        if len(fields) != self.width:
            if len(fields) < self.width or any(fields[self.width:]):
                reason = f"{chunk.unit} {position} has {len(fields)} fields but the header has {self.width}"
                return chunk.reject(position, None, reason, raw)
        values = {name: fields[index] for name, index in self.header.fields.items()}
        values["email"] = values["email"].strip()
        extra = {name: fields[index] for index, name in self.header.extra.items() if fields[index]}
        return chunk.take(position, values, extra, raw)
