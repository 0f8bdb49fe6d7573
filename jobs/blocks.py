"""A block of a UTF-8 file's bytes, cut into records and parsed in bulk.

numpy finds where each record starts and ends (newlines outside quotes) and
what is unusual in it (a quote out of place, a control character, a lone
carriage return, the wrong number of fields); pyarrow parses the plain records
and checks their values column by column. Each record comes out with a kind:
BLANK, VECTOR (decided here) or PYTHON (for RowReader to decide on its text).
"""
import codecs
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from jobs.rows import most_delimiters
from webapp.validation import (CONTROL_CHARACTERS, DIGITS_LAST_LABEL_RE2, EMAIL_RE2, FIELDS, MAX_EMAIL_LENGTH,
                               MAX_FIELD_LENGTH, MAX_LOCAL_LENGTH)

BLOCK_BYTES = 1024 * 1024

QUOTE, LF, CR, DELIMITER, CONTROL = 1, 2, 3, 4, 5
BLANK, VECTOR, PYTHON = 0, 1, 2
# str.strip()'s ASCII characters. A value with other whitespace around it is not
# bulk-checked: the control characters keep the record from it, the others EMAIL_RE2.
ASCII_WHITESPACE = "".join(character for character in map(chr, range(128)) if character.isspace())


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
