"""Faults during a long ingest, with real processes: workers killed with -9,
Redis and PostgreSQL restarted under a running job. No line is lost, none is
stored twice, and the upload ends completed with the counters of a clean run.

bench/fault_soak.py runs the same scenario several times over a bigger file.
"""
import os
import random
import re
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from redis import Redis, RedisError

from tests.conftest import scheduler_process, wait_until, worker_process
from tests.ingest_helpers import upload_file
from webapp.extensions import db

SEED = int(os.environ.get("FAULT_SEED", "20261124"))
ROWS = 300_000
SETTINGS = {"INGEST_CHUNK_ROWS": "2000", "REAPER_SECONDS": "4", "INGEST_RETRIES": "10"}
FINAL = ("completed", "failed", "cancelled")
LOCK_SPACE = 1      # jobs.ingest.LOCK_SPACE; not imported, so the test does not load the jobs package


@dataclass
class Sample:
    """A generated CSV file and what a clean ingest of it must leave behind."""
    content: bytes
    stored: dict            # email_norm -> the line of its first, stored occurrence
    errors: dict            # line -> (column, reason), or for a duplicate ("email", earlier lines with that email)
    lines: int = 0
    invalid: int = 0
    duplicates: int = 0

    @property
    def counters(self):
        """(lines_read, rows_inserted, rows_updated, duplicates_in_file, duplicates_existing, rows_invalid)"""
        return (self.lines, len(self.stored), 0, self.duplicates, 0, self.invalid)


def sample_csv(rows, seed=SEED):
    """`rows` data lines: ~2 % invalid (three kinds), ~3 % repeat an earlier address in other
    letter case, the rest new addresses. Line 1 is the header; data line n is file line n + 2."""
    rng = random.Random(seed)
    out = ["email,first_name,city"]
    stored, errors, firsts, seen = {}, {}, [], {}
    invalid = duplicates = 0
    for number in range(rows):
        line = number + 2
        roll = rng.random()
        if roll < 0.02:
            invalid += 1
            kind = rng.randrange(3)
            if kind == 0:
                out.append(f"not-an-email-{number},Bad,Nowhere")
                errors[line] = ("email", f"'not-an-email-{number}' is not a valid email address")
            elif kind == 1:
                out.append(",Nobody,Nowhere")
                errors[line] = ("email", "email is missing")
            else:
                out.append(f"c{number}@example.com,Ctrl\x01Char,Nowhere")
                errors[line] = ("first_name", "contains a control character (such as NUL)")
        elif roll < 0.05 and firsts:
            duplicates += 1
            email = rng.choice(firsts)
            variant = rng.choice((email.upper(), email.replace("@example.com", "@EXAMPLE.COM"),
                                  email[0].upper() + email[1:]))
            out.append(f"{variant},Again,Twice")
            errors[line] = ("email", tuple(seen[email]))
            seen[email].append(line)
        else:
            email = f"p{number}@example.com"
            out.append(f'{email},"Name, {number}",City {number % 97}')
            stored[email] = line
            seen[email] = [line]
            firsts.append(email)
    content = ("\n".join(out) + "\n").encode()
    return Sample(content, stored, errors, lines=rows, invalid=invalid, duplicates=duplicates)


# -- looking at the database and processes without trusting any one connection ---------------------------

def query(database_url, sql, args=()):
    """One row from a fresh connection, or None while PostgreSQL is unreachable."""
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=3) as connection:
            return connection.execute(sql, args).fetchone()
    except psycopg.OperationalError:
        return None


def upload_state(database_url, upload_id):
    """(status, checkpoint_records, failure_reason, seconds since the heartbeat) or None."""
    return query(database_url, "SELECT status, checkpoint_records, failure_reason, "
                 "extract(epoch FROM now() - coalesce(heartbeat_at, created_at))::float "
                 "FROM uploads WHERE id = %s", (upload_id,))


LOCK_HOLDER = ("SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
               "WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objid = %s AND l.granted")


def lock_holder_pid(database_url, upload_id):
    """The OS pid of the process whose PostgreSQL session holds the upload's advisory lock."""
    row = query(database_url, LOCK_HOLDER, (LOCK_SPACE, upload_id))
    return row and process_with_local_port(row[0])


