"""Fixtures: a throwaway PostgreSQL and Redis for the whole run, a clean
database for every test, real RQ worker processes on demand."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from flask_migrate import upgrade
from redis import Redis

from jobs import partition
from scripts.services import Postgres, free_port, port_open
from scripts.services import Redis as RedisServer
from webapp import create_app
from webapp.extensions import db
from webapp.models import ApiToken, Operator

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


def wait_until(condition, timeout=60, interval=0.05, message="condition", on_poll=None):
    """Poll `condition` until it returns something truthy; fail after `timeout` s.

    `message` says what was awaited; a function there is called at the time-out, for
    diagnostics. `on_poll` runs before each try.
    """
    deadline = time.monotonic() + timeout
    while True:
        if on_poll:
            on_poll()
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            awaited = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout} s waiting for {awaited}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def servers():
    # Not under pytest's tmp_path: that is private to root, and PostgreSQL runs as its own user.
    base = Path(tempfile.mkdtemp(prefix="intake-test-"))
    os.chmod(base, 0o755)
    postgres, redis = Postgres(base / "postgres"), RedisServer(base / "redis")
    postgres.start()
    redis.start()
    os.environ.update(DATABASE_URL=postgres.url, REDIS_URL=redis.url, INTAKE_ENV="test",
                      SECRET_KEY="test-secret")
    yield postgres, redis
    redis.stop()
    postgres.stop(mode="immediate")
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def migrated(servers):
    app = create_app()
    with app.app_context():
        upgrade()
    return servers


@pytest.fixture
def app(migrated):
    """The app under test. The test itself runs in a twin's app context, so that
    every request gets a fresh context of its own, as it does in production."""
    app = create_app({"TESTING": True})
    twin = create_app({"TESTING": True})
    with twin.app_context():
        db.session.execute(db.text(partition.DROP_EVERY_UPLOAD_TABLE))
        db.session.execute(db.text("TRUNCATE records, row_errors, upload_pieces, uploads, api_tokens, "
                                   "operators RESTART IDENTITY CASCADE"))
        db.session.commit()
        Redis.from_url(app.config["REDIS_URL"]).flushdb()
        yield app
        db.session.remove()


@pytest.fixture
def operator(app):
    operator = Operator(email="op@example.com")
    operator.set_password(PASSWORD)
    db.session.add(operator)
    db.session.commit()
    return operator


@pytest.fixture
def token(app, operator):
    """The secret of an API token of the operator's."""
    api_token, secret = ApiToken.issue("billing service", operator.id)
    db.session.add(api_token)
    db.session.commit()
    return secret


def csrf_token(client, path):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def log_in(client, email="op@example.com", password=PASSWORD):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def client(app, operator):
    """A browser-like client, logged in as `operator`."""
    client = app.test_client()
    assert log_in(client).status_code == 303
    return client


class ChildProcess:
    """A real process as the Procfile starts it, with its output in `log`."""

    def __init__(self, argv, log):
        self.argv = argv
        self.log = log
        self.process = None

    def start(self):
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(self.argv, cwd=ROOT, start_new_session=True,
                                            stdout=output, stderr=subprocess.STDOUT)
        return self

    def kill(self):
        """kill -9 the process and its children, as a crash would. An RQ work horse is not in
        the worker's process group (RQ calls os.setpgrp() in it), so children are killed by pid."""
        horses = child_pids(self.process.pid)
        for kill, target in [(os.killpg, self.process.pid)] + [(os.kill, pid) for pid in horses]:
            try:
                kill(target, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.kill()


def child_pids(pid):
    """The pids whose parent is `pid`, from /proc."""
    children = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry))
    return children


def worker_process(log):
    return ChildProcess([sys.executable, "-m", "rq.cli", "worker", "--worker-class", "jobs.worker.AppWorker",
                         "--url", os.environ["REDIS_URL"], "--with-scheduler", "ingest", "maintenance"], log)


def scheduler_process(log):
    return ChildProcess([sys.executable, "-m", "jobs.scheduler"], log)


@pytest.fixture
def start_process(tmp_path):
    """start_process(factory) starts a ChildProcess; all are stopped after the test."""
    started = []

    def start(factory):
        process = factory(tmp_path / f"{factory.__name__}-{len(started)}.log").start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def worker(app, start_process):
    return start_process(worker_process)


@pytest.fixture
def web_server(app, start_process):
    """The real web process on a free port; yields its base URL."""
    port = free_port()
    start_process(web_process(port))
    wait_until(lambda: port_open(port), timeout=30, message="gunicorn to listen")
    return f"http://127.0.0.1:{port}"


def web_process(port):
    """gunicorn exactly as the Procfile's web line runs it, on 127.0.0.1:port."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    command = line.split(":", 1)[1].replace("$PORT", str(port)).replace("${BIND:-127.0.0.1}", "127.0.0.1")
    command = command.replace("${WEB_CONCURRENCY:-2}", "1")

    def factory(log):
        return ChildProcess(["bash", "-c", f'PATH="{Path(sys.executable).parent}:$PATH" exec {command}'], log)
    factory.__name__ = "web_process"
    return factory
