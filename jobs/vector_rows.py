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
from json.encoder import encode_basestring
from operator import itemgetter
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from jobs.rows import (CANDIDATE_SCHEMA, Chunk, FileTerms, RowReader, UnreadableLine, UnterminatedQuote,
                       candidate_cells, most_delimiters)
from webapp.csv_contract import UTF8, text_stream
from webapp.validation import (CONTROL_CHARACTERS, DIGITS_LAST_LABEL_RE2, EMAIL_RE2, FIELDS, MAX_EMAIL_LENGTH,
                               MAX_FIELD_LENGTH, MAX_LOCAL_LENGTH, normalize_email)

BLOCK_BYTES = 1024 * 1024
# A record that does not end within this many bytes is left to RowReader. It is
# below jobs.rows.MAX_PARSED_FIELD, so that no line of a block is too long for it.
MAX_PENDING = 8 * 1024 * 1024
# Beyond this many columns, bulk parsing costs more per column than it saves.
MAX_COLUMNS = 256
# How much text a record RowReader decides is first cut out of a block with.
PROBE_CHARS = 64 * 1024
# skip() reads (and forgets) this many records at a time.
SKIP_RECORDS = 10_000

QUOTE, LF, CR, DELIMITER, CONTROL = 1, 2, 3, 4, 5
BLANK, VECTOR, PYTHON = 0, 1, 2
# str.strip()'s ASCII characters. A value with other whitespace around it is not
# bulk-checked: the control characters keep the record from it, the others EMAIL_RE2.
ASCII_WHITESPACE = "".join(character for character in map(chr, range(128)) if character.isspace())
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


