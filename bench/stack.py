"""Intake on servers of its own, for the benchmarks: PostgreSQL and Redis under a
directory of bench/data/ (scripts/services.py, wiped first) and the Procfile's
processes on them, each started through bash exactly as its Procfile line says.

    stack = Stack(DATA / "api", MAX_UPLOAD_MB="1024")
    try:
        stack.start_servers()
        stack.flask("db", "upgrade")
        stack.start_web()
        stack.start("worker")
        …
    finally:
        stack.stop_all()

Every process it starts runs in a session of its own (its children stop with
it) and gets SIGTERM when the bench dies, even by SIGKILL. PostgreSQL and Redis
outlive a killed bench: `python scripts/services.py stop bench/data/NAME`.
"""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.http_session import log  # noqa: E402
from scripts.services import Postgres, Redis, free_port, wait_for  # noqa: E402

VENV_BIN = Path(sys.executable).parent


def die_with_parent():
    """Ask Linux to SIGTERM this process when the bench dies, even by SIGKILL (PR_SET_PDEATHSIG)."""
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)


def procfile_command(name, app=ROOT):
    return next(line.split(":", 1)[1].strip() for line in (app / "Procfile").read_text().splitlines()
                if line.startswith(f"{name}:"))


class Child:
    """A process started through bash exactly as the Procfile line says, in a session of its
    own, in `app` (a checkout of Intake)."""

    def __init__(self, name, command, env, log_path, app=ROOT):
        self.name = name
        self.command = command
        with open(log_path, "ab") as output:
            self.process = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=app, env=env, stdout=output,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            preexec_fn=die_with_parent)

    @property
    def pid(self):
        return self.process.pid

    def stop(self, timeout=20):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                return
        try:  # whatever is left in its session (a work horse, a gunicorn worker)
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


class Stack:
    """PostgreSQL, Redis and Intake's processes under `directory`; `settings` are extra
    environment variables for every process (INTAKE_ENV=production and a fresh
    SECRET_KEY are set; INGEST_CHUNK_ROWS from the caller's environment is not passed on)."""

    def __init__(self, directory, **settings):
        self.directory = Path(directory)
        self.settings = settings
        self.children = []
        self.postgres = self.redis = self.db = self.port = None

    def start_servers(self):
        if self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True)
        os.chmod(self.directory, 0o755)
        self.logs = self.directory / "logs"
        self.logs.mkdir()
        self.postgres, self.redis = Postgres(self.directory / "postgres"), Redis(self.directory / "redis")
        log(f"starting PostgreSQL and Redis under {self.directory.relative_to(ROOT)}/")
        self.database_url = self.postgres.start()
        self.redis_url = self.redis.start()
        self.postmaster = int((self.postgres.data / "postmaster.pid").read_text().split()[0])
        self.redis_pid = int(self.redis.pid_file.read_text())  # Redis.start waits for the pid file
        environment = {name: value for name, value in os.environ.items() if name != "INGEST_CHUNK_ROWS"}
        self.env = dict(environment, DATABASE_URL=self.database_url, REDIS_URL=self.redis_url,
                        SECRET_KEY=uuid.uuid4().hex, INTAKE_ENV="production",
                        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", **self.settings)
        self.db = psycopg.connect(self.database_url, autocommit=True)

    def flask(self, *arguments):
        """Run `flask --app wsgi …` on these servers; returns what it printed."""
        return subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", *arguments], cwd=ROOT, env=self.env,
                              check=True, stdout=subprocess.PIPE, text=True).stdout

    def start(self, name, command=None, env=None, log_name=None):
        """Start the Procfile's process `name` (or `command`) with `env` on top of the stack's."""
        child = Child(name, command or procfile_command(name), dict(self.env, **(env or {})),
                      self.logs / f"{log_name or name}.log")
        self.children.append(child)
        return child

    def start_web(self, command=None):
        """The Procfile's web line (or `command`) on a free port of 127.0.0.1, once /api/health answers."""
        self.port = free_port()
        web = self.start("web", command, {"PORT": str(self.port), "BIND": "127.0.0.1"})
        wait_for(lambda: self.health() is not None, 60, "the web process")
        log(f"web on 127.0.0.1:{self.port}: {web.command}")
        return web

    def health(self):
        """GET /api/health as JSON, or None while the web process does not answer 200."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", "/api/health")
            response = connection.getresponse()
            body = response.read()
        except OSError:
            return None
        finally:
            connection.close()
        return json.loads(body) if response.status == 200 else None

    def wait_for_workers(self, count, timeout=60):
        wait_for(lambda: (self.health() or {}).get("workers", -1) == count, timeout,
                 f"{count} RQ worker(s) to be registered")

    def stop(self, child):
        child.stop()
        self.children.remove(child)

    def stop_all(self, *first):
        """Call `first` (more things to stop), stop every process, then the servers; go on past errors."""
        steps = [*first, *(child.stop for child in reversed(self.children))]
        steps += [thing.close if thing is self.db else thing.stop
                  for thing in (self.db, self.redis, self.postgres) if thing is not None]
        for step in steps:
            try:
                step()
            except Exception as error:  # noqa: BLE001 (stop the rest anyway)
                log(f"while stopping: {type(error).__name__}: {error}")
