"""Live progress under load: how late 200 open upload pages see each chunk, and
what keeping them open costs the other pages.

    .venv/bin/python bench/ws_bench.py                                  # 1,000,000 lines, 200 watchers
    .venv/bin/python bench/ws_bench.py --rows 200000 --watchers 50      # quick

It starts its own PostgreSQL and Redis under bench/data/ws/ (wiped first) with
scripts/services.py, applies the migrations, creates an operator and starts the
web process with the Procfile's `web` line (gunicorn, gevent workers,
WEB_CONCURRENCY or 2 of them). Then it ingests the same generated CSV twice,
each time into an emptied `records` table, with one RQ worker started with the
Procfile's `worker` line once the upload is queued:

  without   nobody watches the upload;
  with      --watchers WebSockets on /ws?view=upload&id=N (the websockets sync
            client, one thread each, Origin = the server, the session cookie).

During both, a second logged-in client GETs /uploads again and again (a new
connection each time, --probe-interval apart); its latencies while the job runs
are compared.

Event-to-client latency: a separate process subscribes to Redis channel
intake:uploads itself, notes when each event of the upload arrives and reads
(lines_read, status) of the upload at once. Each watcher message is matched
to the event whose state (lines counter, status badge) it shows first;
latency = arrival of the message - arrival of that event. A message that
repeats the state the watcher already shows (the 10 s full refresh) is not a
sample; one whose state no event announced is counted as unmatched.

Every process it starts is stopped at the end, pass or fail. If the bench itself
is killed, web, worker and helpers stop with it; PostgreSQL and Redis keep
running until `python scripts/services.py stop bench/data/ws`.
"""
import argparse
import http.client
import json
import multiprocessing
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from importlib import metadata
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.rss import TreeSampler, system_busy  # noqa: E402
from bench.http_session import Client, log, percentile  # noqa: E402
from bench.stack import Stack, die_with_parent, procfile_command  # noqa: E402
from jobs import partition  # noqa: E402
from scripts.services import wait_for  # noqa: E402

DATA = ROOT / "bench" / "data"
CSV_DIR = DATA / "csv"
RUN_DIR = DATA / "ws"
CHANNEL = "intake:uploads"
OPERATOR, PASSWORD = "bench@example.com", "bench-password-" + uuid.uuid4().hex[:8]
LINES = re.compile(r'data-counter="lines">([\d,]+)<')
STATUS = re.compile(r'class="status status-(\w+)"')
P99_TARGET_MS = 500
PAGE_RATIO_TARGET = 2.0


def wait_until_quiet(limit, most=0.25):
    """Wait (up to `limit` s) until the machine is at most `most` busy; returns (waited s, last busy share)."""
    started = time.monotonic()
    while True:
        before = system_busy()
        time.sleep(1)
        share = (system_busy() - before) / os.cpu_count()
        waited = time.monotonic() - started
        if share <= most or waited >= limit:
            if share > most:
                log(f"the machine is still {share:.0%} busy with other work after {waited:.0f} s; measuring anyway")
            return waited, share


def ms(value):
    return "-" if value is None else f"{value * 1000:,.0f}"


def csv_file(rows, seed):
    """A generated contacts CSV (bench/make_csv.py), made once and kept under bench/data/csv/."""
    CSV_DIR.mkdir(parents=True, exist_ok=True)
    path = CSV_DIR / f"contacts-{rows}-seed{seed}.csv"
    meta = Path(f"{path}.json")
    if not (path.exists() and meta.exists() and json.loads(meta.read_text()).get("records") == rows):
        log(f"generating {rows:,} lines into {path.relative_to(ROOT)}")
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_csv.py"), str(rows), str(path),
                        "--seed", str(seed)], check=True, stdout=subprocess.DEVNULL)
    return path, json.loads(meta.read_text())


# ---------------------------------------------------------------- helpers in processes of their own
# (so that the 200 watcher threads' share of the GIL does not delay their clocks)

def record_events(redis_url, database_url, upload_id, ready, stop, results):
    """Each event of `upload_id` on intake:uploads: (arrival time, event status, lines_read, status)."""
    die_with_parent()
    from redis import Redis as RedisClient
    pubsub = RedisClient.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    events = []
    with psycopg.connect(database_url, autocommit=True) as connection:
        ready.set()
        while not stop.is_set():
            message = pubsub.get_message(timeout=0.2)
            if not message:
                continue
            arrived = time.time()
            event = json.loads(message["data"])
            if event["upload_id"] != upload_id:
                continue
            lines, status = connection.execute("SELECT lines_read, status FROM uploads WHERE id = %s",
                                               (upload_id,)).fetchone()
            events.append((arrived, event["status"], lines, status))
    pubsub.close()
    results.put(events)