class BlockParser:
    """Cuts bytes into records, and parses and checks the plain ones in bulk, for one file."""

    def __init__(self, header, delimiter):
        self.header = header
        self.width = len(header.names)
        self.email = header.fields["email"]
        self.max_delimiters = most_delimiters(self.width)
        self.delimiter = ord(delimiter)
        self.classes = np.zeros(256, np.uint8)
        self.classes[[byte for byte in range(128) if CONTROL_CHARACTERS.match(chr(byte))]] = CONTROL
        self.classes[[ord('"'), ord("\n"), ord("\r"), self.delimiter]] = [QUOTE, LF, CR, DELIMITER]
        # What may stand before an opening quote, or after a closing one.
        self.field_edges = np.isin(np.arange(256), [self.delimiter, ord("\n"), ord("\r"), ord('"')])
        names = [str(index) for index in range(self.width)]
        self.csv_options = dict(
            read_options=pa_csv.ReadOptions(column_names=names, use_threads=False, block_size=4 * BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                              ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                  strings_can_be_null=False, quoted_strings_can_be_null=False))
        self.extra_keys = [(index, encode_basestring(name) + ':"') for index, name in header.extra.items()]

    def parse(self, data, final, offset, line, probe):
        """The whole records at the head of `data` (at `offset` and `line` of the file), or None."""
        layout = Layout(self, data, final)
        starts, ends, fields, probed, line_ends = layout.records(line, probe)
        if not len(starts):
            return None
        size = int(ends[-1])
        kinds = layout.kinds(starts, ends, fields, probed)
        parsed = kinds == VECTOR
        plain = np.flatnonzero(parsed)
        columns, valid = self._checked_rows(data, starts[plain], ends[plain])
        kinds[plain[~valid]] = PYTHON
        next_line = line + layout.line_ends_before(size)
        return ParsedBlock(data[:size], offset, starts, ends, line + line_ends, kinds, parsed, columns, next_line)

    def _checked_rows(self, data, starts, ends):
        """(candidate columns, valid or not) of plain records; webapp.validation decides the others."""
        if not len(starts):
            return [], np.zeros(0, bool)
        table = pa_csv.read_csv(pa.py_buffer(contiguous(data, starts, ends)), **self.csv_options)
        if table.num_rows != len(starts):
            raise pa.ArrowInvalid(f"{table.num_rows} rows parsed from {len(starts)} records")
        columns = [column.combine_chunks() for column in table.columns]
        email = pc.utf8_trim(columns[self.email], ASCII_WHITESPACE)
        long = bool(np.any(ends - starts > MAX_FIELD_LENGTH))
        return self._candidate_columns(columns, email), self._valid(columns, email, long)

    def _valid(self, columns, email, long):
        """Rows bulk checks find valid. Byte lengths stand in for lengths in characters: a
        row they may be wrong about (longer in bytes than allowed) is left to webapp.validation."""
        email_bytes = byte_lengths(email)
        valid = ((email_bytes <= MAX_EMAIL_LENGTH)
                 & (pc.find_substring(email, "@").to_numpy() <= MAX_LOCAL_LENGTH)
                 & pc.match_substring_regex(email, EMAIL_RE2).to_numpy(zero_copy_only=False))
        if long:
            for column in columns:
                valid &= byte_lengths(column) <= MAX_FIELD_LENGTH
        # Only an address ending in a digit can have a last label of digits.
        ends_in_digit = np.flatnonzero(valid & np.isin(last_bytes(email), DIGITS))
        if len(ends_in_digit):
            digits_only = pc.match_substring_regex(email.take(ends_in_digit), DIGITS_LAST_LABEL_RE2)
            valid[ends_in_digit[digits_only.to_numpy(zero_copy_only=False)]] = False
        return valid

    def _candidate_columns(self, columns, email):
        """FIELDS, email_norm and extra of each row; an empty value is NULL."""
        cells = [empty_as_null(email)]
        cells += [empty_as_null(columns[self.header.fields[name]]) if name in self.header.fields
                  else pa.nulls(len(email), pa.string()) for name in FIELDS[1:]]
        cells.append(pc.utf8_lower(email))
        cells.append(self._extra(columns, len(email)))
        return cells

    def _extra(self, columns, rows):
        """json_object() of each row's non-empty extra values."""
        members = None
        for index, key in self.extra_keys:
            value = columns[index]
            member = with_validity(pc.binary_join_element_wise(key, json_escaped(value), '"', ""),
                                   byte_lengths(value) > 0)
            members = member if members is None else pc.coalesce(
                pc.binary_join_element_wise(members, member, ","), members, member)
        if members is None:
            return pa.repeat(pa.scalar("{}"), rows)
        return pc.coalesce(pc.binary_join_element_wise("{", members, "}", ""), "{}")


DIGITS = np.arange(ord("0"), ord("9") + 1)
# encode_basestring()'s escapes of what a value parsed in bulk can hold (no other control character).
JSON_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


def string_buffers(strings):
    """(offsets, bytes) of a string array without nulls, as numpy arrays."""
    _, offsets, data = strings.buffers()
    offsets = np.frombuffer(offsets, np.int32)[strings.offset:strings.offset + len(strings) + 1]
    return offsets, np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)


def byte_lengths(strings):
    return np.diff(string_buffers(strings)[0])


def last_bytes(strings):
    offsets, data = string_buffers(strings)
    return data[np.maximum(offsets[1:] - 1, 0)] if len(data) else np.zeros(len(strings), np.uint8)


def with_validity(strings, present):
    """`strings` (without nulls) with NULL where not `present`."""
    if present.all():
        return strings
    _, offsets, data = strings.buffers()
    validity = np.concatenate((np.zeros(strings.offset, bool), present))
    return pa.Array.from_buffers(pa.string(), len(strings),
                                 [pa.py_buffer(np.packbits(validity, bitorder="little")), offsets, data],
                                 offset=strings.offset)


def empty_as_null(strings):
    return with_validity(strings, byte_lengths(strings) > 0)


