"""The lines of a JSON Lines file as chunks of validated rows, as RowReader
makes them of a CSV file. Positions are line numbers; a blank line is skipped."""
from itertools import chain

from jobs.rows import MAX_PARSED_FIELD, Chunk, FileTerms
from webapp.csv_contract import decode_errors
from webapp.json_lines import NotAnObject, first_object_header, parse_line


class JsonLinesReader(FileTerms):
    """RowReader's interface (as jobs.ingest drives it) over the binary stream of a JSON Lines file."""

    count_records = False

    def __init__(self, binary, encoding, upload_id):
        self.binary = binary
        self.errors = decode_errors(encoding)
        self.upload_id = upload_id
        self.position = 0
        self.lines = self._lines()
        # Up to the first object: read now for the header, and again by fill().
        read = []
        for line, text in self.lines:
            read.append((line, text))
            if not is_blank(text):
                break
        self.header = first_object_header("".join(text or "" for _, text in read))
        self.lines = chain(read, self.lines)

    def new_chunk(self):
        # A line's text holds escapes (\u0000) that its values do not: each value is checked on its own.
        return Chunk(unit=self.unit, upload_id=self.upload_id, raw_is_source=False)

    def skip(self, records):
        for _ in zip(range(records), self.lines):
            pass

    def fill(self, chunk, size):
        """Read up to `size` lines into `chunk`; False once the file is used up."""
        try:
            return self._fill(chunk, size)
        finally:
            chunk.bytes_read = self.position

    def _fill(self, chunk, size):
        while chunk.records < size:
            line, text = next(self.lines, (None, None))
            if line is None:
                return False
            chunk.records += 1
            if not is_blank(text):
                chunk.lines += 1
                self._take(chunk, line, text)
        return True

    def _take(self, chunk, line, text):
        if text is None:
            return chunk.reject(line, None, f"the line is larger than {MAX_PARSED_FIELD // 1024 // 1024} MB; "
                                            "it was not read", "")
        try:
            values, extra = parse_line(text)
        except NotAnObject as error:
            return chunk.reject(line, error.column, str(error), text)
        if "email" in values:
            values["email"] = values["email"].strip()
        return chunk.take(line, values, extra, text)

    def _lines(self):
        """(line number, text) of every line; the text of a line too long to parse is None."""
        number = 0
        while data := self.binary.readline(MAX_PARSED_FIELD):
            number += 1
            self.position += len(data)
            if len(data) == MAX_PARSED_FIELD and not data.endswith(b"\n"):
                self._skip_rest_of_line()
                yield number, None
                continue
            text = data.decode("utf-8", errors=self.errors)
            yield number, text.lstrip("\ufeff") if number == 1 else text

    def _skip_rest_of_line(self):
        while rest := self.binary.readline(MAX_PARSED_FIELD):
            self.position += len(rest)
            if rest.endswith(b"\n"):
                return


def is_blank(text):
    return text is not None and not text.strip()
