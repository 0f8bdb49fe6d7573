"""Fault soak: the scenario of tests/test_faults.py, several times over a bigger file.

    .venv/bin/python bench/fault_soak.py                          # 3 runs of 1,000,000 lines
    .venv/bin/python bench/fault_soak.py --runs 3 --rows 300000   # the test's size
    .venv/bin/python bench/fault_soak.py --redis-crash            # Redis killed with -9, not restarted

It starts its own PostgreSQL and Redis (scripts/services.py, 127.0.0.1 only) in a
temporary directory, applies the migrations and creates an operator. Then, with
the test's settings (INGEST_CHUNK_ROWS=2000, REAPER_SECONDS=4, INGEST_RETRIES=10),
2 RQ workers and the scheduler:

  * one clean run: the file uploaded through the form, no faults;
  * --runs fault runs: the same file (another seed for the fault moments each
    run), with 5 workers killed with -9 (worker, its scheduler and its work
    horse), one Redis restart and one PostgreSQL restart, each at a seeded
    checkpoint. A process that exits on its own is started again, as a process
    manager would, and counted.

Per run it prints the faults applied, the processes that exited on their own,
rows lost and doubled (must be 0), row errors doubled (must be 0), whether the
counters equal the clean run's, the time taken and the extra time over the
clean run. Every process it starts is stopped at the end, pass or fail. The
exit status is 1 when any run lost, doubled or miscounted anything.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from jobs import partition  # noqa: E402
from scripts.services import Postgres, Redis, postgres_bin  # noqa: E402

SECRET = "fault-soak-secret"


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def machine():
    memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    postgres = subprocess.run([postgres_bin("postgres"), "--version"], capture_output=True, text=True).stdout
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    return (f"{os.cpu_count()} CPUs, {int(memory) // 1024 // 1024} GiB RAM, Python {platform.python_version()}, "
            f"{postgres.strip()}, Redis {redis.removeprefix('v=')}, psycopg {psycopg.__version__}")


class Processes:
    """start(factory) as the tests' start_process fixture does; logs under `directory`."""

    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    def __call__(self, factory):
        self.count += 1
        return factory(self.directory / f"{factory.__name__}-{self.count}.log").start()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=None, help="seed of the file and of the first run's faults")
    parser.add_argument("--redis-crash", action="store_true",
                        help="kill -9 Redis instead of restarting it cleanly (loses up to 1 s of writes)")
    parser.add_argument("--keep", action="store_true", help="keep the servers' directory and the logs")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="intake-soak-"))
    os.chmod(base, 0o755)
    postgres, redis = Postgres(base / "postgres"), Redis(base / "redis")
    try:
        postgres.start()
        redis.start()
        from tests.test_faults import SETTINGS
        os.environ.update(DATABASE_URL=postgres.url, REDIS_URL=redis.url, INTAKE_ENV="test",
                          SECRET_KEY=SECRET, **SETTINGS)
        return soak(args, postgres, redis, base)
    finally:
        redis.stop()
        postgres.stop(mode="immediate")
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def soak(args, postgres, redis, base):
    # Imported once the settings are in the environment.
    from flask_migrate import upgrade
    from redis import Redis as RedisClient

    from tests.conftest import PASSWORD, log_in
    from tests.test_faults import SEED, FaultRun, Fleet, fault_plan, measure_outcome, sample_csv
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Operator

    app, twin = create_app({"TESTING": True}), create_app({"TESTING": True})
    with app.app_context():
        upgrade()
        operator = Operator(email="op@example.com")
        operator.set_password(PASSWORD)
        db.session.add(operator)
        db.session.commit()

    seed = SEED if args.seed is None else args.seed
    log(machine())
    log(f"generating {args.rows:,} lines (seed {seed})")
    sample = sample_csv(args.rows, seed)
    log(f"{len(sample.content) / 1e6:.1f} MB: {len(sample.stored):,} to store, {sample.duplicates:,} duplicates, "
        f"{sample.invalid:,} invalid; settings {settings_text()}")

    def one_run(name, faults):
        with psycopg.connect(postgres.url, autocommit=True) as connection:
            connection.execute(partition.DROP_EVERY_UPLOAD_TABLE)
            connection.execute("TRUNCATE records, row_errors, upload_pieces, uploads RESTART IDENTITY CASCADE")
        RedisClient.from_url(redis.url).flushdb()
        logs = base / name
        logs.mkdir()
        # As in tests/conftest.py: the run holds a twin's app context, so that every request
        # gets a fresh context (and database session) of its own.
        with twin.app_context():
            client = app.test_client()
            assert log_in(client).status_code == 303
            fleet = Fleet(Processes(logs))
            try:
                run = FaultRun(client, postgres, redis, fleet, sample, faults)
                run.run(finish_timeout=120 + args.rows // 1000)
            finally:
                fleet.stop()
            outcome = measure_outcome(sample, postgres.url, run.upload_id)
        kinds = [kind for kind, *_ in run.applied]
        return {
            "run": name, "seconds": round(run.seconds, 1), "status": outcome["status"],
            "kills": fleet.killed, "redis_restarts": kinds.count("redis") + kinds.count("redis_crash"),
            "redis_crashes": kinds.count("redis_crash"),
            "postgres_restarts": kinds.count("postgres"), "exited_on_their_own": dict(fleet.exits),
            "rows_lost": outcome["lost"], "rows_doubled": outcome["doubled"],
            "rows_unexpected": outcome["unexpected"], "row_errors_doubled": outcome["errors_doubled"],
            "row_errors": len(outcome["errors"]), "row_errors_expected": len(sample.errors),
            "counters_as_clean": outcome["counters"] == sample.counters, "counters": outcome["counters"],
            "faults": run.applied,
        }

    log("clean run")
    clean = one_run("clean", [])
    log(f"clean: {clean['seconds']} s, {clean['status']}, counters {clean['counters']}")
    results = [clean]
    for number in range(1, args.runs + 1):
        plan = fault_plan(args.rows, kills=args.kills, seed=seed + number - 1,
                          redis="redis_crash" if args.redis_crash else "redis")
        log(f"run {number}: faults at {plan}")
        result = one_run(f"run-{number}", plan)
        result["extra_seconds"] = round(result["seconds"] - clean["seconds"], 1)
        results.append(result)
        log(f"run {number}: {result['status']}; kills {result['kills']}, Redis restarts {result['redis_restarts']} "
            f"(of them kill -9: {result['redis_crashes']}), "
            f"PostgreSQL restarts {result['postgres_restarts']}, exited on their own "
            f"{result['exited_on_their_own'] or 'none'}; rows lost {result['rows_lost']}, doubled "
            f"{result['rows_doubled']}, row errors doubled {result['row_errors_doubled']}; counters as clean: "
            f"{result['counters_as_clean']}; {result['seconds']} s ({result['extra_seconds']:+} s over clean)")
        log(f"run {number}: faults (kind, checkpoint, seconds to act, seconds until the next chunk): "
            f"{result['faults']}")
    print(json.dumps(results))
    bad = [result["run"] for result in results
           if result["status"] != "completed" or not result["counters_as_clean"]
           or result["rows_lost"] or result["rows_doubled"] or result["row_errors_doubled"]]
    if bad:
        log(f"FAILED: {bad}")
        return 1
    return 0


def settings_text():
    from tests.test_faults import SETTINGS
    return ", ".join(f"{name}={value}" for name, value in SETTINGS.items())


if __name__ == "__main__":
    sys.exit(main())
