"""From the bytes of a UTF-8 file to chunks of validated rows, about a MB at a
time, in bulk: numpy finds the records of a block and what is unusual
in them, pyarrow parses and checks the plain ones, and RowReader decides every
other record on its own text. The chunks are RowReader's to the byte: the same
records, row errors, counters and candidate rows.

What cannot be cut into blocks safely (a record bigger than MAX_PENDING, a
file in Windows-1252, a header of thousands of columns) is read by RowReader
from there on.
"""
import codecs
import csv
import io
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.blocks import BLOCK_BYTES, PYTHON, VECTOR, BlockParser, RawTexts
from jobs.rows import (CANDIDATE_SCHEMA, Chunk, FileTerms, RowReader, UnreadableLine, UnterminatedQuote,
                       candidate_cells)
from webapp.csv_contract import UTF8, text_stream
from webapp.validation import FIELDS, normalize_email

# A record that does not end within this many bytes is left to RowReader. It is
# below jobs.rows.MAX_PARSED_FIELD, so that no line of a block is too long for it.
MAX_PENDING = 8 * 1024 * 1024
# Beyond this many columns, bulk parsing costs more per column than it saves.
MAX_COLUMNS = 256
# How much text a record RowReader decides is first cut out of a block with.
PROBE_CHARS = 64 * 1024
# skip() reads (and forgets) this many records at a time.
SKIP_RECORDS = 10_000

EMAIL_NORM, EXTRA = len(FIELDS), len(FIELDS) + 1