def lock_free(database_url, upload_id):
    """No session holds the upload's lock: a killed holder's session has ended, with whatever
    commit it had sent before it died."""
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=3) as connection:
            return connection.execute(LOCK_HOLDER, (LOCK_SPACE, upload_id)).fetchone() is None
    except psycopg.OperationalError:
        return False


def process_with_local_port(port):
    """The pid owning the TCP socket bound to 127.0.0.1:port, from /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


class Fleet:
    """RQ workers and the scheduler, kept running as a process manager would (systemd's
    Restart=always): a process that exits on its own is counted and started again."""

    def __init__(self, start, workers=2):
        self.start = self._remembered(start)
        self.started = []
        self.workers = [self.start(worker_process) for _ in range(workers)]
        self.scheduler = self.start(scheduler_process)
        self.exits = Counter()       # processes that exited on their own: "worker" / "scheduler"
        self.killed = 0

    def _remembered(self, start):
        def start_and_remember(factory):
            process = start(factory)
            self.started.append(process)
            return process
        return start_and_remember

    def stop(self):
        """Stop every process started, work horses included: they have process groups of their own
        and outlive a worker that exited. Forks keep the worker's command line, with its Redis URL."""
        for process in self.started:
            process.stop()
        marker = f"--url\0{os.environ['REDIS_URL']}\0".encode()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"rq.cli\0worker" in command and marker in command:
                kill_quietly(int(pid))

    def watch(self):
        for index, worker in enumerate(self.workers):
            if worker.process.poll() is not None:
                self.exits["worker"] += 1
                self.workers[index] = self.start(worker_process)
        if self.scheduler.process.poll() is not None:
            self.exits["scheduler"] += 1
            self.scheduler = self.start(scheduler_process)

    def kill_worker_running(self, horse, replace=True):
        """kill -9 the worker whose work horse is `horse`: its process group (the worker and its
        scheduler) and the horse, which RQ puts in a process group of its own (os.setpgrp).
        Then start a new worker, unless `replace` is false."""
        parent = parent_pid(horse)
        for index, worker in enumerate(self.workers):
            if worker.process.pid == parent:
                os.killpg(parent, signal.SIGKILL)
                kill_quietly(horse)
                worker.kill()           # reaps it
                self.killed += 1
                if replace:
                    self.workers[index] = self.start(worker_process)
                else:
                    del self.workers[index]
                return
        # A work horse whose worker already exited (and was replaced) runs on alone.
        kill_quietly(horse)
        self.killed += 1