def probe_page(port, cookie, path, interval, ready, stop, results):
    """GET `path` until told to stop: (start time, seconds, HTTP status) of each request."""
    die_with_parent()
    samples = []
    ready.set()
    while not stop.is_set():
        started, clock = time.time(), time.perf_counter()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request("GET", path, headers={"Cookie": cookie})
            response = connection.getresponse()
            response.read()
            status = response.status
            connection.close()
        except OSError as error:
            status = type(error).__name__
        samples.append((started, time.perf_counter() - clock, status))
        stop.wait(interval)
    results.put(samples)


class Helper:
    """One of the functions above in a process of its own; .finish() returns what it gathered."""

    context = multiprocessing.get_context("spawn")

    def __init__(self, target, *args):
        self.ready, self.stop, self.results = self.context.Event(), self.context.Event(), self.context.Queue()
        self.process = self.context.Process(target=target, args=(*args, self.ready, self.stop, self.results),
                                            daemon=True)
        self.process.start()
        if not self.ready.wait(60):
            raise RuntimeError(f"{target.__name__} did not start")

    def finish(self):
        self.stop.set()
        gathered = self.results.get(timeout=120)
        self.process.join(30)
        return gathered

    def kill(self):
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# ---------------------------------------------------------------- watchers

class Watcher(threading.Thread):
    """One open upload page: a WebSocket on /ws, and (arrival time, lines, status) of every message."""

    def __init__(self, url, origin, cookie, stop):
        super().__init__(daemon=True)
        self.url, self.origin, self.cookie, self.stop = url, origin, cookie, stop
        self.messages = []
        self.started = self.connected = None
        self.error = None
        self.closed = False

    def run(self):
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect
        self.started = time.time()
        try:
            with connect(self.url, origin=self.origin, additional_headers={"Cookie": self.cookie},
                         open_timeout=120, close_timeout=5, max_size=None) as socket:
                self.connected = time.time()
                while not self.stop.is_set():
                    try:
                        message = socket.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    arrived = time.time()
                    lines, status = LINES.search(message), STATUS.search(message)
                    self.messages.append((arrived, int(lines.group(1).replace(",", "")) if lines else None,
                                          status.group(1) if status else None))
        except ConnectionClosed as closed:
            self.closed = True
            self.error = f"closed: {closed}"
        except Exception as error:  # noqa: BLE001 (reported in the summary)
            self.error = f"{type(error).__name__}: {error}"

    @property
    def last_status(self):
        return self.messages[-1][2] if self.messages else None


def latencies(watchers, events, per_state=None):
    """(samples in s, unmatched messages, repeated messages) of all watchers against the events;
    `per_state`, a dict, gets the samples of each announced (lines, status)."""
    announced = {}
    for arrived, _, lines, status in events:
        announced.setdefault((lines, status), arrived)
    per_state = {} if per_state is None else per_state
    samples, unmatched, repeats = [], 0, 0
    for watcher in watchers:
        shown = None
        for number, (arrived, lines, status) in enumerate(watcher.messages):
            state = (lines, status)
            if number == 0:  # what the page shows on connecting, before any event
                shown = state
                continue
            if state == shown:
                repeats += 1
                continue
            shown = state
            if state in announced:
                samples.append(arrived - announced[state])
                per_state.setdefault(state, []).append(samples[-1])
            else:
                unmatched += 1
    return samples, unmatched, repeats


# ---------------------------------------------------------------- the bench