class VectorRowReader(FileTerms):
    """RowReader's interface (as jobs.ingest drives it) over the binary stream."""

    def __init__(self, binary, encoding, delimiter, upload_id, count_records=False):
        self.binary = binary
        self.encoding = encoding
        self.delimiter = delimiter
        self.upload_id = upload_id
        self.count_records = count_records
        self.record_number = 0
        self.pending = b""          # read, not yet cut into a block; starts at a record
        self.offset = 0             # of `pending` in the file
        self.line = 1               # of `pending`
        self.at_end = False         # nothing left to read after `pending`
        self.block = None
        self.done = False
        self.rest = None            # the RowReader that took over, if one did
        self.rest_stream = None
        self.row_reader_records = 0     # records RowReader decided, one by one or after taking over
        self.header = None
        if encoding == UTF8 and len(delimiter.encode()) == 1:
            self.header = self._read_header()
        if self.header is None:
            self._hand_over(with_header=False)
        elif not self.header.has_email or len(self.header.names) > MAX_COLUMNS:
            self._hand_over()
        else:
            self.blocks = BlockParser(self.header, delimiter)

    def new_chunk(self):
        return VectorChunk(unit=self.unit, upload_id=self.upload_id)

    def skip(self, records):
        while records:
            chunk = self.new_chunk()
            more = self.fill(chunk, min(records, SKIP_RECORDS))
            if chunk.unreadable_rest:
                raise chunk.unreadable_rest
            if not more:
                return
            records -= chunk.records

    def fill(self, chunk, size):
        """Read up to `size` records into `chunk`; False once the file is used up."""
        try:
            return self._fill(chunk, size)
        finally:
            chunk.finish()
            chunk.bytes_read = self._position()

    def _position(self):
        """The byte after the last record taken."""
        if self.rest:
            return self.rest_stream.position
        if self.block is None:
            return self.offset
        return self.block.offset + (int(self.block.ends[self.block.next - 1]) if self.block.next else 0)

    def _fill(self, chunk, size):
        while chunk.records < size:
            if self.rest:
                records = chunk.records
                try:
                    return self.rest._fill(chunk, size)
                finally:
                    self.row_reader_records += chunk.records - records
            block = self._current_block()
            if block is None:
                if self.rest:
                    continue
                return False
            if not self._take(chunk, block, min(len(block), block.next + size - chunk.records)):
                self.done = True
                return False
        return True

    def _take(self, chunk, block, stop):
        """The block's records up to `stop` into `chunk`: those for RowReader one by one,
        the others in bulk, numbered alike. False at an unterminated quote."""
        first = block.next
        kinds = block.kinds[first:stop]
        vector = kinds == VECTOR
        vectors_before = np.cumsum(vector) - vector
        records, number = chunk.records, self.record_number
        taken, more = stop - first, True
        counted = []       # the records RowReader decided that took a position (were not blank)
        for index in np.flatnonzero(kinds == PYTHON).tolist():
            chunk.records = records + index
            self.record_number = number + int(vectors_before[index]) + len(counted)
            lines = chunk.lines
            more = self._take_python(chunk, block, first + index)
            if chunk.lines > lines:
                counted.append(index)
            if not more:
                taken = index
                break
        block.next = stop
        vectors = np.flatnonzero(vector[:taken])
        chunk.records = records + taken
        chunk.lines += len(vectors)
        self.record_number = number + len(vectors) + len(counted)
        if len(vectors):
            if self.count_records:
                positions = number + 1 + vectors_before[vectors] + np.searchsorted(counted, vectors)
            else:
                positions = block.lines[first + vectors]
            chunk.add_rows(*block.rows(first, first + taken), positions, records + vectors,
                           block.raws(first + vectors))
        return more

    def _take_python(self, chunk, block, record):
        reader = self._row_reader(block.text(record), int(block.lines[record]))
        more = reader._fill(chunk, chunk.records + 1)
        self.record_number = reader.record_number
        self.row_reader_records += 1
        return more

    def _row_reader(self, text, line):
        reader = RowReader(io.StringIO(text, newline=""), self.delimiter, self.upload_id, self.count_records,
                           header=self.header, lines_before=line - 1)
        reader.record_number = self.record_number
        return reader

    def _current_block(self):
        """The block with records left to take, parsing the next one if need be; None at the end."""
        while self.block is None or self.block.next == len(self.block):
            if self.done:
                return None
            self.block = self._next_block()
            if self.block is None:
                return None
        return self.block

    def _next_block(self):
        wanted = BLOCK_BYTES
        while True:
            self._read(wanted)
            if not self.pending and self.at_end:
                self.done = True
                return None
            try:
                block = self.blocks.parse(self.pending, self.at_end, self.offset, self.line, self._probe)
            except (UnicodeDecodeError, pa.ArrowInvalid):
                block = None    # not UTF-8 after all: RowReader says so where it is
            else:
                if block is not None:
                    self.pending = self.pending[block.size:]
                    self.offset += block.size
                    self.line = block.next_line
                    return block
                if len(self.pending) < MAX_PENDING:
                    wanted = min(2 * len(self.pending), MAX_PENDING)
                    continue
            self._hand_over()
            return None

    def _read(self, wanted):
        """Read on until `pending` holds `wanted` bytes, or the file ends."""
        pieces = [self.pending]
        size = len(self.pending)
        while size < wanted and not self.at_end:
            piece = self.binary.read(wanted - size)
            self.at_end = not piece
            pieces.append(piece)
            size += len(piece)
        self.pending = b"".join(pieces)

    def _probe(self, data, start, line, final):
        """Where the record RowReader reads from data[start:] ends; None if it may go on past `data`."""
        window = PROBE_CHARS
        while True:
            stop = data.find(b"\n", start + window) + 1
            last = not stop
            if last:
                stop = len(data) if final else data.rfind(b"\n") + 1
                if stop <= start:
                    return None
            text = data[start:stop].decode()
            reader = self._row_reader(text, line)
            try:
                reader._next_record()
            except UnterminatedQuote:
                pass
            used = reader.tap.text.tell()
            if used < len(text) or (last and final):
                return start + len(text[:used].encode())
            if last:
                return None
            window *= 4

    def _read_header(self):
        """The header as RowReader reads it, from the first bytes; None if it is for RowReader to read."""
        wanted = BLOCK_BYTES
        while True:
            self._read(wanted)
            bom = len(codecs.BOM_UTF8) if self.pending.startswith(codecs.BOM_UTF8) else 0
            # Whole lines only: the bytes of a character may be split at the end of what was read.
            stop = len(self.pending) if self.at_end else self.pending.rfind(b"\n") + 1
            try:
                text = self.pending[bom:stop].decode()
                reader = RowReader(io.StringIO(text, newline=""), self.delimiter, self.upload_id)
                used = reader.tap.text.tell()
            except (csv.Error, UnreadableLine, UnicodeDecodeError):
                used = None     # broken, or cut short by the end of what was read
            if used is not None and (used < len(text) or self.at_end):
                size = bom + len(text[:used].encode())
                self.pending = self.pending[size:]
                self.offset = size
                self.line = reader.reader.line_num + 1
                return reader.header
            if self.at_end or len(self.pending) >= MAX_PENDING:
                return None     # RowReader reads it, and raises what it raises
            wanted = min(2 * len(self.pending), MAX_PENDING)

    def _hand_over(self, with_header=True):
        """RowReader reads the rest of the file, from the start of `pending` (or of the file)."""
        self.block = None
        self.rest_stream = ChainedStream(self.pending, self.binary, self.offset)
        text = text_stream(io.BufferedReader(self.rest_stream, 1 << 20), self.encoding)
        if with_header:
            self.rest = RowReader(text, self.delimiter, self.upload_id, self.count_records,
                                  header=self.header, lines_before=self.line - 1)
            self.rest.record_number = self.record_number
        else:
            self.rest = RowReader(text, self.delimiter, self.upload_id, self.count_records)
            self.header = self.rest.header
        self.pending = b""


