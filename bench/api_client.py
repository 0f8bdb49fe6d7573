"""JSON API benchmark: N concurrent clients posting batches of 1,000 records to
POST /api/ingest, or single records to POST /api/records as fast as they can;
accepted records/s and accept latency, then end to end until every accepted
record is stored.

    .venv/bin/python bench/api_client.py                                    # both modes, 32 clients, 30 s each
    .venv/bin/python bench/api_client.py --mode single --clients 4 --duration 10   # quick
    .venv/bin/python bench/api_client.py --url http://127.0.0.1:8000 --token SECRET --mode batch

Self-contained (no --url): it starts its own PostgreSQL and Redis under
bench/data/api/ (wiped first) with scripts/services.py, applies the migrations,
creates an API token with `flask --app wsgi tokens create`, and starts the
Procfile's `web` line as written (gunicorn on a free port of 127.0.0.1),
--workers processes of its `worker` line and its `scheduler` line (which
flushes the buffer of POST /api/records every BUFFER_FLUSH_SECONDS). Everything
it started is stopped at the end, on Ctrl-C and on errors too.

--floor: then the same load on bench/api_floor.py (a Flask app that only parses
the body and answers 202) under the same web line, and Intake's figures as ratios
of its figures: what this machine gives the fixed stack before Intake does any work.

Against a running Intake (--url and --token): the same load and the same job
checks over the API; give --database-url to count the stored records (single
mode's end to end needs it) and --redis-url to count Redis connections.

batch   each client POSTs /api/ingest with 1,000 generated records (unique
        addresses; in each batch one has no @ and the last repeats the first in
        capitals) until --duration or --requests; then every job is polled on
        GET /api/jobs/<id> until it is finished. End to end: from the first POST
        to the last job's finished_at.
single  each client POSTs /api/records with one record per request; then the
        records table is polled until it holds every accepted record. End to
        end: from the first POST until the last of them is stored.

The clients are threads of this process, each with one keep-alive connection
(bench/http_session.py's KeepAlive: raw sockets, no per-request objects), so the
client costs the shared CPUs little; its own CPU time is measured and printed.
Results go to bench/data/api-results-<timestamp>.json.
"""
import argparse
import itertools
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from datetime import datetime
from pathlib import Path

import psycopg
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.http_session import KeepAlive, log, percentile  # noqa: E402
from bench.rss import MB, TreeSampler, system_busy  # noqa: E402
from bench.spy import attach as spy_attach, detach, where_time_went  # noqa: E402
from bench.stack import Stack, procfile_command  # noqa: E402

DATA = ROOT / "bench" / "data"
RUN_DIR = DATA / "api"
MAX_BATCH = 1000
FINAL = ("completed", "failed", "cancelled")

BATCH_P99_TARGET_S = 0.100
SINGLE_P99_TARGET_S = 0.020
SINGLE_RATE_TARGET = 5000
END_TO_END_SHARE_TARGET = 0.5

