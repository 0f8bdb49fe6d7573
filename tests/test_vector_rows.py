"""VectorRowReader against RowReader: for any file, the same chunks (records,
lines, counters, row errors, candidate rows and their raw text) and the same
resume after a checkpoint. No database is needed."""
import io
import json
import random
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from jobs.rows import RowReader
from jobs.vector_rows import VectorRowReader
from webapp.csv_contract import EncodingDetector, NotACsvFile, read_header, text_stream
from webapp.validation import BULK_LETTERS, DIGITS_LAST_LABEL_RE2, EMAIL, EMAIL_RE2

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "hostile"
UPLOAD_ID = 7
CHUNK_SIZES = (1, 7, 1000, 10_000)


def encoding_and_delimiter(content):
    """As the upload form decides them; None for a file it refuses."""
    detector = EncodingDetector()
    detector.feed(content, final=True)
    try:
        _, delimiter = read_header(content[:65536], detector.encoding)
    except NotACsvFile:
        return None
    return detector.encoding, delimiter


def python_reader(content, encoding, delimiter, count_records=False):
    """(reader, fill(chunk, size)); RowReader learns how far it read from the stream under it."""
    raw = io.BytesIO(content)
    reader = RowReader(text_stream(io.BufferedReader(raw, 1 << 20), encoding), delimiter, UPLOAD_ID,
                       count_records=count_records)
    return reader, lambda chunk, size: reader.fill(chunk, size, raw.tell)


def vector_reader(content, encoding, delimiter, count_records=False):
    raw = io.BytesIO(content)
    reader = VectorRowReader(io.BufferedReader(raw, 1 << 20), encoding, delimiter, UPLOAD_ID,
                             count_records=count_records)
    return reader, reader.fill


def outcome(chunk):
    table = chunk.candidate_table()
    return dict(records=chunk.records, lines=chunk.lines, invalid=chunk.invalid, duplicates=chunk.duplicates,
                errors=chunk.errors, error_types=[tuple(map(type, error)) for error in chunk.errors],
                unreadable=str(chunk.unreadable_rest), unit=chunk.unit,
                schema=table.schema, candidates=table.to_pylist(),
                raws=[chunk.candidate_raw(index) for index in range(table.num_rows)])


def chunks(reader, fill, size):
    """outcome() of every chunk, and bytes_read after the last one."""
    found, more, last = [], True, None
    while more:
        chunk = reader.new_chunk()
        more = fill(chunk, size)
        last = chunk.bytes_read
        if chunk.records or chunk.unreadable_rest:
            found.append(outcome(chunk))
    return found, last


def assert_same_chunks(content, sizes=CHUNK_SIZES, count_records=False):
    settings = encoding_and_delimiter(content)
    if settings is None:
        return
    for size in sizes:
        expected = read_all(python_reader, content, *settings, size, count_records)
        got = read_all(vector_reader, content, *settings, size, count_records)
        assert got["header"] == expected["header"]
        assert len(got["chunks"]) == len(expected["chunks"]), size
        for number, (ours, theirs) in enumerate(zip(got["chunks"], expected["chunks"])):
            assert ours == theirs, f"chunk {number} of {size} records"
        assert got["bytes_read"] == expected["bytes_read"] == len(content)


def read_all(make_reader, content, encoding, delimiter, size, count_records=False):
    try:
        reader, fill = make_reader(content, encoding, delimiter, count_records)
    except Exception as error:  # noqa: BLE001 - both readers must fail alike
        return dict(header=repr(error), chunks=[], bytes_read=len(content))
    header = (reader.header.names, reader.header.fields, reader.header.extra, reader.unit, reader.update_columns)
    if not reader.header.has_email:
        return dict(header=header, chunks=[], bytes_read=len(content))
    found, bytes_read = chunks(reader, fill, size)
    return dict(header=header, chunks=found, bytes_read=bytes_read)


def assert_same_resume(content, checkpoint, size=1000):
    settings = encoding_and_delimiter(content)
    results = []
    for make_reader in (python_reader, vector_reader):
        reader, fill = make_reader(content, *settings)
        reader.skip(checkpoint)
        results.append(chunks(reader, fill, size))
    assert results[0] == results[1]


