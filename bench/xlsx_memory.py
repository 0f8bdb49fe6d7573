"""Excel ingest memory: the work horse's peak RSS while it ingests workbooks of growing size.

    .venv/bin/python bench/xlsx_memory.py --rows 100000,400000             # ≈ 8 MB and 33 MB
    .venv/bin/python bench/xlsx_memory.py --rows 2500000                   # ≈ 200 MB, the issue's figure
    .venv/bin/python bench/xlsx_memory.py --rows 400000 --strings shared   # text in a shared-string table, as Excel writes it

It starts its own PostgreSQL and Redis under bench/data/xlsx/ (wiped first),
the Procfile's web process and one worker, uploads each workbook through the
form like a browser and samples, every 50 ms until the upload is finished, the
RSS of the work horse (bench/rss.py) and of the web process (which opens the
workbook to check its header row). Memory is flat when the peaks do not grow
with the workbook.

The workbooks are written here, part by part, without holding a sheet in memory:
one sheet of an email column and five others, every address unique. With
--strings inline (what openpyxl writes) each cell holds its text; with
--strings shared (what Excel writes) the cells point into xl/sharedStrings.xml,
which openpyxl reads whole before the first row.
"""
import argparse
import sys
import time
import uuid
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.http_session import Client, log  # noqa: E402
from bench.rss import MB, TreeSampler  # noqa: E402
from bench.stack import Stack  # noqa: E402
from scripts.services import wait_for  # noqa: E402

DATA = ROOT / "bench" / "data"
OPERATOR, PASSWORD = "bench@example.com", "bench-password-" + uuid.uuid4().hex[:8]
HEADER = ("email", "first_name", "last_name", "company", "city", "notes")
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE = "http://schemas.openxmlformats.org/package/2006/relationships"
SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
WORKBOOK_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"


def row_values(number):
    return (f"person{number}@example.com", f"First{number % 977}", f"Last{number % 1009}",
            f"Company {number % 101}", ("Leeds", "York", "Hull", "Bath")[number % 4], f"note {number}")


def column(index):
    return "ABCDEF"[index]


def write_workbook(path, rows, shared):
    """A workbook of `rows` rows after the header, written part by part."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        strings_part = '<Override PartName="/xl/sharedStrings.xml" ContentType="%s"/>' % STRINGS_TYPE
        archive.writestr("[Content_Types].xml", (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{WORKBOOK_TYPE}"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{SHEET_TYPE}"/>'
            f'{strings_part if shared else ""}</Types>'))
        archive.writestr("_rels/.rels", f'<Relationships xmlns="{PACKAGE}"><Relationship Id="rId1" '
                         f'Type="{RELATIONSHIPS}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        archive.writestr("xl/workbook.xml", f'<workbook xmlns="{MAIN}" xmlns:r="{RELATIONSHIPS}"><sheets>'
                         '<sheet name="People" sheetId="1" r:id="rId1"/></sheets></workbook>')
        strings_rel = (f'<Relationship Id="rId2" Type="{RELATIONSHIPS}/sharedStrings" '
                       'Target="sharedStrings.xml"/>')
        archive.writestr("xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{PACKAGE}"><Relationship Id="rId1" '
                         f'Type="{RELATIONSHIPS}/worksheet" Target="worksheets/sheet1.xml"/>'
                         f'{strings_rel if shared else ""}</Relationships>')
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(f'<worksheet xmlns="{MAIN}"><sheetData>'.encode())
            for number in range(rows + 1):
                values = HEADER if number == 0 else row_values(number)
                sheet.write(sheet_row(number + 1, values, shared, base=number * len(HEADER)).encode())
            sheet.write(b"</sheetData></worksheet>")
        if shared:
            with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as strings:
                strings.write(f'<sst xmlns="{MAIN}">'.encode())
                for number in range(rows + 1):
                    values = HEADER if number == 0 else row_values(number)
                    strings.write("".join(f"<si><t>{escape(value)}</t></si>" for value in values).encode())
                strings.write(b"</sst>")


def sheet_row(row, values, shared, base):
    """One <row>; with `shared`, cell i of it is string number base + i of the shared table."""
    if shared:
        cells = (f'<c r="{column(index)}{row}" t="s"><v>{base + index}</v></c>' for index in range(len(values)))
    else:
        cells = (f'<c r="{column(index)}{row}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'
                 for index, value in enumerate(values))
    return f'<row r="{row}">{"".join(cells)}</row>'


def measure(stack, client, web, worker, path, rows):
    sampler = TreeSampler({"web": web.pid, "worker": worker.pid}).start()
    started = time.monotonic()
    upload_id = client.upload(path)
    def finished():
        return stack.db.execute("SELECT status, lines_read, rows_inserted, failure_reason FROM uploads "
                                "WHERE id = %s AND finished_at IS NOT NULL", (upload_id,)).fetchone()
    status, lines, inserted, reason = wait_for(finished, 7200, f"upload {upload_id} to finish", interval=0.5)
    seconds = time.monotonic() - started
    sampler.stop()
    if (status, lines, inserted) != ("completed", rows, rows):
        raise RuntimeError(f"upload {upload_id}: {status}, {lines:,} lines, {inserted:,} inserted ({reason})")
    stack.db.execute("TRUNCATE records, row_errors, upload_pieces CASCADE")
    return {"file_mb": path.stat().st_size / MB, "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
            "horse_peak_mb": sampler.peak_mb("worker", depth=1), "worker_peak_mb": sampler.peak_mb("worker", depth=0),
            "web_peak_mb": sampler.peak_mb("web", children=True)}


def main():
    parser = argparse.ArgumentParser(description="Excel ingest memory (see bench/README.md).")
    parser.add_argument("--rows", default="100000,400000", help="rows of each workbook, comma-separated")
    parser.add_argument("--strings", choices=("inline", "shared"), default="inline")
    args = parser.parse_args()
    sizes = [int(rows) for rows in args.rows.split(",")]
    books = DATA / "xlsx-books"
    books.mkdir(parents=True, exist_ok=True)
    stack = Stack(DATA / "xlsx", MAX_UPLOAD_MB="1024")
    try:
        stack.start_servers()
        stack.flask("db", "upgrade")
        stack.flask("operators", "create", OPERATOR, "--password", PASSWORD)
        web = stack.start_web()
        worker = stack.start("worker")
        stack.wait_for_workers(1)
        client = Client(stack.port)
        client.log_in(OPERATOR, PASSWORD)
        for rows in sizes:
            path = books / f"people-{rows}-{args.strings}.xlsx"
            if not path.exists():
                log(f"writing {path.relative_to(ROOT)}")
                write_workbook(path, rows, args.strings == "shared")
            result = measure(stack, client, web, worker, path, rows)
            log("{rows:,} rows, {file_mb:.1f} MB: {seconds:.1f} s ({rows_per_s:,.0f} rows/s); peak RSS: work horse "
                "{horse_peak_mb:.0f} MB, worker {worker_peak_mb:.0f} MB, web {web_peak_mb:.0f} MB".format(**result))
    finally:
        stack.stop_all()


if __name__ == "__main__":
    main()
