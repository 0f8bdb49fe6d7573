"""A worker on another host: a fresh clone of the repository with its own
virtualenv, in a network namespace of its own that reaches PostgreSQL and Redis
over a veth pair only, with the web's checkout hidden from it, and nothing but
DATABASE_URL, REDIS_URL and SECRET_KEY to go on."""
import os
import shlex
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT, ChildProcess, wait_until
from tests.fresh_clone import copy_checkout, make_virtualenv, repack_installed
from tests.ingest_helpers import emails_csv, finished, post_files
from tests.network_namespace import Forwarders, NetworkNamespace
from webapp.extensions import db
from webapp.models import Record, Upload, UploadStatus
from webapp.monitor.add_worker import procfile_worker_command

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ip netns needs root")

# Larger than OWN_PARTITION_MIN_BYTES, so that the other host also builds and attaches a table of its own.
LARGE_LINES = 300_000


@pytest.fixture(scope="module")
def clone():
    base = Path(tempfile.mkdtemp(prefix="intake-other-host-"))
    (base / "wheels").mkdir()
    (base / "checkout").mkdir()
    repack_installed(base / "wheels")
    copy_checkout(ROOT, base / "checkout")
    make_virtualenv(base / "checkout", base / "wheels")
    yield base / "checkout"
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def other_host(app, migrated):
    """The namespace, with PostgreSQL's and Redis's ports forwarded to it."""
    namespace, forwarders = NetworkNamespace(), Forwarders().start()
    try:
        namespace.create()
        postgres, redis = migrated
        for port in (postgres.port, redis.port):
            forwarders.forward(namespace.host, port)
        yield namespace
    finally:
        namespace.remove()
        forwarders.stop()


def on_host(url, host):
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.replace(parts.hostname, host)).geturl()


@pytest.fixture
def start_remote_worker(other_host, clone, start_process):
    """start_remote_worker(host=…) runs the Procfile's worker line in the clone, inside the namespace,
    reaching PostgreSQL and Redis at `host` (by default this end of the veth pair)."""
    def start(host=other_host.host):
        settings = {"PATH": "/usr/bin:/bin", "SECRET_KEY": os.environ["SECRET_KEY"],
                    "DATABASE_URL": on_host(os.environ["DATABASE_URL"], host),
                    "REDIS_URL": on_host(os.environ["REDIS_URL"], host)}
        # A mount namespace of its own, in which an empty directory covers the web's checkout.
        script = (f"mount -t tmpfs -o ro,size=4k,mode=0 web-files-hidden {shlex.quote(str(ROOT))} && "
                  f"cd {shlex.quote(str(clone))} && exec env -i "
                  + " ".join(shlex.quote(f"{name}={value}") for name, value in settings.items())
                  + f" sh -c {shlex.quote(procfile_worker_command())}")
        argv = other_host.command("unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script)

        def remote_worker(log):
            return ChildProcess(argv, log)
        return start_process(remote_worker)
    return start


def test_a_worker_on_another_host_ingests_uploads_made_through_the_web(client, start_remote_worker):
    response = post_files(client, [("small.csv", emails_csv("s", 2_000) + b"not-an-email\ns7@EXAMPLE.com\n"),
                                   ("large.csv", emails_csv("l", LARGE_LINES))])
    assert response.status_code == 303
    small_id, large_id = sorted(db.session.scalars(db.select(Upload.id)))

    unreachable = start_remote_worker(host="10.255.255.1")   # no route from the namespace
    wait_until(lambda: unreachable.process.poll() is not None, timeout=60, message="the misconfigured worker to exit")
    assert unreachable.process.returncode != 0
    assert "10.255.255.1" in unreachable.log.read_text() and "unreachable" in unreachable.log.read_text()
    db.session.expire_all()
    assert {upload.status for upload in db.session.scalars(db.select(Upload))} == {UploadStatus.QUEUED}

    worker = start_remote_worker()
    small, large = finished(small_id), finished(large_id, timeout=180)
    assert (small.status, small.rows_inserted, small.rows_invalid, small.duplicates) == ("completed", 2_000, 1, 1)
    assert (large.status, large.rows_inserted) == ("completed", LARGE_LINES), large.failure_reason
    assert db.session.scalar(db.select(db.func.count(Record.id))) == 2_000 + LARGE_LINES
    assert db.session.scalar(db.text("SELECT inhparent::regclass::text FROM pg_inherits "
                                     "WHERE inhrelid = to_regclass(:table)"),
                             {"table": Upload.own_table_name(large_id)}) == "records"
    assert "jobs.ingest.ingest_upload" in worker.log.read_text()