class ChainedStream(io.RawIOBase):
    """`head`, then the rest of `tail`, as one stream; `position` is in the file."""

    def __init__(self, head, tail, offset):
        self.head = memoryview(head)
        self.tail = tail
        self.position = offset

    def readable(self):
        return True

    def readinto(self, target):
        if self.head:
            size = min(len(target), len(self.head))
            target[:size] = self.head[:size]
            self.head = self.head[size:]
        else:
            size = self.tail.readinto(target)
        self.position += size
        return size


@dataclass
class VectorChunk(Chunk):
    """A chunk whose valid records are held as columns, most of them taken in bulk:
    its duplicates, and the order of its errors, are settled by finish() once it is full."""
    # A record's sequence number is its index among the chunk's records: it orders rows and errors.
    parts: list = field(default_factory=list)           # (columns, VECTOR or not, positions, sequence numbers, raws)
    python_rows: list = field(default_factory=list)     # (sequence number, position, cells, raw)
    keyed_errors: list = field(default_factory=list)    # (sequence number, error)
    table: pa.Table | None = None
    raws: "RawTexts | None" = None                      # of each candidate

    def add_rows(self, columns, vector, positions, sequence, raws):
        """Valid records taken in bulk: the columns of parsed records, those that are `vector` kept."""
        self.parts.append((columns, vector, positions, sequence, raws))

    def keep(self, position, values, extra, raw):
        """A valid record RowReader decided: held for finish() to deduplicate along with the others."""
        cells = candidate_cells(values, normalize_email(values["email"]), extra)
        self.python_rows.append((self.records - 1, position, cells, raw))

    def reject(self, position, column, reason, raw):
        self.invalid += 1
        self.keyed_errors.append((self.records - 1, (position, column, reason, raw)))

    def finish(self):
        """Duplicates of an earlier record in the chunk become errors; the first ones the candidates."""
        errors, self.keyed_errors = self.keyed_errors, []
        columns, rows, positions, sequence, raws = self._valid_rows()
        self.parts, self.python_rows = [], []
        if len(rows):
            codes = pc.dictionary_encode(columns[EMAIL_NORM].take(rows).combine_chunks()).indices.to_numpy()
            # Codes count up in order of first appearance: a first one is a new highest.
            highest = np.maximum.accumulate(codes)
            first = np.ones(len(codes), bool)
            first[1:] = highest[1:] > highest[:-1]
            first_positions = positions[first]
            duplicates = np.flatnonzero(~first)
            self.duplicates += len(duplicates)
            reasons = map(self.duplicate_reason, first_positions[codes[duplicates]].tolist())
            errors += zip(sequence[duplicates].tolist(),
                          zip(positions[duplicates].tolist(), repeat("email"), reasons, raws.take(duplicates).all()))
            kept = pa.array(rows[first])
            self.table = pa.Table.from_arrays(
                [column.take(kept) for column in columns]
                + [pa.repeat(pa.scalar(self.upload_id, pa.int64()), len(first_positions)),
                   pa.array(first_positions, pa.int64())], schema=CANDIDATE_SCHEMA)
            self.raws = raws.take(np.flatnonzero(first))
        errors.sort(key=itemgetter(0))
        self.errors.extend(error for _, error in errors)

    def _valid_rows(self):
        """(columns, the rows of them that are valid records in order, and those records'
        positions, sequence numbers and raws)."""
        parts = self.parts
        if self.python_rows:
            parts = parts + [self._python_part()]
        if not parts:
            return [], [], None, None, None
        columns = [pa.chunked_array([part[0][index] for part in parts], pa.string()) for index in range(EXTRA + 1)]
        rows = np.flatnonzero(np.concatenate([part[1] for part in parts]))
        positions = np.concatenate([part[2] for part in parts])
        sequence = np.concatenate([part[3] for part in parts])
        raws = RawTexts.joined([part[4] for part in parts])
        if self.python_rows and len(parts) > 1:
            order = np.argsort(sequence, kind="stable")
            rows, positions, sequence, raws = rows[order], positions[order], sequence[order], raws.take(order)
        return columns, rows, positions, sequence, raws

    def _python_part(self):
        rows = self.python_rows
        columns = [pa.array([row[2][index] or None for row in rows], pa.string()) for index in range(EXTRA + 1)]
        return (columns, np.ones(len(rows), bool), np.array([row[1] for row in rows], np.int64),
                np.array([row[0] for row in rows], np.int64), RawTexts.of_strings([row[3] for row in rows]))

    def candidate_table(self):
        return CANDIDATE_SCHEMA.empty_table() if self.table is None else self.table

    def candidate_raw(self, index):
        return self.raws.text(index)