def json_escaped(strings):
    """Each string as encode_basestring() escapes it, without its quotes; only rows that need it are touched."""
    offsets, data = string_buffers(strings)
    data = data[offsets[0]:offsets[-1]]
    special = np.flatnonzero((data == ord("\\")) | (data == ord('"')) | (data < 0x20))
    if not len(special):
        return strings
    rows = np.searchsorted(offsets, special + offsets[0], side="right") - 1
    rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))]
    escaped = strings.take(rows)
    present = set(data[special].tobytes().decode())
    for character, escape in JSON_ESCAPES:
        if character in present:
            escaped = pc.replace_substring(escaped, character, escape)
    mask = np.zeros(len(strings), bool)
    mask[rows] = True
    return pc.replace_with_mask(strings, pa.array(mask), escaped)


def contiguous(data, starts, ends):
    """The bytes of records (in order, each one's starts[i]:ends[i] of `data`), joined."""
    gaps = np.flatnonzero(starts[1:] != ends[:-1]) + 1
    firsts = np.concatenate(([0], gaps))
    lasts = np.concatenate((gaps - 1, [len(starts) - 1]))
    view = memoryview(data)
    return b"".join(view[start:end] for start, end in zip(starts[firsts].tolist(), ends[lasts].tolist()))


class Layout:
    """Where the quotes, line ends and delimiters of a buffer are, and which
    records they make, the way csv.reader (strict, doublequote) reads them.

    The buffer starts at a record. Records are cut at line ends outside quotes
    (by quote parity) as long as every quote stands where csv.reader reads it as
    one: an opening quote at the start of a field, a closing one before a
    delimiter, a line end or another quote. From a quote out of place, RowReader
    decides where the record ends, and parity is counted again after it (both
    ways being worked out in advance).
    """

    def __init__(self, parser, data, final):
        self.parser = parser
        self.data = data
        self.final = final
        self.bytes = array = np.frombuffer(data, np.uint8)
        size = len(array)
        # Positions of the bytes that matter, and what each is; all else is indexed into these.
        special = array < 0x20
        special |= array == ord('"')
        special |= array == parser.delimiter
        special |= array == 0x7F
        self.where = where = np.flatnonzero(special)
        classes = parser.classes[array[where]]
        is_quote = classes == QUOTE
        self.quotes = where[is_quote]
        crs = where[classes == CR]
        # '\r' ends a line unless '\n' follows; at the end of a buffer that is not yet known.
        after = crs + 1
        lone = np.where(after < size, array[np.minimum(after, size - 1)] != ord("\n"), final)
        ends_line = classes == LF
        ends_line[classes == CR] = lone
        self.terminator_at = np.flatnonzero(ends_line)
        self.terminators = where[self.terminator_at]
        # Records with these in them are left to RowReader.
        self.oddities = np.concatenate((crs[lone], where[classes == CONTROL]))
        parity = np.bitwise_xor.accumulate(is_quote.view(np.uint8)) ^ is_quote     # of the quotes before
        self.bad_quotes = self._bad_quotes(size)
        # For each parity of the quotes before a record's start: the line ends outside
        # quotes (as indexes of `terminators`), and how many delimiters outside quotes
        # there are up to each position of `where`.
        outside = [parity[self.terminator_at] == record_parity for record_parity in (0, 1)]
        self.record_ends = tuple(np.flatnonzero(mask) for mask in outside)
        self.record_end_positions = tuple(self.terminators[mask] for mask in outside)
        is_delimiter = classes == DELIMITER
        self.field_delimiters = tuple(np.cumsum(is_delimiter & (parity == record_parity), dtype=np.int32)
                                      for record_parity in (0, 1))

    def _bad_quotes(self, size):
        """For each parity of the quotes before a record's start: the quotes out of place."""
        quotes, edges = self.quotes, self.parser.field_edges
        before = np.ones(len(quotes), bool)
        before[quotes > 0] = edges[self.bytes[quotes[quotes > 0] - 1]]
        after = np.ones(len(quotes), bool)
        after[quotes < size - 1] = edges[self.bytes[quotes[quotes < size - 1] + 1]]
        odd = np.arange(len(quotes)) % 2 == 1
        return np.flatnonzero(~np.where(odd, after, before)), np.flatnonzero(~np.where(odd, before, after))

    def records(self, line, probe):
        """(starts, ends, field counts, decided by RowReader, line ends before each) of the whole records."""
        size = len(self.bytes)
        runs = []
        start = 0
        while start < size:
            run, stopped = self._plain_run(start)
            if run:
                runs.append(run)
                start = int(run.ends[-1])
            if not stopped:
                if not self.final or start == size:
                    break
                if (len(self.quotes) - np.searchsorted(self.quotes, start)) % 2 == 0:
                    runs.append(self._last_record(start))
                    break
            line_ends = self.line_ends_before(start)
            end = probe(self.data, start, line + line_ends, self.final)
            if end is None:
                break
            runs.append(Run(np.array([end]), np.zeros(1, np.int64), np.array([line_ends]), True))
            start = end
        if not runs:
            runs.append(Run(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), False))
        ends = np.concatenate([run.ends for run in runs])
        return (np.concatenate(([0], ends))[:-1], ends, np.concatenate([run.fields for run in runs]),
                np.concatenate([np.full(len(run.ends), run.probed) for run in runs]),
                np.concatenate([run.line_ends for run in runs]))

    def _plain_run(self, start):
        """(the records from `start` that end before anything out of place, or None; whether
        something out of place stopped them: a quote, or a line with too many delimiters)."""
        quote = int(np.searchsorted(self.quotes, start))
        parity = quote % 2
        bad = self.bad_quotes[parity]
        bad_index = np.searchsorted(bad, quote)
        bad_at = int(self.quotes[bad[bad_index]]) if bad_index < len(bad) else len(self.bytes)
        positions = self.record_end_positions[parity]
        first, stop = np.searchsorted(positions, [start, bad_at])
        ends = positions[first:stop] + 1
        wide = self._first_wide(start, ends)
        ends = ends[:wide]
        stopped = wide is not None or bad_at < len(self.bytes)
        if not len(ends):
            return None, stopped
        line_ends = self.record_ends[parity][first:first + len(ends)]
        fields = self._fields(parity, start, self.terminator_at[line_ends])
        return Run(ends, fields, np.concatenate(([self.line_ends_before(start)], line_ends[:-1] + 1)), False), stopped

    def _last_record(self, start):
        """The record from `start` to the end of the file, which has no line end."""
        parity = int(np.searchsorted(self.quotes, start)) % 2
        fields = self._fields(parity, start, np.array([len(self.where) - 1]))
        return Run(np.array([len(self.bytes)]), fields, np.array([self.line_ends_before(start)]), False)

    def line_ends_before(self, position):
        return int(np.searchsorted(self.terminators, position))

    def _fields(self, parity, start, last_wheres):
        """Field counts of the records from `start` whose last special bytes are these (indexes of `where`)."""
        return np.diff(self._delimiters_up_to(self.field_delimiters[parity], start, last_wheres)) + 1

    def _delimiters_up_to(self, counts, start, last_wheres):
        """`counts` (a running count along `where`) before `start`, then at each of `last_wheres`."""
        padded = np.concatenate(([0], counts))
        return padded[np.concatenate(([int(np.searchsorted(self.where, start)) - 1], last_wheres)) + 1]

    def _first_wide(self, start, ends):
        """The first record with more delimiters than RowReader reads a line with, if any."""
        starts = np.concatenate(([start], ends[:-1]))
        long = np.flatnonzero(ends - starts > self.parser.max_delimiters)
        delimiters = self.field_delimiters[0] + self.field_delimiters[1]
        for index in long.tolist():
            last = np.array([int(np.searchsorted(self.where, ends[index])) - 1])
            if np.diff(self._delimiters_up_to(delimiters, starts[index], last))[0] > self.parser.max_delimiters:
                return index
        return None

    def kinds(self, starts, ends, fields, probed):
        """BLANK, VECTOR (plain, for bulk parsing) or PYTHON (for RowReader) of each record."""
        data = self.bytes
        last = data[ends - 1]
        crlf = (last == ord("\n")) & (ends - starts >= 2) & (data[np.maximum(ends - 2, 0)] == ord("\r"))
        content = ends - starts - (last == ord("\n")) - crlf - (last == ord("\r"))
        kinds = np.where(probed | (fields != self.parser.width), PYTHON, VECTOR).astype(np.uint8)
        oddities = self.oddities[self.oddities < ends[-1]]
        kinds[np.searchsorted(starts, oddities, side="right") - 1] = PYTHON
        # csv.reader keeps a BOM inside the file; pyarrow would drop it at the start of what it parses.
        bom = np.flatnonzero((data[starts] == 0xEF) & (ends - starts >= 3))
        kinds[bom[[data[start + 1:start + 3].tobytes() == codecs.BOM_UTF8[1:] for start in starts[bom]]]] = PYTHON
        kinds[(fields - 1 == content) & ~probed] = BLANK
        return kinds


