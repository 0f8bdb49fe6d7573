"""CSV ingest benchmark: Intake end to end against psql's \\copy, on one PostgreSQL.

    .venv/bin/python bench/ingest_bench.py --rows 1000000            # everything (≈ 12 min on 2 idle cores)
    .venv/bin/python bench/ingest_bench.py --rows 200000 --skip-5m --skip-web --chunks 50000   # quick

It starts its own PostgreSQL and Redis under bench/data/run/ (wiped first) with
scripts/services.py, applies the migrations, creates an operator, starts the
web process with the Procfile's command line, and measures:

  (a) psql \\copy of the clean, deduplicated rows into an empty copy of
      `records` (same columns, same indexes: the unique one on email_norm),
      and into one with only the primary key and that unique index;
  (b) Intake end to end with one RQ worker: from the upload POST until the
      upload row says completed; lines read per second and the ratio to (a);
  (c) the worker's peak RSS (the RQ parent and the forked work horse), for
      --rows and --large-rows lines;
  (d) the web process's peak RSS while it receives a file of --web-mb MB;
  (e) lines per second for each INGEST_CHUNK_ROWS in --chunks.

With --profile PY_SPY it also runs one more ingest of --rows lines with py-spy
attached to the work horse and prints where the time went.

It measures a copy of the committed code (--app head) or of the work tree as
it is at the start (--app worktree), so edits made meanwhile change nothing.
Every process it starts is stopped at the end, pass or fail. Test files are
made with bench/make_csv.py and kept under bench/data/csv/ for the next run.
"""
import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.http_session import Client, log  # noqa: E402
from bench.rss import MB, TreeSampler, read_stat, system_busy  # noqa: E402
from bench.stack import Child, procfile_command  # noqa: E402
from jobs import partition  # noqa: E402
from scripts.services import Postgres, Redis, free_port, postgres_bin, wait_for  # noqa: E402
from webapp.config import DEFAULTS  # noqa: E402

DATA = ROOT / "bench" / "data"
CSV_DIR = DATA / "csv"
RUN_DIR = DATA / "run"
VENV_BIN = Path(sys.executable).parent
OPERATOR, PASSWORD = "bench@example.com", "bench-password-" + uuid.uuid4().hex[:8]
COPY_COLUMNS = ["email", "first_name", "last_name", "phone", "company", "city", "country",
                "email_norm", "extra", "upload_id", "source_line"]
DEFAULT_CHUNK = int(DEFAULTS["INGEST_CHUNK_ROWS"])


# ---------------------------------------------------------------- test files

