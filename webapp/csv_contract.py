"""What Intake accepts as a CSV file: encodings, delimiters, header names.

The upload form uses it to refuse a hopeless file at once; the ingest job uses
it to read every line. Both read the same rules from here.
"""
import codecs
import csv
import io
import re

DELIMITERS = (",", ";", "\t", "|")

HEADER_ALIASES = {
    "email": ("email", "e-mail", "email address", "e-mail address", "mail"),
    "first_name": ("first_name", "first name", "firstname", "given name", "forename"),
    "last_name": ("last_name", "last name", "lastname", "surname", "family name"),
    "phone": ("phone", "phone number", "telephone", "tel", "mobile"),
    "company": ("company", "company name", "organisation", "organization", "employer"),
    "city": ("city", "town"),
    "country": ("country", "country code", "nation"),
}
_ALIAS_TO_FIELD = {
    re.sub(r"[\s_-]+", "", alias): field for field, aliases in HEADER_ALIASES.items() for alias in aliases
}

# Magic numbers of files people rename to .csv by mistake.
BINARY_SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (an .xlsx workbook is one: upload it under a name ending .xlsx)",
    b"\x1f\x8b": "a gzip archive (decompress it first)",
    b"\xd0\xcf\x11\xe0": "an old Excel or Word document (save it as .xlsx or CSV)",
}
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)

# Bytes 0x81, 0x8D, 0x8F, 0x90 and 0x9D mean nothing in Windows-1252; read them as Latin-1.
codecs.register_error("latin1", lambda error: (error.object[error.start:error.end].decode("latin-1"), error.end))

UTF8 = "utf-8-sig"
WINDOWS_1252 = "cp1252"


class NotACsvFile(ValueError):
    """The file cannot be read as CSV at all; the message says why."""


def normalize_header(name):
    return re.sub(r"[\s_-]+", "", name.strip().lstrip("\ufeff").lower())


class Header:
    """The header row: which column holds which field, and the extra columns."""

    def __init__(self, names):
        # PostgreSQL text, and so a key of the extra JSON, cannot hold NUL.
        self.names = [name.replace("\x00", "\ufffd") for name in names]
        self.fields = {}
        self.extra = {}
        self._extra_names = set()
        for index, name in enumerate(self.names):
            field = _ALIAS_TO_FIELD.get(normalize_header(name))
            if field and field not in self.fields:
                self.fields[field] = index
            else:
                self.extra[index] = self._extra_name(name, index, repeats_a_field=bool(field))
                self._extra_names.add(self.extra[index])

    def _extra_name(self, name, index, repeats_a_field):
        """Extra columns keep their header name; a repeated or empty one gets its position."""
        name = name.strip()
        if not name or repeats_a_field or name in self._extra_names:
            return f"{name or 'column'} (column {index + 1})"
        return name

    @property
    def has_email(self):
        return "email" in self.fields


def split_fields(mapping):
    """{name: value} into (known fields, extra columns), by the same header aliases."""
    values, extra = {}, {}
    for name, value in mapping.items():
        field = _ALIAS_TO_FIELD.get(normalize_header(name))
        if field and field not in values:
            values[field] = value
        else:
            extra[name] = value
    return values, extra


def binary_kind(sample):
    """What kind of non-text file `sample` (the first bytes) starts, or None."""
    if sample.startswith(UTF16_BOMS):
        return "UTF-16 text (save it as UTF-8)"
    for signature, kind in BINARY_SIGNATURES.items():
        if sample.startswith(signature):
            return kind
    if _looks_like_utf16(sample):
        return "UTF-16 text (save it as UTF-8)"
    text_bytes = sum(byte >= 0x20 or byte in b"\t\n\r" for byte in sample)
    if sample and text_bytes / len(sample) < 0.9:
        return "binary data"
    return None


def _looks_like_utf16(sample):
    """UTF-16 without a BOM: mostly-ASCII text has a NUL in every other byte."""
    even, odd = sample[0::2], sample[1::2]
    if len(odd) < 4:
        return False
    return any(zeros.count(0) > 0.7 * len(zeros) and others.count(0) < 0.1 * len(others)
               for zeros, others in ((odd, even), (even, odd)))


# Excel writes 'sep=;' as the first line to name the delimiter; the header follows it.
SEP_LINE = re.compile(r"sep=([,;\t|])", re.IGNORECASE)


def sniff_delimiter(header_line):
    """The candidate that splits the header line into the most columns (',' on a tie);
    delimiters inside quoted names do not count."""
    header_line = re.sub(r'"[^"]*"', "", header_line)
    counts = {delimiter: header_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def first_line(text):
    return text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""


def read_header(sample, encoding):
    """(Header, delimiter) from the first bytes of a file; raises NotACsvFile."""
    text = sample.decode(encoding, errors="replace")
    line = first_line(text)
    hint = SEP_LINE.fullmatch(line)
    if hint:
        line = (text.lstrip("\ufeff").splitlines()[1:] or [""])[0]
    if not line.strip():
        raise NotACsvFile("the file has no header row (the first line is empty)")
    delimiter = hint.group(1) if hint else sniff_delimiter(line)
    names = next(csv.reader(io.StringIO(line), delimiter=delimiter))
    return checked_header(names), delimiter


def checked_header(names, column="column", where="in the header"):
    """The Header of these names; raises NotACsvFile if none of them is an email `column`."""
    header = Header(names)
    if not header.has_email:
        found = ", ".join(repr(name) for name in names[:10])
        raise NotACsvFile(f"no email {column} {where} (found {found}); name one {column} 'email'")
    return header


class EncodingDetector:
    """Fed the file piece by piece: UTF-8 if every byte decodes as UTF-8, else Windows-1252."""

    def __init__(self):
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.is_utf8 = True

    def feed(self, piece, final=False):
        if self.is_utf8:
            try:
                self._decoder.decode(piece, final)
            except UnicodeDecodeError:
                self.is_utf8 = False

    @property
    def encoding(self):
        return UTF8 if self.is_utf8 else WINDOWS_1252


# In a file that is not all UTF-8, what is UTF-8 is read as UTF-8 and only the
# bytes that are not are read as Windows-1252 (a file mixing both stays readable).
codecs.register_error("cp1252", lambda error: (
    error.object[error.start:error.end].decode(WINDOWS_1252, errors="latin1"), error.end))


def decode_errors(encoding):
    """The error handler that reads a file of this `encoding` as UTF-8."""
    return "cp1252" if encoding == WINDOWS_1252 else "strict"


def text_stream(raw, encoding):
    """A text view of a binary stream, as the csv module wants it (newline='')."""
    return io.TextIOWrapper(raw, encoding=UTF8, errors=decode_errors(encoding), newline="")