def parent_pid(pid):
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid):
    """Running: not gone, not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def kill_quietly(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass
class FaultRun:
    """One upload of `sample` through the form with `faults` applied at seeded checkpoints."""
    client: object
    postgres: object
    redis: object
    fleet: Fleet
    sample: Sample
    faults: list                     # [(checkpoint, "kill" | "redis" | "redis_crash" | "postgres")]
    upload_id: int = 0
    # [(fault, checkpoint, seconds the action took, seconds until the next chunk was committed)]
    applied: list = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    last_checkpoint: int = 0
    last_status: str = ""
    seconds: float = 0.0

    @property
    def database_url(self):
        return self.postgres.url

    def poll(self):
        self.fleet.watch()
        state = upload_state(self.database_url, self.upload_id)
        if state:
            status, checkpoint, _, _ = state
            self.statuses[status] += 1
            self.last_status = status
            assert checkpoint >= self.last_checkpoint, f"checkpoint went back from {self.last_checkpoint}"
            self.last_checkpoint = checkpoint
        return state

    def describe(self):
        return (f"upload {self.upload_id}: {upload_state(self.database_url, self.upload_id)}, "
                f"faults applied {self.applied}, exits {dict(self.fleet.exits)}, RQ job {rq_job_state(self)}")

    def run(self, finish_timeout=180):
        started = time.monotonic()
        self.upload_id = upload_file(self.client, "faults.csv", self.sample.content)
        for threshold, fault in self.faults:
            wait_until(lambda: (self.poll() or (None, -1))[1] >= threshold, 90,
                       message=lambda: f"checkpoint {threshold} before {fault}; {self.describe()}")
            at, began = self.last_checkpoint, time.monotonic()
            getattr(self, f"apply_{fault}")()
            acted = time.monotonic()
            # The next fault waits until the job went on: a chunk committed after this one.
            self.poll()
            after = self.last_checkpoint
            wait_until(lambda: (self.poll() or (None, -1))[1] > after or self.last_status in FINAL, 90,
                       message=lambda: f"progress after {fault}; {self.describe()}")
            self.applied.append((fault, at, round(acted - began, 1), round(time.monotonic() - acted, 1)))
        wait_until(lambda: (self.poll() or ("",))[0] in FINAL, finish_timeout,
                   message=lambda: f"the upload to finish; {self.describe()}")
        self.seconds = time.monotonic() - started
        return self

    def apply_kill(self):
        holder = wait_until(lambda: lock_holder_pid(self.database_url, self.upload_id), 30,
                            message=lambda: f"a process holding the upload's lock; {self.describe()}",
                            on_poll=self.fleet.watch)
        self.fleet.kill_worker_running(holder)
        wait_until(lambda: lock_free(self.database_url, self.upload_id), 30,
                   message=lambda: f"the killed session to end; {self.describe()}")

    def apply_redis(self):
        self.redis.restart()

    def apply_redis_crash(self):
        """kill -9 Redis and start it again: with appendfsync everysec up to a second of writes is lost."""
        pid = int(self.redis.pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not alive(pid), 30, message="Redis to die")
        self.redis.start(self.redis.port)

    def apply_postgres(self):
        self.postgres.restart()
        db.session.remove()   # the test's own pooled connections died with the server


def rq_job_state(run):
    try:
        job = Redis.from_url(run.redis.url).hmget(f"rq:job:ingest-{run.upload_id}", "status", "retries_left")
    except RedisError as error:
        return f"unreadable ({error})"
    return [value and value.decode() for value in job]


def fault_plan(rows, kills=5, seed=SEED, redis="redis"):
    """Kills and one restart of each server at seeded checkpoints between 5 % and 85 % of the
    file, one in each equal slot, at least 30 % of a slot apart. `redis` is "redis" (a clean
    restart) or "redis_crash" (kill -9)."""
    rng = random.Random(seed)
    kinds = ["kill"] * kills + [redis, "postgres"]
    rng.shuffle(kinds)
    low, width = rows * 0.05, rows * 0.80 / len(kinds)
    return [(int(low + width * (slot + rng.uniform(0.15, 0.85))), kind) for slot, kind in enumerate(kinds)]


def stored_outcome(database_url, upload_id):
    """What the ingest left: counters, records (email_norm, line) and row errors (line, column, reason)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        counters = connection.execute(
            "SELECT status, failure_reason, lines_read, rows_inserted, rows_updated, duplicates_in_file, "
            "duplicates_existing, rows_invalid, checkpoint_records FROM uploads WHERE id = %s",
            (upload_id,)).fetchone()
        records = connection.execute("SELECT email_norm, source_line FROM records").fetchall()
        errors = connection.execute("SELECT line, column_name, reason FROM row_errors WHERE upload_id = %s",
                                    (upload_id,)).fetchall()
    return counters, records, errors


def measure_outcome(sample, database_url, upload_id):
    """Rows lost and doubled, row errors doubled, and how the rest compares with a clean run."""
    counters, records, errors = stored_outcome(database_url, upload_id)
    status, reason, *numbers, checkpoint = counters
    stored = Counter(email for email, _ in records)
    error_lines = Counter(line for line, _, _ in errors)
    return {
        "status": status, "failure_reason": reason,
        "lost": len(set(sample.stored) - set(stored)),
        "doubled": sum(count - 1 for count in stored.values()),
        "unexpected": len(set(stored) - set(sample.stored)),
        "errors_doubled": sum(count - 1 for count in error_lines.values()),
        "counters": tuple(numbers), "clean_counters": sample.counters, "checkpoint": checkpoint,
        "records": records, "errors": errors,
    }


