"""The command that starts one more worker, here or on another host: the
Procfile's worker line, with the three settings a worker needs."""
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from webapp import ROOT

LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1"}
PASSWORD = "<password>"
SECRET_KEY = "<the SECRET_KEY this server uses>"


@dataclass
class AddWorker:
    directory: str
    environment: list[tuple[str, str]]
    command: str
    local_only: list[str]   # settings that name this host, so need changing elsewhere

    @property
    def needs_password(self):
        return any(PASSWORD in value for _, value in self.environment)


def procfile_worker_command(procfile=ROOT / "Procfile"):
    line = next(line for line in procfile.read_text().splitlines() if line.startswith("worker:"))
    command = line.partition(":")[2].strip()
    # honcho puts .venv/bin on the PATH; a shell started by hand may not have it.
    return ".venv/bin/" + command if command.startswith("rq ") else command


def without_password(url):
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user_info, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user_info.partition(':')[0]}:{PASSWORD}@{host}"))


def add_worker(config):
    urls = {"DATABASE_URL": config["DATABASE_URL"], "REDIS_URL": config["REDIS_URL"]}
    environment = [(name, without_password(url)) for name, url in urls.items()]
    return AddWorker(directory=str(ROOT), environment=[*environment, ("SECRET_KEY", SECRET_KEY)],
                     command=procfile_worker_command(),
                     local_only=[name for name, url in urls.items() if urlsplit(url).hostname in LOCAL_HOSTS])