class Run(NamedTuple):
    """Consecutive records: where each ends, its field count and the line ends before it."""
    ends: np.ndarray
    fields: np.ndarray
    line_ends: np.ndarray
    probed: bool        # decided by RowReader (one record)


@dataclass
class ParsedBlock:
    """Records of a block: their bytes (starts, ends of `data`), first lines and
    kinds, and the candidate columns of those `parsed` in bulk; `next` is the
    first record not taken yet."""
    data: bytes
    offset: int
    starts: np.ndarray
    ends: np.ndarray
    lines: np.ndarray
    kinds: np.ndarray
    parsed: np.ndarray
    columns: list
    next_line: int
    next: int = 0

    def __post_init__(self):
        self.row_of = np.cumsum(self.parsed) - 1      # of each parsed record in `columns`

    def __len__(self):
        return len(self.starts)

    @property
    def size(self):
        return len(self.data)

    def rows(self, first, stop):
        """(candidate columns, which of them are VECTOR records) of the records first…stop parsed in bulk."""
        parsed = np.flatnonzero(self.parsed[first:stop]) + first
        row = int(self.row_of[parsed[0]])
        return [column.slice(row, len(parsed)) for column in self.columns], self.kinds[parsed] == VECTOR

    def raws(self, records):
        return RawTexts.of_block(self.data, self.starts[records], self.ends[records])

    def text(self, record):
        return self.data[self.starts[record]:self.ends[record]].decode()


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