class Bench:
    def __init__(self, args):
        self.args = args
        self.stack = Stack(RUN_DIR, MAX_UPLOAD_MB="1024")
        self.helpers = []
        self.results = {"args": vars(args).copy(), "runs": []}

    def start_servers(self):
        self.stack.start_servers()
        stack = self.stack
        self.logs, self.database_url, self.redis_url = stack.logs, stack.database_url, stack.redis_url
        self.postmaster, self.redis_pid, self.db = stack.postmaster, stack.redis_pid, stack.db

    def start_web(self):
        command = procfile_command("web")
        if self.args.app != "wsgi:app":
            command = command.replace(" wsgi:app", f" {self.args.app}")
        self.web = self.stack.start_web(command)
        self.port = self.stack.port
        self.client = Client(self.port)
        self.client.log_in(OPERATOR, PASSWORD)
        self.results["web_command"] = command

    def start_worker(self):
        return self.stack.start("worker", env={"INGEST_CHUNK_ROWS": str(self.args.chunk_rows)}
                                if self.args.chunk_rows else None)

    def stop_worker(self, worker):
        self.stack.stop(worker)
        wait_for(lambda: (self.stack.health() or {}).get("workers", 1) == 0, 30, "the worker to deregister")

    def helper(self, target, *args):
        helper = Helper(target, *args)
        self.helpers.append(helper)
        return helper

    def reset(self):
        self.db.execute(partition.DROP_EVERY_UPLOAD_TABLE)
        self.db.execute("TRUNCATE records, row_errors, upload_pieces")
        self.db.execute("VACUUM ANALYZE uploads")
        self.db.execute("CHECKPOINT")

    def upload_row(self, upload_id):
        return self.db.execute(
            "SELECT status, lines_read, rows_inserted, extract(epoch FROM started_at), "
            "extract(epoch FROM finished_at) FROM uploads WHERE id = %s", (upload_id,)).fetchone()

    def open_watchers(self, upload_id, count, stop):
        url = f"ws://127.0.0.1:{self.port}/ws?view=upload&id={upload_id}"
        watchers = [Watcher(url, f"http://127.0.0.1:{self.port}", self.client.cookie_header, stop)
                    for _ in range(count)]
        for watcher in watchers:
            watcher.start()
        wait_for(lambda: all(w.messages or w.error for w in watchers), 180, f"{count} watchers' first message")
        failed = [w.error for w in watchers if w.error]
        ready = [w.messages[0][0] - w.started for w in watchers if w.messages]
        log(f"{len(ready)} watchers connected (first message after p50 {ms(percentile(ready, .5))} ms, "
            f"max {ms(max(ready, default=None))} ms), {len(failed)} failed {failed[:3]}")
        return watchers, ready

    def run_once(self, label, path, summary, watcher_count):
        self.reset()
        upload_id = self.client.upload(path)  # no worker yet: it stays queued until everyone watches
        quiet = wait_until_quiet(self.args.quiet_wait)  # before the watchers, which keep the web busy
        stop_watchers = threading.Event()
        watchers, connect_times = self.open_watchers(upload_id, watcher_count, stop_watchers) \
            if watcher_count else ([], [])
        events = self.helper(record_events, self.redis_url, self.database_url, upload_id)
        probe = self.helper(probe_page, self.port, self.client.cookie_header, "/uploads", self.args.probe_interval)
        log(f"{label}: starting the worker on upload {upload_id} ({summary['records']:,} lines)")
        worker = self.start_worker()
        load_before = os.getloadavg()[0]
        sampler = TreeSampler({"web": self.web.process.pid, "worker": worker.process.pid,
                               "postgres": self.postmaster, "redis": self.redis_pid,
                               **{f"helper{n}": helper.process.pid for n, helper in enumerate((events, probe))}},
                              interval=0.5).start()
        clock = time.process_time()
        try:
            def finished():
                if worker.process.poll() is not None:
                    raise RuntimeError(f"the worker exited ({worker.process.returncode}); see {self.logs}")
                return self.upload_row(upload_id)[0] in ("completed", "failed", "cancelled")
            wait_for(finished, 600 + summary["records"] / 1000, f"upload {upload_id} to finish", interval=0.25)
            sampler.stop()
            bench_cpu, load_after = time.process_time() - clock, os.getloadavg()[0]
            status = self.upload_row(upload_id)[0]
            if watchers:
                try:
                    wait_for(lambda: all(w.last_status == status or w.error for w in watchers), 30,
                             "every watcher to show the final status")
                except RuntimeError as error:
                    log(str(error))
            time.sleep(self.args.settle)
        finally:
            stop_watchers.set()
            page_samples = probe.finish()
            event_list = events.finish()
            for watcher in watchers:
                watcher.join(10)
            self.stop_worker(worker)
        status, lines, inserted, started_at, finished_at = self.upload_row(upload_id)
        counted = self.db.execute("SELECT lines_read, rows_inserted, duplicates_in_file + duplicates_existing, "
                                  "rows_invalid FROM uploads WHERE id = %s", (upload_id,)).fetchone()
        wanted = (summary["records"], summary["unique"], summary["duplicates"], summary["invalid"])
        counters = "ok" if tuple(counted) == wanted else f"MISMATCH {tuple(counted)} != {wanted}"
        started_at, finished_at = float(started_at), float(finished_at)
        during = [seconds for at, seconds, code in page_samples if started_at <= at <= finished_at and code == 200]
        errors = [code for at, _, code in page_samples if code != 200]
        per_state = {}
        samples, unmatched, repeats = latencies(watchers, event_list, per_state)
        first_event = event_list[0][0] if event_list else 0.0
        announced = {}
        for arrived, _, event_lines, event_status in event_list:
            announced.setdefault((event_lines, event_status), arrived)
        run = {
            "label": label, "watchers": watcher_count, "upload_id": upload_id, "status": status, "counters": counters,
            "lines": lines, "rows_inserted": inserted, "job_s": finished_at - started_at,
            "events": len(event_list), "watcher_messages": sum(len(w.messages) for w in watchers),
            "watcher_errors": [w.error for w in watchers if w.error],
            "watchers_at_final_status": sum(w.last_status == status for w in watchers),
            "connect_first_message_s": {"p50": percentile(connect_times, .5), "p99": percentile(connect_times, .99),
                                        "max": max(connect_times, default=None)},
            "latency_s": {"samples": len(samples), "p50": percentile(samples, .5), "p90": percentile(samples, .9),
                          "p99": percentile(samples, .99), "max": max(samples, default=None),
                          "min": min(samples, default=None),
                          "mean": statistics.fmean(samples) if samples else None},
            "unmatched_messages": unmatched, "repeated_messages": repeats,
            "per_event": [{"lines": state[0], "status": state[1], "at_s": announced[state] - first_event,
                           "samples": len(values), "p50_s": percentile(values, .5), "max_s": max(values)}
                          for state, values in sorted(per_state.items(), key=lambda item: announced[item[0]])],
            "page_samples": [(at - first_event, seconds) for at, seconds, code in page_samples if code == 200],
            "page_s": {"samples": len(during), "p50": percentile(during, .5), "p90": percentile(during, .9),
                       "p99": percentile(during, .99), "max": max(during, default=None)},
            "page_errors": errors,
            "cpu_s": {"web": sampler.cpu_seconds("web"), "worker": sampler.cpu_seconds("worker"),
                      "postgres": sampler.cpu_seconds("postgres"), "redis": sampler.cpu_seconds("redis"),
                      "bench": bench_cpu + sampler.cpu_seconds("helper0") + sampler.cpu_seconds("helper1"),
                      "other": sampler.other_cpu_seconds()},
            "sampled_s": sampler.seconds,
            "loadavg_1min": [load_before, load_after], "busy_before_start": quiet[1],
        }
        self.results["runs"].append(run)
        log(f"{label}: {status} (counters {counters}), {lines:,} lines in {run['job_s']:.1f} s, "
            f"{len(event_list)} events, "
            f"latency p50 {ms(run['latency_s']['p50'])} ms p99 {ms(run['latency_s']['p99'])} ms "
            f"({len(samples)} samples, {unmatched} unmatched); /uploads p50 {ms(run['page_s']['p50'])} ms "
            f"p99 {ms(run['page_s']['p99'])} ms ({len(during)} requests)")
        return run

    def machine(self):
        memory = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "?")
        redis_version = subprocess.run([shutil.which("redis-server") or "redis-server", "--version"],
                                       capture_output=True, text=True).stdout.split()[2].removeprefix("v=")
        packages = {name: metadata.version(name) for name in
                    ("gunicorn", "gevent", "flask-sock", "simple-websocket", "websockets", "redis", "psycopg")}
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--", "webapp", "jobs", "templates", "static",
                                  "wsgi.py", "Procfile"], cwd=ROOT, capture_output=True, text=True).stdout.split("\n")
        self.results["machine"] = {
            "nproc": os.cpu_count(), "cpu": cpu, "memory": memory.split(":")[1].strip(),
            "kernel": platform.release(), "python": platform.python_version(),
            "postgres": self.db.execute("SHOW server_version").fetchone()[0], "redis": redis_version,
            "packages": packages, "commit": commit, "uncommitted": [line[3:] for line in changed if line],
            "web_concurrency": os.environ.get("WEB_CONCURRENCY", "2 (Procfile default)")}
        from webapp.config import DEFAULTS
        self.results["chunk_rows"] = f"{int(DEFAULTS['INGEST_CHUNK_ROWS']):,} (the app's default)"

    def run(self):
        path, summary = csv_file(self.args.rows, self.args.seed)
        try:
            self.start_servers()
            self.machine()
            log("applying migrations, creating an operator")
            self.stack.flask("db", "upgrade")
            self.stack.flask("operators", "create", OPERATOR, "--password", PASSWORD)
            self.start_web()
            for number in range(self.args.repeat):
                suffix = f" #{number + 1}" if self.args.repeat > 1 else ""
                self.run_once("without" + suffix, path, summary, 0)
                self.run_once("with" + suffix, path, summary, self.args.watchers)
        finally:
            self.stack.stop_all(*(helper.kill for helper in self.helpers))
        out = DATA / f"ws-results-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(self.results, indent=2, default=str))
        print(self.table())
        print(f"\nfull results: {out.relative_to(ROOT)}")

    def table(self):
        m = self.results["machine"]
        lines = ["", f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, kernel {m['kernel']}, "
                     f"Python {m['python']}, PostgreSQL {m['postgres']}, Redis {m['redis']}, "
                     + ", ".join(f"{name} {version}" for name, version in m["packages"].items())
                     + f"; commit {m['commit']}"
                     + (f" + {len(m['uncommitted'])} uncommitted app files" if m["uncommitted"] else "")
                     + f"; web workers: {m['web_concurrency']}",
                 f"web: {self.results['web_command']}",
                 f"file: {self.args.rows:,} lines; "
                 f"INGEST_CHUNK_ROWS {self.args.chunk_rows or self.results['chunk_rows']}",
                 "",
                 "| run | counters | watchers | job s | events | messages | latency p50 / p90 / p99 / max ms (samples) "
                 "| unmatched | watchers at final status | errors | /uploads p50 / p90 / p99 / max ms (requests) "
                 "| CPU s: web / worker / PostgreSQL / bench / other processes | load |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for run in self.results["runs"]:
            latency, page = run["latency_s"], run["page_s"]
            lines.append(
                f"| {run['label']} | {run['counters']} | {run['watchers']} | {run['job_s']:.1f} | {run['events']} | "
                f"{run['watcher_messages']:,} | "
                + (f"{ms(latency['p50'])} / {ms(latency['p90'])} / {ms(latency['p99'])} / {ms(latency['max'])} "
                   f"({latency['samples']:,})" if run["watchers"] else "-")
                + f" | {run['unmatched_messages']} | {run['watchers_at_final_status']} / {run['watchers']} | "
                f"{len(run['watcher_errors']) + len(run['page_errors'])} | {ms(page['p50'])} / {ms(page['p90'])} / "
                f"{ms(page['p99'])} / {ms(page['max'])} ({page['samples']}) | "
                + " / ".join(f"{run['cpu_s'][name]:.1f}" for name in ("web", "worker", "postgres", "bench", "other"))
                + f" | {run['loadavg_1min'][0]:.1f} → {run['loadavg_1min'][1]:.1f} |")
        without = [run for run in self.results["runs"] if run["watchers"] == 0]
        loaded = [run for run in self.results["runs"] if run["watchers"]]
        lines.append("")
        for plain, busy in zip(without, loaded):
            p99 = busy["latency_s"]["p99"]
            ratio = (busy["page_s"]["p99"] / plain["page_s"]["p99"]
                     if busy["page_s"]["p99"] and plain["page_s"]["p99"] else None)
            lines.append(
                f"{busy['label']}: event-to-client p99 {ms(p99)} ms, target < {P99_TARGET_MS} ms: "
                f"{'met' if p99 is not None and p99 * 1000 < P99_TARGET_MS else 'MISSED'}; "
                f"/uploads p99 with {busy['watchers']} watchers / without = "
                + (f"{ratio:.2f}x" if ratio else "-") + f", target <= {PAGE_RATIO_TARGET:.0f}x: "
                f"{'met' if ratio is not None and ratio <= PAGE_RATIO_TARGET else 'MISSED'}")
            lines.append(f"    connecting {busy['watchers']} watchers: first message after p50 "
                         f"{ms(busy['connect_first_message_s']['p50'])} ms, p99 "
                         f"{ms(busy['connect_first_message_s']['p99'])} ms")
        return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description="Live progress benchmark (see bench/README.md).")
    parser.add_argument("--rows", type=int, default=1_000_000, help="lines of the generated CSV")
    parser.add_argument("--watchers", type=int, default=200, help="open upload pages in the 'with' run")
    parser.add_argument("--chunk-rows", type=int, help="INGEST_CHUNK_ROWS of the worker (default: the app's)")
    parser.add_argument("--probe-interval", type=float, default=0.05,
                        help="pause between two GET /uploads of the second client, in s")
    parser.add_argument("--settle", type=float, default=2.0, help="pause after the job before stopping, in s")
    parser.add_argument("--quiet-wait", type=float, default=30,
                        help="before starting the worker, wait up to this many s for other work to stop")
    parser.add_argument("--repeat", type=int, default=1, help="how many without/with pairs to run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--app", default="wsgi:app",
                        help="WSGI app for the web line instead of wsgi:app "
                             "(to measure a change; the module must be on PYTHONPATH)")
    Bench(parser.parse_args()).run()


if __name__ == "__main__":
    main()