def corpus_files():
    for path in sorted(CORPUS.iterdir()):
        if path.is_file() and not path.name.startswith(".") and not path.name.endswith((".json", ".py", ".md")):
            yield path.name


def generated_corpus_files():
    expectations = sorted(CORPUS.glob("*.expected.json"))
    return [path.name.removesuffix(".expected.json") for path in expectations
            if json.loads(path.read_text(encoding="utf-8")).get("generated")]


@pytest.mark.parametrize("name", list(corpus_files()))
def test_hostile_corpus(name):
    assert_same_chunks((CORPUS / name).read_bytes())


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    directory = tmp_path_factory.mktemp("generated")
    subprocess.run([sys.executable, str(CORPUS / "make_corpus.py"), str(directory)], check=True,
                   stdout=subprocess.DEVNULL)
    return directory


@pytest.mark.parametrize("name", generated_corpus_files())
def test_generated_corpus(name, generated):
    assert_same_chunks((generated / name).read_bytes(), sizes=(1000, 10_000))


@pytest.fixture(scope="module", params=[1, 2])
def bench_file(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "contacts.csv"
    subprocess.run([sys.executable, str(ROOT / "bench" / "make_csv.py"), "50000", str(path),
                    "--seed", str(request.param)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path.read_bytes()


@pytest.mark.parametrize("size", CHUNK_SIZES[1:])
def test_bench_file(bench_file, size):
    assert_same_chunks(bench_file, sizes=(size,))


def test_bench_file_resumes_alike(bench_file):
    for checkpoint in (1, 9_999, 10_000, 33_333):
        assert_same_resume(bench_file, checkpoint)


def test_bench_file_as_api_records(bench_file):
    assert_same_chunks(bench_file[:400_000], sizes=(1000,), count_records=True)


HEADER = "email,first_name,last_name,notes,notes\r\n"
NASTY = {
    "quotes_inside_fields": HEADER + 'a@x.io,Jo"e,"Smith",x"y\n"b@x.io" ,Ann,"Le"e,\nc@x.io,"""q""",z,,\n',
    "quote_then_text": HEADER + 'a@x.io,"Jo"hn,x,y,z\nb@x.io,ok,ok,,\n',
    "blank_and_bare_delimiter_lines": HEADER + "\n,,,,\na@x.io,,,,\n\r\n,,\n\"\",\"\"\nb@x.io,B,,,\n",
    "trailing_empty_extra_fields": HEADER + "a@x.io,A,B,n,m,,,\nb@x.io,A,B,n,m,,x\nc@x.io,A\n",
    "lone_cr": HEADER + "a@x.io,A,B,,\rb@x.io,B,,,\r\nc@x.io,\"multi\rline\",,,\n",
    "bom": "\ufeff" + HEADER + "a@x.io,A,,,\n\ufeffb@x.io,B,,,\n",
    "sep_line": "sep=;\r\nemail;first name;city\r\na@x.io;Ä;Köln\r\nb@x.io;B;\"x;y\"\r\n",
    "non_ascii_and_upper_case_emails": HEADER + "Jörg@Exämple.de,J,,,\nJÖRG@exämple.de,J,,,\nA@X.IO,,,,\n"
                                                "a@x.io,,,,\nñ@x.io,,,,\nn\u0303@x.io,,,,\n",
    "emails_with_spaces": HEADER + " a@x.io ,A,,,\na@x.io\t,B,,,\n\u00a0b@x.io,,,,\nb@x.io,,,,\n \t ,,,,\n",
    "tab_delimited": "email\tname\tnotes\na@x.io\t\"A\tB\"\tn\"o\"te\nb@x.io\t\t\n",
    "header_only": "email,name\n",
    "no_trailing_newline": HEADER + "a@x.io,A,,,\nb@x.io,B,,,",
    "no_trailing_newline_quoted": HEADER + 'a@x.io,A,,,"x\ny"',
    "unterminated_quote": HEADER + 'a@x.io,A,,,\nb@x.io,"B,,,\nc@x.io,C,,,\n',
    "control_characters": HEADER + "a@x.io,A\x01,,,\nb@x.io,\x00,,,\nc@x.io,C,,\x7f,\nd@x.io\x0b,,,,\n",
    "json_escapes": HEADER + 'a@x.io,,,"q""uote\\back\tslash\nnew",\u2028\n',
    "long_values": HEADER + f"a@x.io,{'x' * 1000},,,\nb@x.io,{'y' * 1001},,,\nc@x.io,,,{'é' * 999},{'z' * 600}\n",
    "long_emails": HEADER + f"{'a' * 64}@x.io,,,,\n{'a' * 65}@x.io,,,,\n{'a' * 60}@{'b' * 61}.{'c' * 61}."
                            f"{'d' * 61}.{'e' * 8}.io,,,,\n",
    "bad_emails": HEADER + "a@b.123,,,,\na@b.c1,,,,\na@-b.io,,,,\na.@b.io,,,,\n'a'@b.io,,,,\n\"a,b\"@c.io,,,,\n"
                           "a@b_c.io,,,,\na_@b.io,,,,\na@@b.io,,,,\n,,,,x\n",
    "duplicates_across_kinds": HEADER + "a@x.io,1,,,\nA@x.io,2,,,\nb@x.io,\x01,,,\n\"a@x.io\",\"3\n\",,,\n"
                                        "á@x.io,,,,\nÁ@x.io,,,,\na@x.io,4,,\n",
}


@pytest.mark.parametrize("name", list(NASTY))
def test_nasty_cases(name):
    assert_same_chunks(NASTY[name].encode())


def test_nasty_cases_as_api_records():
    for content in NASTY.values():
        assert_same_chunks(content.encode(), sizes=(1, 3), count_records=True)


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Blocks of a few records, records cut across reads, and RowReader taking over at 300 bytes."""
    from jobs import vector_rows
    monkeypatch.setattr(vector_rows, "BLOCK_BYTES", 37)
    monkeypatch.setattr(vector_rows, "MAX_PENDING", 300)
    monkeypatch.setattr(vector_rows, "PROBE_CHARS", 5)


@pytest.mark.parametrize("name", list(NASTY))
def test_nasty_cases_in_tiny_blocks(name, tiny_blocks):
    assert_same_chunks(NASTY[name].encode(), sizes=(1, 7))


@pytest.mark.parametrize("name", list(corpus_files()))
def test_hostile_corpus_in_tiny_blocks(name, tiny_blocks):
    assert_same_chunks((CORPUS / name).read_bytes(), sizes=(3,))


def test_bench_file_in_tiny_blocks(bench_file, tiny_blocks):
    assert_same_chunks(bench_file[:60_000], sizes=(7, 1000))


def test_random_files_in_tiny_blocks(tiny_blocks):
    rng = random.Random(7)
    for _ in range(100):
        assert_same_chunks(random_file(rng).encode(), sizes=(1, 1000))


def test_bench_file_is_read_in_bulk(bench_file):
    reader, position = vector_reader(bench_file, "utf-8-sig", ",")
    records, _ = chunks(reader, position, 10_000)
    assert reader.rest is None
    assert reader.row_reader_records < 0.02 * sum(chunk["records"] for chunk in records)


def test_windows_1252_file():
    assert_same_chunks("email,name\na@x.io,Andr\xe9\nb@x.io,Ren\xe9e\n".encode("cp1252"))


def random_value(rng):
    pieces = ["a", "b", "é", " ", ",", ";", '"', '""', "\n", "\r\n", "\r", "\t", "x@y.io", "@", ".", "\x00", "-"]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))


def random_file(rng):
    header = rng.choice(["email,name,notes", "e-mail,notes", "email", "sep=,\nemail,city,city,"])
    lines = [header]
    for _ in range(rng.randint(0, 60)):
        if rng.random() < 0.6:
            local = rng.choice(["a", "B", "a.b", "a b", "ä", "a+1", ""])
            email = f"{local}@{rng.choice(['x.io', 'X.IO', 'x.123', 'x'])}"
            fields = [rng.choice([email, f" {email} ", f'"{email}"'])]
            fields += [rng.choice(["", "v", '"q,""r"""', "é", "a\nb"]) for _ in range(rng.randint(0, 4))]
            lines.append(",".join(fields))
        else:
            lines.append(random_value(rng))
    return rng.choice(["\n", "\r\n"]).join(lines) + rng.choice(["", "\n", "\r\n"])


def test_random_files():
    rng = random.Random(20261202)
    for _ in range(300):
        assert_same_chunks(random_file(rng).encode(), sizes=(1, 4, 1000))


def test_resume_after_a_checkpoint():
    content = "".join(NASTY[name] for name in ("quotes_inside_fields", "duplicates_across_kinds")).encode()
    for checkpoint in range(12):
        assert_same_resume(content, checkpoint, size=3)


ADDRESSES = [
    "a@b.io", "A.B@C.IO", "a+b@c.de", "a_b@c-d.e", "a..b@c.io", ".a@b.io", "a.@b.io", "a@b", "a@b.", "a@.b",
    "a@b..c", "a@-b.io", "a@b-.io", "a@b_c.io", "a@b.c_d", "a@b.123", "a@123.b4", "a@1.23", "a@b.1a", "a@b.a1",
    "a b@c.io", "a@b c.io", "a\"b@c.io", "a(b)@c.io", "a,b@c.io", "a;b@c.io", "a@b@c.io", "@b.io", "a@", "",
    "!#$%&'*+/=?^`{|}~-@x.io", "a@" + "b" * 63 + ".io", "a@" + "b" * 64 + ".io", "a@" + "b" * 62 + ".io",
    "a@b.io\n", "a@b.io ", "a@b.IO", "a@B1.c2", "x@y.z0", "x@y.0z", "x@0.0", "a@b.c.d.e.f", "a@b-c-d.io",
    "1@2.x", "a@b.io.", "a\\b@c.io", "a@[1.2.3.4]", "a@b.i-o", "a@b.-io", "a@b.io-", "jürgen@bücher.example",
    "ÆØÅ@ÿ.ɏ", "a@b.ǅ", "a@×.io", "a@b÷.io", "İ@x.io", "ß@straße.de", "a@b.١٢", "a@b.١", "é@é.é",
]
# Within the alphabet the RE2 forms cover, and a few characters beyond it.
ALPHABET = "ab1_-.@+\"' \\ÀÖØöøįıĲɏ×÷İßÿ١"


def random_addresses(count):
    rng = random.Random(5)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 12))) for _ in range(count)]