def csv_file(rows, seed, clean=False):
    """(csv path, summary) of a generated file, made once and kept under bench/data/csv/."""
    CSV_DIR.mkdir(parents=True, exist_ok=True)
    path = CSV_DIR / f"contacts-{rows}-seed{seed}.csv"
    clean_path = CSV_DIR / f"contacts-{rows}-seed{seed}.clean.tsv"
    meta = Path(str(path) + ".json")
    if meta.exists():
        summary = json.loads(meta.read_text())
        if path.exists() and summary.get("records") == rows and (not clean or clean_path.exists()):
            return path, summary
    log(f"generating {rows:,} lines into {path.relative_to(ROOT)}")
    command = [sys.executable, str(ROOT / "bench" / "make_csv.py"), str(rows), str(path), "--seed", str(seed)]
    if clean:
        command += ["--clean-out", str(clean_path)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return path, json.loads(meta.read_text())


# ---------------------------------------------------------------- processes

def children_of(pid):
    return [int(name) for name in os.listdir("/proc")
            if name.isdigit() and (read_stat(int(name)) or (None,))[0] == pid]


def machine_busy_share(seconds=1.0):
    """How busy the whole machine was over the next `seconds`, 0 to 1."""
    before = system_busy()
    time.sleep(seconds)
    return (system_busy() - before) / (os.cpu_count() * seconds)


def wait_until_quiet(limit, most=0.15):
    """Wait (up to `limit` s) until other work leaves the machine nearly idle; (waited s, last busy share)."""
    started = time.monotonic()
    while True:
        share = machine_busy_share()
        waited = time.monotonic() - started
        if share <= most or waited >= limit:
            if share > most:
                log(f"the machine is still {share:.0%} busy with other work after {waited:.0f} s; measuring anyway")
            return waited, share
        time.sleep(1)


# ---------------------------------------------------------------- the bench

class Bench:
    def __init__(self, args):
        self.args = args
        self.children = []
        self.results = {"args": vars(args).copy(), "machine": {}, "baseline": None, "ingests": [], "web": None}
        self.commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                     text=True, check=True).stdout.strip()
        self.app = self.snapshot()

    def snapshot(self):
        """A copy of the code to measure, so that edits made in the work tree meanwhile change nothing:
        the committed code (git archive HEAD) or the work tree as it is now."""
        if self.args.app == "head":
            target = DATA / f"app-{self.commit}"
            if not (target / "Procfile").exists():
                target.mkdir(parents=True, exist_ok=True)
                archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT,
                                         capture_output=True, check=True).stdout
                subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        else:
            target = DATA / "app-worktree"
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns(
                ".git", ".venv", "var", "data", "__pycache__", ".pytest_cache", "node_modules"))
        log(f"measuring {'commit ' + self.commit if self.args.app == 'head' else 'the work tree'} "
            f"(a copy in {target.relative_to(ROOT)})")
        return target

    # -- servers and processes

    def start_servers(self):
        if RUN_DIR.exists():
            shutil.rmtree(RUN_DIR)
        RUN_DIR.mkdir(parents=True)
        os.chmod(RUN_DIR, 0o755)
        self.logs = RUN_DIR / "logs"
        self.logs.mkdir()
        self.postgres, self.redis = Postgres(RUN_DIR / "postgres"), Redis(RUN_DIR / "redis")
        log("starting PostgreSQL and Redis under bench/data/run/")
        self.database_url = self.postgres.start()
        self.redis_url = self.redis.start()
        self.postmaster = int((self.postgres.data / "postmaster.pid").read_text().split()[0])
        self.env = dict(os.environ, DATABASE_URL=self.database_url, REDIS_URL=self.redis_url,
                        SECRET_KEY=uuid.uuid4().hex, INTAKE_ENV="production",
                        MAX_UPLOAD_MB=str(self.args.max_upload_mb),
                        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        self.env.pop("INGEST_CHUNK_ROWS", None)
        self.db = psycopg.connect(self.database_url, autocommit=True)

    def stop_all(self):
        for child in reversed(self.children):
            child.stop()
        if getattr(self, "db", None):
            self.db.close()
        if getattr(self, "redis", None):
            self.redis.stop()
        if getattr(self, "postgres", None):
            self.postgres.stop()

    def flask(self, *arguments):
        subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", *arguments], cwd=self.app, env=self.env,
                       check=True, stdout=subprocess.DEVNULL)

    def migrate(self):
        log("applying migrations, creating an operator")
        self.flask("db", "upgrade")
        self.results["db_revision"] = self.db.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        if self.args.records_indexes == "minimal":
            self.drop_list_indexes()
        self.flask("operators", "create", OPERATOR, "--password", PASSWORD)

    def start_web(self):
        command = procfile_command("web", self.app)
        port = free_port()
        env = dict(self.env, PORT=str(port), BIND="127.0.0.1")
        self.web = Child("web", command, env, self.logs / "web.log", self.app)
        self.children.append(self.web)
        self.browser = Client(port)
        wait_for(lambda: self._health() is not None, 60, "the web process")
        self.browser.log_in(OPERATOR, PASSWORD)
        self.results["web_command"] = command
        log(f"web process up on 127.0.0.1:{port} (pid {self.web.pid}): {command}")

    def _health(self):
        try:
            status, _, body = self.browser.request("GET", "/api/health", timeout=5)
        except OSError:
            return None
        return json.loads(body) if status == 200 else None

    def start_worker(self, chunk_rows):
        env = dict(self.env)
        if chunk_rows:
            env["INGEST_CHUNK_ROWS"] = str(chunk_rows)
        argv = [str(VENV_BIN / "rq"), "worker", "--worker-class", "jobs.worker.AppWorker", "--url",
                self.redis_url, "ingest"]
        worker = Child("worker", shlex.join(argv), env, self.logs / f"worker-{chunk_rows}.log", self.app)
        self.children.append(worker)
        wait_for(lambda: (self._health() or {}).get("workers", 0) >= 1, 60, "the RQ worker to register")
        return worker

    def stop_worker(self, worker):
        worker.stop()
        self.children.remove(worker)
        wait_for(lambda: (self._health() or {}).get("workers", 1) == 0, 30, "the RQ worker to deregister")

    # -- database

    KEPT_INDEXES = ("ix_records_upload_id", "ix_records_upload_created")

    def drop_list_indexes(self):
        """Leave records with the indexes ingest itself needs: the primary key, the unique index on
        email_norm (both back constraints) and one index on upload_id (the first migration's, or
        since migration 0004 the records list's ix_records_upload_created)."""
        names = [name for (name,) in self.db.execute(
            "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'records'::regclass AND x.indexrelid NOT IN "
            "(SELECT conindid FROM pg_constraint WHERE conrelid = 'records'::regclass) ORDER BY 1")
            if name not in self.KEPT_INDEXES]
        for name in names:
            self.db.execute(f'DROP INDEX "{name}"')
        self.results["dropped_indexes"] = names
        log(f"dropped {len(names)} indexes of records: {', '.join(names)}")

    def reset(self):
        """Empty records and the stored files: every ingest starts on an empty table, like (a)."""
        self.db.execute(partition.DROP_EVERY_UPLOAD_TABLE)
        self.db.execute("TRUNCATE records, row_errors, upload_pieces")
        self.db.execute("VACUUM ANALYZE uploads")
        self.db.execute("CHECKPOINT")

    def upload_row(self, upload_id):
        row = self.db.execute(
            "SELECT status, lines_read, rows_inserted, duplicates_in_file, duplicates_existing, rows_invalid, "
            "extract(epoch FROM created_at), extract(epoch FROM started_at), extract(epoch FROM finished_at), "
            "failure_reason, size_bytes, extract(epoch FROM indexing_started_at) FROM uploads WHERE id = %s",
            (upload_id,)).fetchone()
        names = ("status", "lines_read", "rows_inserted", "duplicates_in_file", "duplicates_existing",
                 "rows_invalid", "created_at", "started_at", "finished_at", "failure_reason", "size_bytes",
                 "indexing_started_at")
        values = dict(zip(names, row))
        for name in ("created_at", "started_at", "finished_at", "indexing_started_at"):
            values[name] = float(values[name]) if values[name] is not None else None
        return values

    # -- (a)

    BASELINE_TABLES = {
        # The same columns, every index of the records list and the unique index on email_norm.
        "a": "CREATE TABLE copy_baseline (LIKE records_shared INCLUDING ALL); "
             "CREATE UNIQUE INDEX copy_baseline_email_norm ON copy_baseline (email_norm)",
        # The same columns, only the primary key and the unique index on email_norm.
        "a-unique-only": "CREATE TABLE copy_baseline (LIKE records INCLUDING DEFAULTS); "
                         "ALTER TABLE copy_baseline ADD PRIMARY KEY (id); "
                         "CREATE UNIQUE INDEX copy_baseline_email_norm ON copy_baseline (email_norm)",
    }

    def baseline(self, path, summary, clean_path):
        copy = f"\\copy copy_baseline ({', '.join(COPY_COLUMNS)}) FROM '{clean_path}'"
        results = {}
        for variant, create in self.BASELINE_TABLES.items():
            self.db.execute("DROP TABLE IF EXISTS copy_baseline")
            self.db.execute(create)
            indexes = [definition for (definition,) in self.db.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'copy_baseline' ORDER BY indexname")]
            if not any("UNIQUE" in index and "(email_norm)" in index for index in indexes):
                raise RuntimeError(f"copy_baseline has no unique index on email_norm: {indexes}")
            runs = []
            for number in range(self.args.baseline_runs):
                self.db.execute("TRUNCATE copy_baseline")
                self.db.execute("CHECKPOINT")
                wait_until_quiet(self.args.quiet_wait)
                sampler = TreeSampler({"postgres": self.postmaster, "bench": os.getpid()}).start()
                started = time.monotonic()
                subprocess.run([postgres_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                                self.database_url, "-c", copy], check=True)
                seconds = time.monotonic() - started
                sampler.stop()
                count = self.db.execute("SELECT count(*) FROM copy_baseline").fetchone()[0]
                if count != summary["unique"]:
                    raise RuntimeError(f"\\copy stored {count} rows, expected {summary['unique']}")
                runs.append({"seconds": seconds, "rows": count, "rows_per_s": count / seconds,
                             "postgres_cpu_s": sampler.cpu_seconds("postgres"),
                             "psql_cpu_s": sampler.cpu_seconds("bench", children=True),
                             "other_cpu_share": max(0.0, sampler.other_cpu_seconds()
                                                    + sampler.cpu_seconds("bench", depth=0)) / (os.cpu_count() * seconds)})
                log(f"({variant}) \\copy run {number + 1}: {count:,} rows in {seconds:.2f} s = "
                    f"{count / seconds:,.0f} rows/s ({len(indexes)} indexes)")
            self.db.execute("DROP TABLE copy_baseline")
            self.db.execute("CHECKPOINT")
            results[variant] = {"create": create, "indexes": indexes, "runs": runs,
                                "best": max(runs, key=lambda run: run["rows_per_s"])}
        self.results["baseline"] = {"command": copy, "file": str(clean_path.relative_to(ROOT)),
                                    "csv_lines": summary["records"], "variants": results}
        return results["a"]["best"]

    # -- (b), (c), (e)

    def ingest(self, label, path, summary, chunk_rows, profile=None):
        self.reset()
        worker = self.start_worker(chunk_rows)
        quiet_waited, busy_before = wait_until_quiet(self.args.quiet_wait)
        sampler = TreeSampler({"worker": worker.pid, "postgres": self.postmaster, "web": self.web.pid},
                              private=("worker",)).start()
        spy = None
        try:
            log(f"{label}: uploading {path.name} ({path.stat().st_size / MB:,.0f} MB), "
                f"INGEST_CHUNK_ROWS={chunk_rows or DEFAULT_CHUNK}")
            posted_at = time.time()
            upload_id = self.browser.upload(path)
            answered_at = time.time()
            sampler.mark("posted")
            web_peak_mb = sampler.peak_mb("web", children=True)
            row = wait_for(lambda: self._started(upload_id), 120, "the job to start", interval=0.05)
            sampler.mark("started")
            if profile:
                spy = self._attach_profiler(profile, worker, label)
            timeout = 300 + summary["records"] / 2000
            row = wait_for(lambda: self._finished(upload_id), timeout, f"upload {upload_id} to finish",
                           interval=0.25)
        finally:
            sampler.stop()
            self.stop_worker(worker)
            if spy:
                spy.wait(60)
        result = self._ingest_result(label, path, summary, chunk_rows, upload_id, row, posted_at, answered_at,
                                     sampler, web_peak_mb)
        result.update(quiet_waited_s=quiet_waited, machine_busy_before=busy_before)
        if spy:
            result["profile"] = str(spy.args[spy.args.index("--output") + 1])
        self.results["ingests"].append(result)
        log(f"{label}: {result['status']}, {result['lines_read']:,} lines, POST {result['post_s']:.1f} s, "
            f"job {result['job_s']:.1f} s, total {result['total_s']:.1f} s = {result['lines_per_s']:,.0f} lines/s "
            f"(job alone {result['job_lines_per_s']:,.0f}); horse peak {result['horse_peak_mb']:.0f} MB "
            f"(private {result['horse_private_peak_mb']:.0f} MB), "
            f"worker parent {result['worker_peak_mb']:.0f} MB; counters {result['check']}")
        return result

    def _started(self, upload_id):
        row = self.upload_row(upload_id)
        return row if row["started_at"] or row["status"] != "queued" else None

    def _finished(self, upload_id):
        row = self.upload_row(upload_id)
        return row if row["status"] in ("completed", "failed", "cancelled") else None

    def _attach_profiler(self, py_spy, worker, label):
        horses = wait_for(lambda: children_of(worker.pid), 10, "the work horse", interval=0.02)
        output = DATA / f"profile-{label}.txt"
        argv = [py_spy, "record", "--pid", str(horses[0]), "--rate", "100", "--threads", "--idle",
                "--nonblocking", "--format", "raw", "--output", str(output)]
        log(f"py-spy attached to the work horse {horses[0]}: {output.relative_to(ROOT)}")
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(self.logs / "py-spy.log", "ab"))

    def _ingest_result(self, label, path, summary, chunk_rows, upload_id, row, posted_at, answered_at, sampler,
                       web_peak_mb):
        total = row["finished_at"] - posted_at
        job = row["finished_at"] - row["started_at"]
        expected = {"lines_read": summary["records"], "rows_inserted": summary["unique"],
                    "duplicates_in_file": summary["duplicates"], "duplicates_existing": 0,
                    "rows_invalid": summary["invalid"]}
        wrong = {name: (row[name], value) for name, value in expected.items() if row[name] != value}
        return {
            "label": label, "file": path.name, "file_mb": path.stat().st_size / MB,
            "chunk_rows": chunk_rows or DEFAULT_CHUNK, "upload_id": upload_id, "status": row["status"],
            "failure_reason": row["failure_reason"],
            **{name: row[name] for name in expected},
            "post_s": answered_at - posted_at, "queue_s": row["started_at"] - answered_at, "job_s": job,
            # From the last line stored to the partition attached; 0 for an upload that loads into records_shared.
            "index_build_s": row["finished_at"] - (row["indexing_started_at"] or row["finished_at"]),
            "total_s": total, "lines_per_s": row["lines_read"] / total, "job_lines_per_s": row["lines_read"] / job,
            "rows_per_s": row["rows_inserted"] / total,
            "horse_peak_mb": sampler.peak_mb("worker", children=True),
            "horse_private_peak_mb": sampler.peak_private_mb("worker", children=True),
            "worker_peak_mb": sampler.peak_mb("worker", depth=0),
            "horse_cpu_s": sampler.cpu_seconds("worker", children=True, since="started"),
            "postgres_cpu_job_s": sampler.cpu_seconds("postgres", since="started"),
            "postgres_cpu_post_s": sampler.cpu_seconds("postgres") - sampler.cpu_seconds("postgres", since="posted"),
            "web_peak_mb": web_peak_mb, "web_cpu_post_s": sampler.cpu_seconds("web") - sampler.cpu_seconds(
                "web", since="posted"),
            "other_cpu_job_s": sampler.other_cpu_seconds(since="started"),
            "other_cpu_share": sampler.other_cpu_seconds(since="started") / (os.cpu_count() * job),
            "loadavg_at_end": os.getloadavg()[0],
            "check": "ok" if not wrong and row["status"] == "completed" else f"MISMATCH {wrong}",
            "processes": sampler.report(),
        }

    # -- (d)

    def web_memory(self, path):
        """Peak RSS of the web processes while one of them receives and stores `path` (no worker runs)."""
        self.reset()
        wait_until_quiet(self.args.quiet_wait)
        sampler = TreeSampler({"web": self.web.pid, "postgres": self.postmaster}, private=("web",)).start()
        time.sleep(0.5)
        before = {seen.pid: seen.rss_last / MB for seen in sampler.processes("web")}
        log(f"(d) uploading {path.name} ({path.stat().st_size / MB:,.0f} MB) with no worker running")
        started = time.monotonic()
        error = None
        try:
            upload_id = self.browser.upload(path)
        except (RuntimeError, OSError) as failure:
            upload_id, error = None, str(failure)
        seconds = time.monotonic() - started
        time.sleep(1)
        sampler.stop()
        stored = None
        if upload_id:
            stored = self.db.execute("SELECT size_bytes FROM uploads WHERE id = %s", (upload_id,)).fetchone()[0]
        processes = [{"pid": seen.pid, "role": "master" if seen.depth == 0 else "worker",
                      "before_mb": before.get(seen.pid, 0), "peak_mb": seen.rss_max / MB,
                      "private_peak_mb": seen.private_max / MB,
                      "after_mb": seen.rss_last / MB, "cpu_s": seen.cpu}
                     for seen in sampler.processes("web")]
        timeouts = (self.logs / "web.log").read_text(errors="replace").count("WORKER TIMEOUT")
        self.results["web"] = {"file": path.name, "file_mb": path.stat().st_size / MB, "post_s": seconds,
                               "mb_per_s": path.stat().st_size / MB / seconds, "stored_bytes": stored,
                               "error": error, "processes": processes, "worker_timeouts_in_log": timeouts,
                               "postgres_cpu_s": sampler.cpu_seconds("postgres")}
        log(f"(d) {seconds:.1f} s; " + "; ".join(
            f"{p['role']} {p['pid']}: {p['before_mb']:.0f} → peak {p['peak_mb']:.0f} MB" for p in processes))

    # -- the whole run

    def machine(self):
        memory = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "?")
        versions = {
            "postgres": self.db.execute("SHOW server_version").fetchone()[0],
            "redis": subprocess.run([shutil.which("redis-server") or "redis-server", "--version"],
                                    capture_output=True, text=True).stdout.split()[2].removeprefix("v="),
            "python": platform.python_version(),
        }
        settings = dict(self.db.execute(
            "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN ('shared_buffers', "
            "'max_wal_size', 'synchronous_commit', 'fsync', 'wal_level', 'checkpoint_timeout', "
            "'maintenance_work_mem', 'work_mem')").fetchall())
        commit = self.commit
        dirty = []
        if self.args.app == "worktree":
            dirty = subprocess.run(["git", "status", "--porcelain", "--", "webapp", "jobs", "migrations", "Procfile"],
                                   cwd=ROOT, capture_output=True, text=True).stdout.split("\n")
        self.results["machine"] = {"nproc": os.cpu_count(), "cpu": cpu, "memory": memory.split(":")[1].strip(),
                                   "kernel": platform.release(), **versions, "postgres_settings": settings,
                                   "commit": commit, "uncommitted_app_files": [line for line in dirty if line]}

    def run(self):
        args = self.args
        small, small_summary = csv_file(args.rows, args.seed, clean=True)
        clean = CSV_DIR / f"contacts-{args.rows}-seed{args.seed}.clean.tsv"
        large = None
        if not args.skip_5m:
            large, large_summary = csv_file(args.large_rows, args.seed)
        sweep = None
        if args.chunks and not args.skip_sweep:
            sweep, sweep_summary = csv_file(args.sweep_rows or args.rows, args.seed)
        web_file = None
        if not args.skip_web:
            web_file = self._web_file(large)
        self.start_servers()
        try:
            self.machine()
            self.migrate()
            self.baseline(small, small_summary, clean)
            self.start_web()
            for number in range(1, args.repeat + 1):
                self.ingest("b" if number == 1 else f"b{number}", small, small_summary, None)
            if large:
                self.ingest("c-large", large, large_summary, None)
            if sweep:
                for chunk_rows in args.chunks:
                    self.ingest(f"e-{chunk_rows}", sweep, sweep_summary, chunk_rows)
            if args.profile:
                self.ingest("profile", small, small_summary, None, profile=args.profile)
            if web_file:
                self.web_memory(web_file)
        finally:
            self.stop_all()
        out = DATA / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(self.results, indent=2, default=str))
        print(self.table())
        for ingest in self.results["ingests"]:
            if ingest.get("profile"):
                print(summarize_profile(Path(ingest["profile"])))
        print(f"\nfull results: {out.relative_to(ROOT)}")

    def _web_file(self, large):
        if large and large.stat().st_size >= self.args.web_mb * MB:
            return large
        small_summary = json.loads(Path(str(CSV_DIR / f"contacts-{self.args.rows}-seed{self.args.seed}.csv")
                                        + ".json").read_text())
        per_line = small_summary["bytes"] / small_summary["records"]
        rows = int(self.args.web_mb * MB / per_line * 1.01) // 100000 * 100000 + 100000
        return csv_file(rows, self.args.seed)[0]

    def table(self):
        r = self.results
        m = r["machine"]
        base = r["baseline"]
        lines = ["", f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, PostgreSQL {m['postgres']}, "
                     f"Redis {m['redis']}, Python {m['python']}, "
                     f"{'commit' if r['args']['app'] == 'head' else 'work tree at'} {m['commit']}"
                     + (" + uncommitted changes in " + ", ".join(line[3:] for line in m["uncommitted_app_files"])
                        if m["uncommitted_app_files"] else ""), ""]
        variants = base["variants"]
        best = variants["a"]["best"]["rows_per_s"]
        unique_only = variants["a-unique-only"]["best"]["rows_per_s"]
        dropped = f" less the {len(r['dropped_indexes'])} list indexes" if r.get("dropped_indexes") else ""
        lines.append(f"database at migration {r.get('db_revision')}{dropped}; \\copy of {variants['a']['best']['rows']:,} "
                     f"clean rows (from {base['csv_lines']:,} lines):")
        for variant, about in (("a", "LIKE records INCLUDING ALL"), ("a-unique-only", "primary key + unique email_norm")):
            for number, run in enumerate(variants[variant]["runs"], 1):
                lines.append(f"    ({variant}) {about}, {len(variants[variant]['indexes'])} indexes, run {number}: "
                             f"{run['seconds']:.2f} s = {run['rows_per_s']:,.0f} rows/s "
                             f"(PostgreSQL CPU {run['postgres_cpu_s']:.1f} s, psql {run['psql_cpu_s']:.1f} s, "
                             f"other processes {run['other_cpu_share']:.0%} of the machine)")
        lines += ["", "| run | file | chunk | lines | POST s | queue s | job s | index build s | total s | lines/s "
                      "| ratio to (a) "
                      "| ratio to (a-unique-only) | job-only lines/s | horse peak RSS MB (private) | rq parent peak MB "
                      "| horse CPU s | PostgreSQL CPU s (job) | other processes' CPU (job) | web peak MB (POST) | counters |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for i in r["ingests"]:
            lines.append(
                f"| {i['label']} | {i['file_mb']:.0f} MB | {i['chunk_rows']:,} | {i['lines_read']:,} | {i['post_s']:.1f} "
                f"| {i['queue_s']:.1f} | {i['job_s']:.1f} | {i.get('index_build_s', 0):.1f} | {i['total_s']:.1f} "
                f"| {i['lines_per_s']:,.0f} "
                f"| {i['lines_per_s'] / best:.2f} | {i['lines_per_s'] / unique_only:.2f} | {i['job_lines_per_s']:,.0f} "
                f"| {i['horse_peak_mb']:.0f} ({i['horse_private_peak_mb']:.0f}) "
                f"| {i['worker_peak_mb']:.0f} | {i['horse_cpu_s']:.1f} | {i['postgres_cpu_job_s']:.1f} "
                f"| {i['other_cpu_share']:.0%} | {i['web_peak_mb']:.0f} | {i['check'] if i['status'] == 'completed' else i['status']} |")
        web = r.get("web")
        if web:
            lines += ["", f"(d) web process receiving {web['file']} ({web['file_mb']:.0f} MB): POST {web['post_s']:.1f} s "
                          f"= {web['mb_per_s']:.1f} MB/s, stored {web['stored_bytes'] or 0:,} bytes"
                          + (f", ERROR {web['error']}" if web["error"] else "")
                          + f", WORKER TIMEOUT lines in the log: {web['worker_timeouts_in_log']}"]
            for process in web["processes"]:
                lines.append(f"    {process['role']} {process['pid']}: before {process['before_mb']:.0f} MB, "
                             f"peak {process['peak_mb']:.0f} MB (private {process['private_peak_mb']:.0f} MB), "
                             f"after {process['after_mb']:.0f} MB, "
                             f"CPU {process['cpu_s']:.1f} s")
        return "\n".join(lines)


# ---------------------------------------------------------------- profile summary

# Inclusive buckets, first match wins, looked for from the leaf up.
PROFILE_BUCKETS = [
    ("wait: queue (parser waits for the writer / writer waits for the parser)", ("get (queue.py", "put (queue.py",
                                                                                 "hand_over (jobs/ingest.py")),
    ("DB: SELECT … = ANY (existing emails)", ("_existing (jobs/chunk_writer.py",)),
    ("DB: COPY records", ("_copy (jobs/chunk_writer.py",)),
    ("DB: COPY row_errors", ("_write_errors (jobs/chunk_writer.py",)),
    ("DB: counters + commit", ("save_progress (jobs/ingest.py", "transaction (psycopg", "__exit__ (psycopg")),
    ("DB: read upload_pieces", ("_fetch_next_piece (jobs/source.py",)),
    ("read: bytes → text (TextIOWrapper, UTF-8)", ("readinto (jobs/source.py", "decode (")),
    ("read: LineTap", ("__next__ (jobs/rows.py", "drain (jobs/rows.py")),
    ("validate: record_problems", ("record_problems (webapp/validation.py",)),
    ("build COPY line (copy_line, json.dumps)", ("copy_line (jobs/rows.py",)),
    ("normalize_email", ("normalize_email (webapp/validation.py",)),
    ("dedupe + Row objects (_take)", ("_take (jobs/rows.py",)),
    ("csv.reader (C) + _next_record", ("_next_record (jobs/rows.py",)),
    ("fill loop", ("fill (jobs/rows.py",)),
]


def summarize_profile(path):
    """Where each thread of the work horse spent its samples (py-spy raw format)."""
    if not path.exists():
        return f"\nno profile at {path}"
    threads = defaultdict(Counter)
    leaves = defaultdict(Counter)
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        thread = frames[0]
        role = ("parser" if any("_parse (jobs/ingest.py" in f for f in frames)
                else "writer" if any("store_chunk_by_chunk" in f or "ingest_upload" in f for f in frames)
                else "other")
        label = "other"
        for name, needles in PROFILE_BUCKETS:
            if any(needle in frame for frame in frames for needle in needles):
                label = name
                break
        threads[(role, thread)][label] += int(count)
        leaves[role][re.sub(r":\d+\)$", ")", frames[-1])] += int(count)
    out = [f"\nprofile {path.relative_to(ROOT)} (100 samples/s, idle included):"]
    for (role, thread), buckets in sorted(threads.items()):
        total = sum(buckets.values())
        if total < 50:
            continue
        out.append(f"  {role} thread {thread}: {total / 100:.1f} s sampled")
        for label, count in buckets.most_common():
            out.append(f"    {count / total:6.1%}  {label}")
    for role, counter in leaves.items():
        total = sum(counter.values())
        if total < 50:
            continue
        out.append(f"  {role}: top frames (self)")
        for frame, count in counter.most_common(12):
            out.append(f"    {count / total:6.1%}  {frame[:110]}")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description="CSV ingest benchmark (see bench/README.md).")
    parser.add_argument("--rows", type=int, default=1_000_000, help="lines for (a), (b) and (c)")
    parser.add_argument("--large-rows", type=int, default=5_000_000, help="the second size for (c)")
    parser.add_argument("--skip-5m", action="store_true", help="leave out the --large-rows ingest")
    parser.add_argument("--chunks", type=lambda text: [int(x) for x in text.split(",") if x],
                        default=[5000, 10000, 20000, 50000], help="INGEST_CHUNK_ROWS values for (e)")
    parser.add_argument("--sweep-rows", type=int, help="lines for (e) (default: --rows)")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--skip-web", action="store_true", help="leave out (d)")
    parser.add_argument("--web-mb", type=int, default=500, help="file size for (d)")
    parser.add_argument("--max-upload-mb", type=int, default=4096, help="MAX_UPLOAD_MB of the web process")
    parser.add_argument("--baseline-runs", type=int, default=2)
    parser.add_argument("--records-indexes", choices=("all", "minimal"), default="all",
                        help="minimal: drop the indexes of records that only the records list needs (migration "
                             "0002 on), keeping the primary key, the unique email_norm and upload_id")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--app", choices=("head", "worktree"), default="head",
                        help="measure the committed code (a copy of HEAD, default) or a copy of the work tree "
                             "as it is when the run starts")
    parser.add_argument("--repeat", type=int, default=1, help="how many times to run (b)")
    parser.add_argument("--quiet-wait", type=float, default=60,
                        help="before each measurement wait up to this many seconds for other work to stop")
    parser.add_argument("--profile", metavar="PY_SPY", help="path of a py-spy binary: one more profiled ingest")
    args = parser.parse_args()
    if args.profile and not Path(args.profile).exists():
        parser.error(f"no py-spy at {args.profile}")
    Bench(args).run()


if __name__ == "__main__":
    main()