FIRST = ("Ann", "Bob", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hugo", "Inès", "Jonas", "Kim", "Lena", "Mateo")
LAST = ("Meyer", "Novak", "O'Brien", "Petrov", "Quinn", "Rossi", "Schmidt", "Tanaka", "Úlfsson", "Varga", "Weber")
COMPANIES = ("Acme", "Globex GmbH", "Initech", "Umbrella", "", "Stark & Co", "Żabka")
PLACES = (("Berlin", "DE"), ("Paris", "FR"), ("Kraków", "PL"), ("Lisboa", "PT"), ("Austin", "US"), ("", "US"))


def interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def seconds_ms(value):
    return "-" if value is None else f"{value * 1000:,.1f}"


# ---------------------------------------------------------------- generated records

def record(local, number):
    city, country = PLACES[number % len(PLACES)]
    return {"email": f"{local}@example.com", "first_name": FIRST[number % len(FIRST)],
            "last_name": LAST[number * 7 % len(LAST)], "phone": f"+49 30 {number:07d}",
            "company": COMPANIES[number % len(COMPANIES)], "city": city, "country": country}


def batch_body(prefix, size):
    """One batch as JSON: unique addresses, except that (from 3 records on) the middle one has
    no @ (invalid) and the last repeats the first in capitals (a duplicate within the batch)."""
    records = [record(f"{prefix}-{index}", index) for index in range(size)]
    if size >= 3:
        records[size // 2]["email"] = f"{prefix}-no-at-sign.example.com"
        records[-1]["email"] = records[0]["email"].upper()
    return json.dumps({"records": records}).encode()


def batch_expected(size):
    """What the job of one batch_body(…, size) should count."""
    odd = 1 if size >= 3 else 0
    return {"received": size, "inserted": size - 2 * odd, "duplicate": odd, "invalid": odd}


# ---------------------------------------------------------------- the load

def hammer(url, token, clients, make, duration, requests=None, keep=lambda status: False, warmup=2):
    """Run `clients` threads, each on a keep-alive connection of its own, sending what
    make(client, number) returns ((method, path, body, records), or None to stop) until
    `duration` s have passed or `requests` were sent in all. Returns the samples
    (start on the perf_counter clock, seconds, status, records, answer when keep(status)),
    the perf_counter and wall clock at the start, and the reconnects."""
    connections = [KeepAlive(url, {"Authorization": f"Bearer {token}"}) for _ in range(clients)]
    for connection in connections:  # the token cache, the connection, a pooled DB connection
        for _ in range(warmup):
            connection.request("GET", "/api/jobs/1")
    results = [[] for _ in range(clients)]
    claimed = itertools.count()
    stop = threading.Event()
    gate = threading.Barrier(clients + 1)
    clock = {}

    def client(index):
        connection, samples = connections[index], results[index]
        gate.wait()
        deadline = clock["start"] + duration if duration else float("inf")
        for number in itertools.count():
            if stop.is_set() or (requests is not None and next(claimed) >= requests):
                break
            method, path, body, records = make(index, number)
            begun = time.perf_counter()
            if begun >= deadline:
                break
            try:
                status, answer = connection.request(method, path, body)
            except OSError as error:
                status, answer = type(error).__name__, str(error).encode()
                connection.close()
            samples.append((begun, time.perf_counter() - begun, status, records,
                            answer if keep(status) else None))

    threads = [threading.Thread(target=client, args=(index,), daemon=True) for index in range(clients)]
    for thread in threads:
        thread.start()
    clock["start"], clock["wall"] = time.perf_counter(), time.time()
    gate.wait()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    finally:
        stop.set()
    for connection in connections:
        connection.close()
    samples = sorted(itertools.chain.from_iterable(results))
    return samples, clock["start"], clock["wall"], sum(connection.reconnects for connection in connections)


def load_summary(samples, started, accepted_status=202):
    """Accepted records/s and accept latency of the samples, with a per-second timeline."""
    ok = [sample for sample in samples if sample[2] == accepted_status]
    latencies = [sample[1] for sample in ok]
    wall = max((begun + seconds for begun, seconds, *_ in samples), default=started) - started
    records = sum(sample[3] for sample in ok)
    timeline = {}
    for begun, seconds, status, count, _ in ok:
        second = timeline.setdefault(int(begun + seconds - started), [0, []])
        second[0] += count
        second[1].append(seconds)
    return {
        "requests": len(samples), "accepted_requests": len(ok), "accepted_records": records,
        "failed": dict(Counter(str(sample[2]) for sample in samples if sample[2] != accepted_status)),
        "failure_examples": [(sample[2], (sample[4] or b"")[:300].decode("utf-8", "replace"))
                             for sample in samples if sample[2] != accepted_status][:5],
        "load_s": wall, "records_per_s": records / wall if wall else None,
        "requests_per_s": len(ok) / wall if wall else None,
        "latency_s": {"p50": percentile(latencies, .5), "p95": percentile(latencies, .95),
                      "p99": percentile(latencies, .99), "max": max(latencies, default=None),
                      "mean": sum(latencies) / len(latencies) if latencies else None},
        "timeline": [{"second": second, "records": count, "p50_s": percentile(values, .5),
                      "p99_s": percentile(values, .99)} for second, (count, values) in sorted(timeline.items())],
    }


# ---------------------------------------------------------------- where it runs

class Target:
    """The Intake under load: its URL and token, and (when known) its database, Redis and processes."""

    def __init__(self, url, token, database_url=None, redis_url=None, roots=None):
        self.url, self.token = url.rstrip("/"), token
        self.db = psycopg.connect(database_url, autocommit=True) if database_url else None
        self.redis = Redis.from_url(redis_url) if redis_url else None
        self.roots = roots or {}

    def api(self):
        return KeepAlive(self.url, {"Authorization": f"Bearer {self.token}"})

    def redis_connections(self):
        return self.redis.info("stats")["total_connections_received"] if self.redis else None

    def stored(self, prefix):
        """Records whose address starts with `prefix` (None without --database-url)."""
        if self.db is None:
            return None
        return self.db.execute("SELECT count(*) FROM records WHERE email_norm LIKE %s",
                               (f"{prefix}-%",)).fetchone()[0]

    def stored_by_stream(self, prefix):
        """The same, among the records of the API stream uploads only (an index scan per upload)."""
        if self.db is None:
            return None
        return self.db.execute(
            "SELECT count(*) FROM records WHERE upload_id IN (SELECT id FROM uploads WHERE source = 'api-stream') "
            "AND email_norm LIKE %s", (f"{prefix}-%",)).fetchone()[0]

    def close(self):
        if self.db is not None:
            self.db.close()


class Measured:
    """CPU of this process (the clients), of the target's processes when they are known,
    of the whole machine, and Redis connections opened, between start() and stop()."""

    def __init__(self, target):
        self.target = target

    def start(self):
        self.sampler = TreeSampler(self.target.roots, interval=0.5).start() if self.target.roots else None
        self.cpu, self.busy, self.wall = time.process_time(), system_busy(), time.monotonic()
        self.redis_before = self.target.redis_connections()
        return self

    def stop(self):
        seconds = time.monotonic() - self.wall
        if self.sampler:
            self.sampler.stop()
        client = time.process_time() - self.cpu
        machine = system_busy() - self.busy
        redis_after = self.target.redis_connections()
        result = {"seconds": seconds, "client_cpu_s": client, "client_share_of_one_cpu": client / seconds,
                  "machine_busy_share": machine / (os.cpu_count() * seconds),
                  "redis_connections_opened": (redis_after - self.redis_before) if redis_after is not None else None}
        if self.sampler:
            result["cpu_s"] = {name: self.sampler.cpu_seconds(name) for name in self.target.roots}
            result["cpu_s"]["other"] = self.sampler.other_cpu_seconds()
            result["rss_mb"] = {seen.root: {"first": seen.rss_first / MB, "peak": seen.rss_max / MB,
                                            "last": seen.rss_last / MB}
                                for seen in self.sampler.seen.values() if seen.depth == 0}
        return result


# ---------------------------------------------------------------- the two modes

def apply_load(mode, posting, args, target, make, keep):
    """The clients post `make`'s requests; returns (load summary, samples, wall-clock start, wall-clock end)."""
    log(f"{mode}: {args.clients} clients {posting} "
        + (f"for {args.duration} s" if args.duration else f"({args.requests:,} requests)"))
    spy = profile_web(args, target, mode)
    measured = Measured(target).start()
    samples, started, wall_start, reconnects = hammer(target.url, target.token, args.clients, make, args.duration,
                                                      args.requests, keep=keep)
    load_end = time.time()
    load = load_summary(samples, started)
    load.update(measured.stop(), reconnects=reconnects)
    report_load(mode, load)
    if spy:
        spy_profile_report(spy, load)
    return load, samples, wall_start, load_end


def profile_web(args, target, mode):
    """With --profile: py-spy on the web processes during this load."""
    if not (args.profile and "web" in target.roots):
        return None
    output = DATA / f"profile-api-{mode.replace(' ', '-')}.txt"
    log(f"{mode}: py-spy on the web processes: {output.relative_to(ROOT)}")
    spy = spy_attach(args.profile, target.roots["web"], output, open(DATA / "py-spy.log", "ab"))
    spy.output = output
    return spy


def spy_profile_report(spy, load):
    detach(spy)
    load["profile"] = str(spy.output.relative_to(ROOT))
    load["profile_summary"] = where_time_went(spy.output, load["accepted_requests"])
    print(f"web profile, {load['profile']}:\n{load['profile_summary']}", flush=True)


def batch_requests(prefix, size):
    def make(client, number):
        return "POST", "/api/ingest", batch_body(f"{prefix}-c{client}-b{number}", size), size
    return make


def single_requests(prefix):
    def make(client, number):
        return "POST", "/api/records", json.dumps(record(f"{prefix}-c{client}-{number}", number)).encode(), 1
    return make


POSTING = {"batch": "posting batches of {size:,} records", "single": "posting one record per request"}


def run_batch(args, target, tag):
    prefix = f"{tag}-batch"
    size = args.batch_size
    load, samples, wall_start, _ = apply_load("batch", POSTING["batch"].format(size=size), args, target,
                                              batch_requests(prefix, size), keep=lambda status: True)

    job_ids = [json.loads(sample[4])["job_id"] for sample in samples if sample[2] == 202]
    log(f"batch: waiting for {len(job_ids):,} jobs")
    measured = Measured(target).start()
    jobs, pending = wait_for_jobs(target, job_ids, args.drain_timeout)
    drain = measured.stop()
    finished = [datetime.fromisoformat(job["finished_at"]).timestamp() for job in jobs.values() if job["finished_at"]]
    end_to_end = (max(finished) - wall_start) if finished and not pending else None
    expected = batch_expected(size)
    counts = Counter()
    wrong = []
    for job_id, job in jobs.items():
        counts.update({name: value or 0 for name, value in job["counts"].items()})
        counts[job["status"]] += 1
        got = {name: job["counts"][name] for name in expected}
        if job["status"] != "completed" or got != expected:
            wrong.append({"job_id": job_id, "status": job["status"], "counts": got,
                          "failure_reason": job["failure_reason"]})
    inserted_expected = expected["inserted"] * len(job_ids)
    stored = target.stored(prefix)
    result = {
        "mode": "batch", "clients": args.clients, "batch_size": size, "load": load, "drain": drain,
        "jobs": len(job_ids), "jobs_pending_at_timeout": len(pending), "job_counts": dict(counts),
        "jobs_not_as_expected": wrong[:20], "jobs_not_as_expected_count": len(wrong),
        "records_expected_in_db": inserted_expected, "records_in_db": stored,
        "end_to_end_s": end_to_end,
        "end_to_end_records_per_s": load["accepted_records"] / end_to_end if end_to_end else None,
        "end_to_end_inserted_per_s": counts["inserted"] / end_to_end if end_to_end else None,
        "drain_after_load_s": (max(finished) - wall_start - load["load_s"]) if finished else None,
    }
    result["verified"] = (not pending and not wrong and counts["inserted"] == inserted_expected
                          and stored in (None, inserted_expected))
    return result


def wait_for_jobs(target, job_ids, timeout):
    """GET /api/jobs/<id>, oldest job first, until each is finished (or `timeout` s pass);
    returns ({id: job}, ids still pending)."""
    connection = target.api()
    pending, jobs = deque(job_ids), {}
    deadline = time.monotonic() + timeout
    last_note = time.monotonic()
    try:
        while pending and time.monotonic() < deadline:
            status, body = connection.request("GET", f"/api/jobs/{pending[0]}")
            if status != 200:
                raise RuntimeError(f"GET /api/jobs/{pending[0]} answered {status}: {body[:300]!r}")
            job = json.loads(body)
            if job["status"] in FINAL:
                jobs[pending.popleft()] = job
                continue
            if time.monotonic() - last_note > 10:
                log(f"batch: {len(jobs):,} of {len(job_ids):,} jobs finished")
                last_note = time.monotonic()
            time.sleep(0.25)
    finally:
        connection.close()
    if pending:
        log(f"batch: {len(pending):,} jobs still not finished after {timeout} s")
    return jobs, list(pending)


def run_single(args, target, tag):
    prefix = f"{tag}-single"
    load, _, wall_start, load_end = apply_load("single", POSTING["single"], args, target, single_requests(prefix),
                                               keep=lambda status: status != 202)
    accepted = load["accepted_records"]
    result = {"mode": "single", "clients": args.clients, "load": load, "records_accepted": accepted,
              "records_in_db": None, "end_to_end_s": None, "end_to_end_records_per_s": None}
    if target.db is None:
        log("single: no database to count the stored records in (--database-url): end to end not measured")
        result["verified"] = None
        return result
    log(f"single: waiting until the {accepted:,} accepted records are stored")
    measured = Measured(target).start()
    deadline = time.monotonic() + args.drain_timeout
    stored = target.stored_by_stream(prefix)
    while stored < accepted and time.monotonic() < deadline:
        time.sleep(0.1)
        stored = target.stored_by_stream(prefix)
    done_at = time.time()
    result["drain"] = measured.stop()
    result["records_in_db"] = stored
    result["lost"] = accepted - stored
    if stored >= accepted:
        result["end_to_end_s"] = done_at - wall_start
        result["end_to_end_records_per_s"] = accepted / result["end_to_end_s"]
        result["stored_after_load_s"] = done_at - load_end
    else:
        log(f"single: only {stored:,} of {accepted:,} accepted records stored after {args.drain_timeout} s")
    result["verified"] = stored == accepted
    return result


# ---------------------------------------------------------------- output

def report_load(mode, load):
    latency = load["latency_s"]
    log(f"{mode}: {load['accepted_requests']:,} requests accepted ({load['accepted_records']:,} records) in "
        f"{load['load_s']:.1f} s = {load['records_per_s'] or 0:,.0f} records/s; accept latency p50 "
        f"{seconds_ms(latency['p50'])} p95 {seconds_ms(latency['p95'])} p99 {seconds_ms(latency['p99'])} max "
        f"{seconds_ms(latency['max'])} ms; failed {load['failed'] or 'none'}; client CPU {load['client_cpu_s']:.1f} s "
        f"({load['client_share_of_one_cpu']:.0%} of one CPU)")
    for status, answer in load["failure_examples"][:3]:
        log(f"    {status}: {answer}")


def verdict(met):
    return "-" if met is None else ("met" if met else "MISSED")


def summary(results):
    lines = [""]
    m = results["machine"]
    lines.append(f"machine: {m['nproc']} CPUs ({m['cpu']}), load average before {m['loadavg_before']:.2f}; "
                 f"commit {m['commit']}" + (f" + {len(m['uncommitted'])} uncommitted app files"
                                            if m["uncommitted"] else ""))
    if results.get("web_command"):
        lines.append(f"web: {results['web_command']}; workers: {results['workers']} × {results['worker_command']}; "
                     f"scheduler: {results['scheduler_command']}")
    else:
        lines.append(f"target: {results['args']['url']}")
    csv_rate, csv_source = results["csv_rows_per_s"], results["csv_source"]
    for run in results["runs"]:
        load, latency = run["load"], run["load"]["latency_s"]
        cpu = load.get("cpu_s")
        requests = load["accepted_requests"] or 1
        lines += ["", f"{run['mode']}: {run['clients']} clients"
                      + (f", batches of {run['batch_size']:,}" if run["mode"] == "batch" else ", one record each")]
        lines.append(f"  accepted: {load['accepted_records']:,} records in {load['accepted_requests']:,} requests, "
                     f"{load['load_s']:.1f} s: {load['records_per_s'] or 0:,.0f} records/s, "
                     f"{load['requests_per_s'] or 0:,.0f} requests/s; failed: {load['failed'] or 'none'}; "
                     f"reconnects {load['reconnects']}")
        lines.append(f"  accept latency ms: p50 {seconds_ms(latency['p50'])} / p95 {seconds_ms(latency['p95'])} / "
                     f"p99 {seconds_ms(latency['p99'])} / max {seconds_ms(latency['max'])}")
        lines.append(f"  client CPU {load['client_cpu_s']:.1f} s ({load['client_share_of_one_cpu']:.0%} of one CPU); "
                     f"machine busy {load['machine_busy_share']:.0%}"
                     + ("; CPU s during the load: " + ", ".join(f"{name} {value:.1f}" for name, value in cpu.items())
                        + f"; web CPU per request {cpu['web'] / requests * 1000:.2f} ms" if cpu else "")
                     + (f"; Redis connections opened {load['redis_connections_opened']:,} "
                        f"({load['redis_connections_opened'] / requests:.2f} per request)"
                        if load["redis_connections_opened"] is not None else ""))
        if run["mode"] == "batch":
            lines.append(f"  jobs: {run['jobs']:,}, {run['job_counts'].get('completed', 0):,} completed, "
                         f"{run['jobs_not_as_expected_count']} not as expected, {run['jobs_pending_at_timeout']} "
                         f"unfinished; inserted {run['job_counts'].get('inserted', 0):,}, duplicate "
                         f"{run['job_counts'].get('duplicate', 0):,}, invalid {run['job_counts'].get('invalid', 0):,}; "
                         f"records in the database {run['records_in_db'] if run['records_in_db'] is not None else '-'}"
                         f" (expected {run['records_expected_in_db']:,}): "
                         f"{'verified' if run['verified'] else 'NOT VERIFIED'}")
            rss = [(name, load["rss_mb"][name]["first"], max(load["rss_mb"][name]["peak"], drain["peak"]),
                    drain["last"]) for name, drain in run["drain"].get("rss_mb", {}).items() if name.startswith("worker")]
            lines += [f"  {name} RSS: {first:.0f} MB before the load, peak {peak:.0f}, {last:.0f} after the drain"
                      for name, first, peak, last in rss]
            if run["end_to_end_s"]:
                lines.append(f"  end to end (first POST → last finished_at): {run['end_to_end_s']:.1f} s, "
                             f"{run['end_to_end_records_per_s']:,.0f} records/s "
                             f"({run['end_to_end_inserted_per_s']:,.0f} inserted/s); last job finished "
                             f"{run['drain_after_load_s']:.1f} s after the load ended")
        else:
            if run["end_to_end_s"]:
                lines.append(f"  end to end (first POST → all stored): {run['end_to_end_s']:.1f} s, "
                             f"{run['end_to_end_records_per_s']:,.0f} records/s; all stored "
                             f"{run['stored_after_load_s']:.1f} s after the load ended")
            lines.append(f"  records in the database {run['records_in_db'] if run['records_in_db'] is not None else '-'}"
                         f" of {run['records_accepted']:,} accepted: "
                         + ("not checked" if run["verified"] is None else
                            "none lost" if run["verified"] else f"{run['lost']:,} LOST"))
        p99 = latency["p99"]
        if run["mode"] == "batch":
            share = run["end_to_end_records_per_s"] / csv_rate if run["end_to_end_records_per_s"] and csv_rate else None
            lines.append(f"  targets: accept p99 < {BATCH_P99_TARGET_S * 1000:.0f} ms at 32 clients: "
                         f"{verdict(p99 is not None and p99 < BATCH_P99_TARGET_S)}"
                         + ("" if run["clients"] == 32 else f" (measured with {run['clients']} clients, not 32)")
                         + f"; end to end ≥ {END_TO_END_SHARE_TARGET:.0%} of the CSV pipeline: "
                         + (f"{share:.0%} of {csv_rate:,.0f} lines/s ({csv_source}): "
                            f"{verdict(share >= END_TO_END_SHARE_TARGET)}" if share else "- (no CSV figure)"))
        else:
            rate = load["records_per_s"] or 0
            lines.append(f"  targets: accept p99 < {SINGLE_P99_TARGET_S * 1000:.0f} ms: "
                         f"{verdict(p99 is not None and p99 < SINGLE_P99_TARGET_S)}; ≥ {SINGLE_RATE_TARGET:,} "
                         f"records/s accepted: {verdict(rate >= SINGLE_RATE_TARGET)}")
        if load["client_share_of_one_cpu"] > 0.5:
            lines.append(f"  note: the client used {load['client_share_of_one_cpu']:.0%} of one CPU; on a 2-CPU "
                         "machine that is CPU the server did not have")
    lines += floor_summary(results)
    return "\n".join(lines)


def floor_summary(results):
    """The floor runs (bench/api_floor.py), each against Intake's run of the same mode."""
    intake = {run["mode"]: run["load"] for run in results["runs"]}
    lines = []
    for run in results["floor"]:
        load, latency = run["load"], run["load"]["latency_s"]
        mine = intake[run["mode"]]
        lines += ["", f"floor {run['mode']} (Flask alone, nothing stored, same web line): "
                      f"{load['records_per_s'] or 0:,.0f} records/s; accept latency ms: p50 "
                      f"{seconds_ms(latency['p50'])} / p99 {seconds_ms(latency['p99'])}; web CPU per request "
                      f"{load['cpu_s']['web'] / (load['accepted_requests'] or 1) * 1000:.2f} ms; client CPU "
                      f"{load['client_share_of_one_cpu']:.0%} of one CPU; machine busy {load['machine_busy_share']:.0%}"]
        if load["records_per_s"] and latency["p99"]:
            lines.append(f"  Intake / floor: records/s {(mine['records_per_s'] or 0) / load['records_per_s']:.2f}, "
                         f"p99 {mine['latency_s']['p99'] / latency['p99']:.2f}")
    return lines


def csv_baseline(args):
    """(lines/s, where from) of the CSV pipeline to compare end to end with: --csv-rows-per-s, or
    run (b) of the newest bench/data/results-*.json of bench/ingest_bench.py."""
    if args.csv_rows_per_s:
        return args.csv_rows_per_s, "--csv-rows-per-s"
    for path in sorted(DATA.glob("results-*.json"), reverse=True):
        try:
            ingests = json.loads(path.read_text()).get("ingests", [])
        except (OSError, ValueError):
            continue
        for ingest in ingests:
            if ingest.get("label") == "b" and ingest.get("lines_per_s"):
                return ingest["lines_per_s"], f"(b) of {path.relative_to(ROOT)}"
    return None, None


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    git = ["git", "-C", str(ROOT)]
    changed = subprocess.run([*git, "status", "--porcelain", "--", "webapp", "jobs", "migrations", "wsgi.py",
                              "Procfile"], capture_output=True, text=True).stdout.splitlines()
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(), "python": platform.python_version(),
            "loadavg_before": os.getloadavg()[0],
            "commit": subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True).stdout.strip(),
            "uncommitted": [line[3:] for line in changed],
            "web_concurrency": os.environ.get("WEB_CONCURRENCY", "2 (Procfile default)")}