def in_bulk_alphabet(address):
    return re.fullmatch(f"[\\x20-\\x7e{BULK_LETTERS}]*", address) is not None


def test_re2_email_rule_agrees_with_the_python_one():
    addresses = [address for address in ADDRESSES + random_addresses(20_000) if in_bulk_alphabet(address)]
    strings = pa.array(addresses)
    re2 = pc.and_(pc.match_substring_regex(strings, EMAIL_RE2),
                  pc.invert(pc.match_substring_regex(strings, DIGITS_LAST_LABEL_RE2))).to_pylist()
    for address, matches in zip(addresses, re2):
        assert matches == bool(EMAIL.fullmatch(address)), address


def test_re2_email_rule_refuses_what_it_does_not_cover():
    outside = [address for address in ADDRESSES + random_addresses(5_000) if not in_bulk_alphabet(address)]
    assert not any(pc.match_substring_regex(pa.array(outside), EMAIL_RE2).to_pylist())


def test_bulk_letters_are_their_own_nfc_form_and_lower_case_alike():
    letters = [character for character in map(chr, range(0x250)) if in_bulk_alphabet(character)]
    text = "".join(letters)
    assert unicodedata.normalize("NFC", text) == text
    assert pc.utf8_lower(pa.array(letters)).to_pylist() == [letter.lower() for letter in letters]
    for letter in letters:
        assert unicodedata.normalize("NFC", "a" + letter) == "a" + letter
        assert unicodedata.normalize("NFC", letter + "a") == letter + "a"
