"""Local PostgreSQL and Redis servers for development and tests.

Each server keeps its data in a directory of its own, listens on 127.0.0.1
only, on a free port, and is stopped by whoever started it.

    python scripts/services.py start var/ [postgres] [redis]   # prints DATABASE_URL=… REDIS_URL=…
    python scripts/services.py stop var/ [postgres] [redis]
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

DATABASE_NAME = "intake"
DATABASE_USER = "intake"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout, what, interval=0.1):
    """Call `condition` until it returns something true (which is returned), for up to `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def port_open(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def postgres_bin(name):
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    found = candidates[-1] if candidates else shutil.which(name)
    if not found:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    return found


class Postgres:
    """A PostgreSQL cluster in `directory`; as root it runs as the postgres user."""
    setting = "DATABASE_URL"

    def __init__(self, directory):
        self.directory = Path(directory).resolve()
        self.data = self.directory / "data"
        self.port_file = self.directory / "port"

    @property
    def port(self):
        return int(self.port_file.read_text())

    @property
    def url(self):
        return f"postgresql://{DATABASE_USER}@127.0.0.1:{self.port}/{DATABASE_NAME}"

    def _as_owner(self, *command):
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *command]
        return list(command)

    def _run(self, *command):
        subprocess.run(self._as_owner(*command), check=True, stdout=subprocess.DEVNULL)

    def _init(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        self._run(postgres_bin("initdb"), "-D", str(self.data), "-U", DATABASE_USER,
                  "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8")

    def start(self):
        fresh = not (self.data / "PG_VERSION").exists()
        if fresh:
            self._init()
        port = free_port()
        self.port_file.write_text(str(port))
        self._start_server(port)
        if fresh:
            subprocess.run([postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(port),
                            "-U", DATABASE_USER, DATABASE_NAME], check=True)
        return self.url

    def stop(self, mode="fast"):
        if (self.data / "postmaster.pid").exists():
            self._run(postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self):
        """Stop and start again on the same port, as after a crash or an upgrade."""
        self.stop(mode="immediate")
        self._start_server(self.port)

    def _start_server(self, port):
        self._run(postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.directory / "server.log"),
                  "-w", "-t", "60", "-o",
                  f"-p {port} -k {self.directory} -c listen_addresses=127.0.0.1 -c max_connections=200",
                  "start")


class Redis:
    """A Redis server in `directory`, with an append-only file so queues survive a restart."""
    setting = "REDIS_URL"

    def __init__(self, directory):
        self.directory = Path(directory).resolve()
        self.port_file = self.directory / "port"
        self.pid_file = self.directory / "redis.pid"

    @property
    def port(self):
        return int(self.port_file.read_text())

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, port=None):
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.path.exists(binary):
            raise RuntimeError("Redis is not installed (apt-get install redis-server)")
        self.directory.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        self.port_file.write_text(str(port))
        subprocess.run([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                        "--daemonize", "yes", "--pidfile", str(self.pid_file),
                        "--logfile", str(self.directory / "server.log")], check=True)
        # The daemon writes its pid file after it starts listening; stop() needs it.
        wait_for(lambda: port_open(port) and self.pid_file.exists(), 30, "Redis")
        return self.url

    def stop(self):
        if not self.pid_file.exists():
            return
        pid = int(self.pid_file.read_text())
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            return
        wait_for(lambda: not _alive(pid), 30, "Redis shutdown")

    def restart(self):
        port = self.port
        self.stop()
        self.start(port)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv):
    if len(argv) < 3 or argv[1] not in ("start", "stop") or not set(argv[3:]) <= {"postgres", "redis"}:
        sys.exit(__doc__)
    directory = Path(argv[2])
    wanted = set(argv[3:]) or {"postgres", "redis"}
    servers = {"postgres": Postgres(directory / "postgres"), "redis": Redis(directory / "redis")}
    for name in sorted(wanted):
        if argv[1] == "start":
            print(f"{servers[name].setting}={servers[name].start()}")
        else:
            servers[name].stop()


if __name__ == "__main__":
    main(sys.argv)
