"""Parsing benchmark: RowReader against VectorRowReader on a bench/make_csv.py file.

    .venv/bin/python bench/parse_bench.py                   # 1,000,000 records, chunks of 10,000
    .venv/bin/python bench/parse_bench.py 200000 --chunks 10000,50000

The file is written by bench/make_csv.py into /tmp once (about 25 s for a
million records) and read from there again. Each reader runs in a process of
its own, reading the file through io.BufferedReader as the ingest job reads an
upload, and does with every chunk what the chunk writer does before COPY:
candidate_table(), then pyarrow.csv.write_csv of it into a BytesIO. Printed per
reader: CPU seconds (user + system) for the reading, per million records, and
the process's resident memory before reading and at its peak.
"""
import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READERS = ("python", "vector")


def bench_file(records):
    path = Path(f"/tmp/intake-parse-bench-{records}.csv")
    if not path.with_name(path.name + ".json").exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_csv.py"), str(records), str(path)],
                       check=True, stdout=subprocess.DEVNULL)
    return path


def resident_mb():
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def read(reader_name, path, chunk_records):
    """Runs in the child process: the reader over the file; what it cost."""
    import pyarrow.csv as pa_csv

    from jobs.rows import RowReader
    from jobs.vector_rows import VectorRowReader
    from webapp.csv_contract import UTF8, text_stream

    before_mb = resident_mb()
    started = time.process_time()
    with open(path, "rb") as source:
        binary = io.BufferedReader(source, 1 << 20)
        if reader_name == "vector":
            reader = VectorRowReader(binary, UTF8, ",", 1)
        else:
            reader = RowReader(text_stream(binary, UTF8), ",", 1)
        records = candidates = errors = 0
        more = True
        while more:
            chunk = reader.new_chunk()
            more = reader.fill(chunk, chunk_records) if reader_name == "vector" else \
                reader.fill(chunk, chunk_records, source.tell)
            table = chunk.candidate_table()
            pa_csv.write_csv(table, io.BytesIO(), pa_csv.WriteOptions(include_header=False))
            records += chunk.records
            candidates += table.num_rows
            errors += len(chunk.errors)
    return dict(cpu_seconds=time.process_time() - started, records=records, candidates=candidates, errors=errors,
                before_mb=before_mb, peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                row_reader_records=getattr(reader, "row_reader_records", records))


def run_child(reader_name, path, chunk_records):
    output = subprocess.run([sys.executable, __file__, "--child", reader_name, str(path), str(chunk_records)],
                            check=True, capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    return json.loads(output)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", nargs="?", type=int, default=1_000_000, help="data records (default 1,000,000)")
    parser.add_argument("--chunks", default="10000", help="records per chunk, comma-separated (default 10000)")
    parser.add_argument("--readers", default=",".join(READERS), help="python,vector (default both)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        reader_name, path, chunk_records = args.child
        print(json.dumps(read(reader_name, path, int(chunk_records))))
        return
    path = bench_file(args.records)
    summary = json.loads(path.with_name(path.name + ".json").read_text())
    print(f"{path}: {summary['records']:,} records, {summary['physical_lines']:,} lines, "
          f"{summary['bytes'] / 1024 / 1024:.0f} MB")
    results = {}
    for chunk_records in map(int, args.chunks.split(",")):
        for reader_name in args.readers.split(","):
            result = run_child(reader_name, path, chunk_records)
            results[reader_name, chunk_records] = result
            per_million = result["cpu_seconds"] / result["records"] * 1_000_000
            print(f"{reader_name:>6}, chunks of {chunk_records:>6,}: {per_million:5.2f} CPU-s per 1M records "
                  f"({result['cpu_seconds']:.1f} s), RSS {result['before_mb']:.0f} MB before reading, "
                  f"peak {result['peak_mb']:.0f} MB; {result['candidates']:,} candidates, "
                  f"{result['errors']:,} row errors, {result['row_reader_records'] / result['records']:.2%} "
                  f"of the records decided by RowReader")
    for chunk_records in map(int, args.chunks.split(",")):
        counts = {tuple(result[key] for key in ("records", "candidates", "errors"))
                  for (_, size), result in results.items() if size == chunk_records}
        if len(counts) > 1:
            sys.exit(f"the readers disagree on chunks of {chunk_records:,}: {counts}")

if __name__ == "__main__":
    main()