# ---------------------------------------------------------------- main

def modes(args):
    return ("batch", "single") if args.mode == "both" else (args.mode,)


def run_modes(args, target, results):
    tag = args.tag or time.strftime("r%Y%m%d%H%M%S")
    results["tag"] = tag
    for mode in modes(args):
        results["runs"].append((run_batch if mode == "batch" else run_single)(args, target, tag))


def run_floor(args, stack, token, results):
    """The same load on bench/api_floor.py (Flask alone, nothing stored) under the same web line."""
    web = stack.start_web(procfile_command("web").replace("wsgi:app", "bench.api_floor:app"))
    target = Target(f"http://127.0.0.1:{stack.port}", token, roots={"web": web.pid})
    requests = {"batch": batch_requests("floor", args.batch_size), "single": single_requests("floor")}
    for mode in modes(args):
        load, *_ = apply_load(f"floor {mode}", POSTING[mode].format(size=args.batch_size), args, target,
                              requests[mode], keep=lambda status: status != 202)
        results["floor"].append({"mode": mode, "clients": args.clients, "load": load})


def self_contained(args, results):
    stack = Stack(RUN_DIR)
    target = None
    try:
        stack.start_servers()
        log("applying migrations, creating an API token")
        stack.flask("db", "upgrade")
        token = stack.flask("tokens", "create", "api benchmark").split()[-1]
        web = stack.start_web()
        workers = [stack.start("worker", log_name=f"worker-{number}") for number in range(args.workers)]
        stack.wait_for_workers(args.workers)
        scheduler = stack.start("scheduler")
        results.update(web_command=web.command, worker_command=procfile_command("worker"), workers=args.workers,
                       scheduler_command=scheduler.command)
        roots = {"web": web.pid, "postgres": stack.postmaster, "redis": stack.redis_pid, "scheduler": scheduler.pid,
                 **{f"worker{number}": worker.pid for number, worker in enumerate(workers)}}
        target = Target(f"http://127.0.0.1:{stack.port}", token, stack.database_url, stack.redis_url, roots)
        run_modes(args, target, results)
        if args.floor:
            stack.stop(web)
            run_floor(args, stack, token, results)
    finally:
        if target:
            target.close()
        stack.stop_all()