def check_outcome(sample, database_url, upload_id):
    """Assert the outcome of a clean run; returns measure_outcome()'s figures."""
    outcome = measure_outcome(sample, database_url, upload_id)
    assert outcome["status"] == "completed", outcome["failure_reason"]
    assert (outcome["lost"], outcome["doubled"], outcome["unexpected"], outcome["errors_doubled"]) == (0, 0, 0, 0)
    assert dict(outcome["records"]) == sample.stored    # every valid line, from its own line, once
    assert outcome["counters"] == sample.counters       # the counters of a clean run
    assert outcome["checkpoint"] == sample.lines
    errors = outcome["errors"]
    assert {line for line, _, _ in errors} == set(sample.errors)
    for line, column, reason in errors:
        expected_column, expected = sample.errors[line]
        assert column == expected_column, (line, column, reason)
        if isinstance(expected, tuple):
            # "duplicate of line N in this file": N is the stored line, or an earlier duplicate of
            # it in the same chunk (the one the chunk kept before the look-up found the stored one).
            match = re.fullmatch(r"duplicate of line (\d+) in this file", reason)
            assert match and int(match[1]) in expected, (line, reason, expected)
        else:
            assert reason == expected, (line, reason)
    return outcome


@pytest.fixture(autouse=True)
def fault_settings(monkeypatch):
    """Small chunks, a quick reaper and room for retries, set before the app and processes start."""
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def fleet(start_process):
    """fleet(workers) starts workers and the scheduler; all stopped after the test, horses too."""
    fleets = []

    def make(workers=2):
        fleets.append(Fleet(start_process, workers))
        return fleets[-1]
    yield make
    for made in fleets:
        made.stop()


def test_sample_counts_add_up():
    sample = sample_csv(2_000)
    assert sample.lines == len(sample.stored) + sample.invalid + sample.duplicates
    assert len(sample.errors) == sample.invalid + sample.duplicates > 0
    assert sample.content.count(b"\n") == 2_001


def test_kills_and_server_restarts_lose_and_double_nothing(servers, client, fleet):
    postgres, redis = servers
    run = FaultRun(client, postgres, redis, fleet(), sample_csv(ROWS), fault_plan(ROWS)).run()
    print(f"\nfaults (kind, checkpoint, seconds to act, seconds until the next chunk): {run.applied}; "
          f"processes that exited on their own: {dict(run.fleet.exits)}; statuses seen: {dict(run.statuses)}; "
          f"{run.seconds:.1f} s")
    check_outcome(run.sample, postgres.url, run.upload_id)
    assert run.fleet.killed == 5
    assert [kind for kind, *_ in run.applied].count("kill") == 5


def test_a_job_whose_worker_vanished_is_resumed_once_a_worker_exists(servers, client, fleet):
    postgres, redis = servers
    reaper_seconds = int(SETTINGS["REAPER_SECONDS"])
    sample = sample_csv(60_000, seed=SEED + 1)
    fleet = fleet(workers=1)
    upload_id = upload_file(client, "vanished.csv", sample.content)
    wait_until(lambda: (upload_state(postgres.url, upload_id) or (0, -1))[1] >= 10_000, 60,
               message=lambda: f"checkpoint 10000: {upload_state(postgres.url, upload_id)}")
    holder = wait_until(lambda: lock_holder_pid(postgres.url, upload_id), 30, message="the lock holder")
    fleet.kill_worker_running(holder, replace=False)          # no worker at all now; RQ saw nothing
    wait_until(lambda: lock_free(postgres.url, upload_id), 30, message="the killed session to end")
    status, checkpoint, _, _ = upload_state(postgres.url, upload_id)
    assert status == "running"
    # With no worker, nothing can move: the upload stays running, stale past the reaper's limit.
    wait_until(lambda: upload_state(postgres.url, upload_id)[3] > reaper_seconds + 1, 30,
               message=lambda: f"a stale heartbeat: {upload_state(postgres.url, upload_id)}")
    assert upload_state(postgres.url, upload_id)[:2] == ("running", checkpoint)

    started = time.monotonic()
    fleet.workers.append(fleet.start(worker_process))
    wait_until(lambda: upload_state(postgres.url, upload_id)[1] > checkpoint, 60,
               message=lambda: f"the upload to resume: {upload_state(postgres.url, upload_id)}")
    resumed_after = time.monotonic() - started
    print(f"\nresumed {resumed_after:.1f} s after a worker started (checkpoint {checkpoint})")
    # Worker start-up (~2 s), one reaper period (REAPER_SECONDS / 2), one chunk: generously bounded.
    assert resumed_after < 3 * reaper_seconds + 15
    wait_until(lambda: upload_state(postgres.url, upload_id)[0] == "completed", 120,
               message=lambda: f"the upload to complete: {upload_state(postgres.url, upload_id)}")
    check_outcome(sample, postgres.url, upload_id)