class RawTexts:
    """Records as they stood in the file: slices of blocks' bytes (`sources`) or, where
    `source` is negative, texts RowReader kept (`strings`); decoded when asked for."""

    def __init__(self, sources, strings, source, starts, ends):
        self.sources, self.strings = sources, strings
        self.source, self.starts, self.ends = source, starts, ends

    @classmethod
    def of_block(cls, data, starts, ends):
        return cls([data], [], np.zeros(len(starts), np.int32), starts, ends)

    @classmethod
    def of_strings(cls, strings):
        indexes = np.arange(len(strings))
        return cls([], strings, np.full(len(strings), -1, np.int32), indexes, indexes)

    @classmethod
    def joined(cls, all_raws):
        sources, strings, source, starts = [], [], [], []
        for raws in all_raws:
            source.append(np.where(raws.source < 0, -1, raws.source + len(sources)))
            starts.append(np.where(raws.source < 0, raws.starts + len(strings), raws.starts))
            sources += raws.sources
            strings += raws.strings
        return cls(sources, strings, np.concatenate(source), np.concatenate(starts),
                   np.concatenate([raws.ends for raws in all_raws]))

    def take(self, indexes):
        return RawTexts(self.sources, self.strings, self.source[indexes], self.starts[indexes], self.ends[indexes])

    def text(self, index):
        return self._text(int(self.source[index]), int(self.starts[index]), int(self.ends[index]))

    def all(self):
        return [self._text(*row) for row in zip(self.source.tolist(), self.starts.tolist(), self.ends.tolist())]

    def _text(self, source, start, end):
        return self.strings[start] if source < 0 else self.sources[source][start:end].decode()
