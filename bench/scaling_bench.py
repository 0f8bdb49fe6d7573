"""The scaling curve: N ingest workers, each ingesting an upload of its own at once.

    .venv/bin/python bench/scaling_bench.py --rows 250000 --workers 1,2,3,4

For each N, N files (bench/make_csv.py, distinct seeds, so distinct emails) are
uploaded through the web with no worker running, then N workers (the Procfile's
worker line) start together. Reported per N: total lines/s (every line over the
time from the first job's start to the last one's end), each upload's lines/s
over its own job, PostgreSQL's CPU (its process tree, in CPUs busy) and what its
busy sessions waited on (pg_stat_activity sampled every 0.1 s). Results go to
bench/data/scaling-results.json.
"""
import argparse
import json
import os
import sys
import threading
from collections import Counter
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.http_session import Client, log  # noqa: E402
from bench.ingest_bench import csv_file  # noqa: E402
from bench.rss import TreeSampler, system_busy  # noqa: E402
from bench.stack import Stack  # noqa: E402
from jobs import partition  # noqa: E402
from scripts.services import wait_for  # noqa: E402

DATA = ROOT / "bench" / "data" / "scaling"
RESULTS = ROOT / "bench" / "data" / "scaling-results.json"
OPERATOR, PASSWORD = "bench@example.com", "bench password 1234"
ACTIVE_WAITS = """
    SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity
    WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()"""


class WaitSampler:
    """Counts what PostgreSQL's active sessions wait on (or 'CPU' when they run), every 0.1 s."""

    def __init__(self, database_url):
        self.database_url = database_url
        self.counts = Counter()
        self.samples = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            while not self.stopped.wait(0.1):
                self.counts.update(event for (event,) in connection.execute(ACTIVE_WAITS))
                self.samples += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stopped.set()
        self.thread.join()

    def per_sample(self):
        """Average number of sessions in each state at a sample, largest first."""
        return {event: round(count / max(self.samples, 1), 2) for event, count in self.counts.most_common()}


def reset(stack):
    stack.db.execute(partition.DROP_EVERY_UPLOAD_TABLE)
    stack.db.execute("TRUNCATE records, row_errors, upload_pieces, uploads RESTART IDENTITY CASCADE")
    stack.db.execute("CHECKPOINT")


def job_times(stack):
    return stack.db.execute(
        "SELECT id, lines_read, status, extract(epoch FROM started_at)::float, extract(epoch FROM finished_at)::float "
        "FROM uploads ORDER BY id").fetchall()


def all_finished(stack):
    rows = job_times(stack)
    return rows if all(status in ("completed", "failed", "cancelled") for _, _, status, _, _ in rows) else None


def run_point(stack, browser, workers, rows):
    reset(stack)
    for seed in range(workers):
        path, _ = csv_file(rows, seed=100 + seed)
        browser.upload(path)
    sampler, busy_before = TreeSampler({"postgres": stack.postmaster}).start(), system_busy()
    with WaitSampler(stack.database_url) as waits:
        started = [stack.start("worker", log_name=f"worker-{workers}-{number}") for number in range(workers)]
        finished = wait_for(lambda: all_finished(stack), 600 + rows * workers / 1000, "every upload", interval=0.2)
    sampler.stop()
    machine_busy = system_busy() - busy_before
    for worker in started:
        stack.stop(worker)
    first_start = min(start for *_, start, _ in finished)
    last_end = max(end for *_, end in finished)
    wall = last_end - first_start
    point = {
        "workers": workers, "lines": sum(lines for _, lines, *_ in finished), "wall_s": round(wall, 1),
        "statuses": sorted({status for _, _, status, _, _ in finished}),
        "per_upload_lines_per_s": [round(lines / (end - start)) for _, lines, _, start, end in finished],
        # Over the jobs' time: before the first job starts, PostgreSQL and the machine are nearly idle.
        "postgres_cpus_busy": round(sampler.cpu_seconds("postgres") / wall, 2),
        "machine_cpus_busy": round(machine_busy / sampler.seconds, 2),   # the workers' start-up included
        "active_sessions_per_sample": waits.per_sample(),
        "load_average_after": os.getloadavg()[0],
    }
    point["total_lines_per_s"] = round(point["lines"] / wall)
    log(json.dumps(point))
    return point


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=250_000, help="lines per upload")
    parser.add_argument("--workers", default="1,2,3,4", help="the worker counts to measure, comma-separated")
    args = parser.parse_args()
    results = {"command": f"bench/scaling_bench.py --rows {args.rows} --workers {args.workers}",
               "nproc": os.cpu_count(), "load_average_before": os.getloadavg(), "points": []}
    stack = Stack(DATA)
    try:
        stack.start_servers()
        stack.flask("db", "upgrade")
        stack.flask("operators", "create", OPERATOR, "--password", PASSWORD)
        stack.start_web()
        browser = Client(stack.port)
        browser.log_in(OPERATOR, PASSWORD)
        for workers in map(int, args.workers.split(",")):
            results["points"].append(run_point(stack, browser, workers, args.rows))
    finally:
        stack.stop_all()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    log(f"results in {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