def main():
    try:
        bench()
    except KeyboardInterrupt:
        log("interrupted; every process it started is stopped")
        sys.exit(130)


def bench():
    parser = argparse.ArgumentParser(description="JSON API benchmark (see bench/README.md).")
    parser.add_argument("--mode", choices=("batch", "single", "both"), default="both")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (threads)")
    parser.add_argument("--duration", type=float, help="seconds of load per mode (default 30, or until --requests)")
    parser.add_argument("--requests", type=int, help="requests per mode, in all (instead of --duration)")
    parser.add_argument("--batch-size", type=int, default=MAX_BATCH, help="records per batch (at most 1,000)")
    parser.add_argument("--drain-timeout", type=float, default=900,
                        help="how long to wait for the jobs / the buffer after the load, in s")
    parser.add_argument("--workers", type=int, default=1, help="RQ workers (the Procfile's worker line) to start")
    parser.add_argument("--csv-rows-per-s", type=float,
                        help="the CSV pipeline's lines/s to compare end to end with (default: (b) of the newest "
                             "bench/data/results-*.json)")
    parser.add_argument("--tag", help="prefix of the generated addresses (default: r + the start time)")
    parser.add_argument("--url", help="a running Intake, e.g. http://127.0.0.1:8000 (default: start one)")
    parser.add_argument("--token", help="its API token (with --url)")
    parser.add_argument("--database-url", help="with --url: its PostgreSQL, to count the stored records")
    parser.add_argument("--redis-url", help="with --url: its Redis, to count the connections opened")
    parser.add_argument("--floor", action="store_true",
                        help="then the same load on bench/api_floor.py (Flask alone) under the same web line")
    parser.add_argument("--profile", metavar="PY_SPY",
                        help="path of a py-spy binary: profile the web processes during each load")
    args = parser.parse_args()
    if args.profile and (args.url or not Path(args.profile).exists()):
        parser.error("--profile needs a py-spy binary and the bench's own servers (no --url)")
    if args.url and not args.token:
        parser.error("--url needs --token")
    if args.url and args.floor:
        parser.error("--floor needs the bench's own servers (no --url)")
    if not 1 <= args.batch_size <= MAX_BATCH:
        parser.error(f"--batch-size must be 1 to {MAX_BATCH:,}")
    if args.duration is None and args.requests is None:
        args.duration = 30.0
    signal.signal(signal.SIGTERM, interrupted)
    csv_rate, csv_source = csv_baseline(args)
    results = {"args": {**vars(args), "token": "…" if args.token else None}, "machine": machine(),
               "csv_rows_per_s": csv_rate, "csv_source": csv_source, "runs": [], "floor": []}
    try:
        if args.url:
            target = Target(args.url, args.token, args.database_url, args.redis_url)
            try:
                run_modes(args, target, results)
            finally:
                target.close()
        else:
            self_contained(args, results)
    finally:
        if results["runs"]:
            DATA.mkdir(parents=True, exist_ok=True)
            out = DATA / f"api-results-{time.strftime('%Y%m%d-%H%M%S')}.json"
            out.write_text(json.dumps(results, indent=2, default=str))
            print(summary(results))
            print(f"\nfull results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
