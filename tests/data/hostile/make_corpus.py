"""Writes the corpus files too big to commit; their expectations are committed
next to the small files as NAME.expected.json with "generated": true.

    python tests/data/hostile/make_corpus.py DIR [NAME ...]

The output is the same on every run (no randomness, no clock).
"""
import sys
import zipfile
from pathlib import Path

MB = 1024 * 1024


def field_5mb(out):
    """A quoted 5 MB field of 403,299 lines, then a good line and a bad one."""
    unit = "lorem, ipsum\n"
    field = (unit * (5 * MB // len(unit) + 1))[:5 * MB]
    out.write(b"email,notes\nbig@example.com,\"" + field.encode() + b"\"\nok@example.com,fine\nnope,x\n")


def header_100k_columns(out):
    """A header of 100,000 columns (about 700 KB) and one line that fills them all."""
    out.write(b"email," + ",".join(f"c{number}" for number in range(1, 100_000)).encode() + b"\n")
    out.write(b"wide@example.com," + ",".join(f"v{number}" for number in range(1, 100_000)).encode() + b"\n")


def line_50mb(out):
    """One 50 MB line without a single quote or delimiter in its second field, then a good line."""
    out.write(b"email,notes\nlong@example.com,")
    for _ in range(50):
        out.write(b"y" * MB)
    out.write(b"\nok@example.com,fine\n")


def csv_bomb(out):
    """11 million empty fields in 11 MB: 10 million trailing ones after a good address,
    a million after a bad one."""
    out.write(b"email,first_name\nbomb@example.com")
    for _ in range(10):
        out.write(b"," * 1_000_000)
    out.write(b"\nx" + b"," * 1_000_000 + b"\nafter@example.com,Ok\n")


def many_tiny_rows(out):
    """200,000 one-address lines; every 10,000th is not an address."""
    lines = ("x" if number % 10_000 == 9_999 else f"{number}@t.io" for number in range(200_000))
    out.write(b"email\n" + "\n".join(lines).encode() + b"\n")


def zip_bomb(out):
    """A ZIP named .xlsx whose one sheet is 100 MB of spaces packed into about 100 KB."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(deflated("[Content_Types].xml"), "<Types/>")
        with archive.open(deflated("xl/worksheets/sheet1.xml"), "w") as sheet:
            for _ in range(100):
                sheet.write(b" " * MB)


def deflated(name):
    """A ZIP entry of a fixed date, compressed."""
    entry = zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0))
    entry.compress_type = zipfile.ZIP_DEFLATED
    return entry


GENERATORS = {
    "field_5mb.csv": field_5mb,
    "header_100k_columns.csv": header_100k_columns,
    "line_50mb.csv": line_50mb,
    "csv_bomb.csv": csv_bomb,
    "many_tiny_rows.csv": many_tiny_rows,
    "zip_bomb.xlsx": zip_bomb,
}


def write(name, directory):
    """Write the generated file `name` into `directory` (once); returns its path."""
    path = Path(directory) / name
    if not path.exists():
        partial = path.with_name(path.name + ".partial")
        with open(partial, "wb") as out:
            GENERATORS[name](out)
        partial.rename(path)
    return path


if __name__ == "__main__":
    target, *names = sys.argv[1:] or [None]
    if target is None:
        sys.exit(__doc__)
    Path(target).mkdir(parents=True, exist_ok=True)
    for name in names or GENERATORS:
        print(write(name, target))
