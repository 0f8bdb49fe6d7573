"""The hostile corpus (tests/data/hostile/, see its README) through the real
upload form and a real RQ worker: every file gets exactly the outcome written
in its NAME.expected.json, no page answers 500, and the worker survives."""
import functools
import json
import os
import re
import signal
import threading
import types
from contextlib import contextmanager
from pathlib import Path

import pytest
from markupsafe import escape
from redis import Redis

from tests.conftest import wait_until, worker_process
from tests.ingest_helpers import post_files, row_errors
from webapp.extensions import db
from webapp.models import Record, Upload, UploadStatus

CORPUS = Path(__file__).resolve().parent / "data" / "hostile"
DEFAULT_SECONDS = 60


class Deadline(Exception):
    """The case took longer than its max_seconds."""


class OverBudget(AssertionError):
    """The work horse's peak memory went over the case's max_worker_mb."""




@functools.cache
def load_make_corpus():
    """tests/data/hostile/make_corpus.py as a module (the directory is no package)."""
    path = CORPUS / "make_corpus.py"
    module = types.ModuleType("hostile_make_corpus")
    module.__file__ = str(path)
    exec(compile(path.read_text(encoding="utf-8"), path, "exec"), module.__dict__)
    return module


def expectations():
    return {path.name.removesuffix(".expected.json"): json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(CORPUS.glob("*.expected.json"))}


def corpus():
    return [pytest.param(name, expected, id=name) for name, expected in expectations().items()]


def test_the_corpus_is_complete():
    expected = expectations()
    generated = {name for name, outcome in expected.items() if outcome.get("generated")}
    committed = {path.name for path in CORPUS.iterdir() if path.is_file() and not path.name.startswith(".")
                 and not path.name.endswith((".expected.json", ".py", ".md"))}
    assert committed == set(expected) - generated, "every file needs a sidecar, every sidecar a file"
    assert generated == set(load_make_corpus().GENERATORS)
    assert len(expected) >= 40
    for name in committed:
        assert (CORPUS / name).stat().st_size < 50_000, f"{name} is too big to commit: generate it"
    for name, outcome in expected.items():
        if "refused" not in outcome:
            assert {"status", "lines_read", "inserted", "duplicates", "invalid", "errors",
                    "failure_reason"} <= set(outcome), name


@pytest.fixture(scope="session")
def generated_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


def content_of(name, expected, generated_dir):
    if expected.get("generated"):
        return load_make_corpus().write(name, generated_dir).read_bytes()
    return (CORPUS / name).read_bytes()


class SharedWorker:
    """One real RQ worker for the whole corpus, started again whenever a case
    leaves it dead or busy, so that no job outlives the case that queued it
    (the `app` fixture truncates the tables and flushes Redis for each case)."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.process = None
        self.name = None
        self.starts = 0

    def ready(self):
        if self.process is None or self.process.process.poll() is not None:
            self.starts += 1
            self.name = f"hostile-{os.getpid()}-{self.starts}"
            self.process = worker_process(self.log_dir / f"worker-{self.starts}.log")
            self.process.argv += ["--name", self.name]
            self.process.start()
        return self.process

    def settle(self, redis):
        """After a case: wait until the worker is idle again, or stop it."""
        if self.process is None or self.process.process.poll() is not None:
            return
        uploads = db.session.scalar(db.select(db.func.count(Upload.id)))
        if not uploads:
            return      # the form refused the file: nothing was queued
        active = db.session.scalar(db.select(db.func.count(Upload.id))
                                   .where(Upload.status.in_(UploadStatus.ACTIVE)))
        if not active:
            try:
                return wait_until(lambda: redis.hget(f"rq:worker:{self.name}", "state") == b"idle",
                                  timeout=10, message="the worker to be idle")
            except AssertionError:
                pass
        self.stop()     # a job still running or waiting for a retry must not meet the next case

    def stop(self):
        if self.process:
            self.process.stop()
            self.process = None


@pytest.fixture(scope="module")
def shared_worker(migrated, tmp_path_factory):
    shared = SharedWorker(tmp_path_factory.mktemp("hostile-worker"))
    yield shared
    shared.stop()


@pytest.fixture
def worker(app, shared_worker):
    """This module's `worker`: the shared one, idle and alive at the start of each case."""
    process = shared_worker.ready()
    yield process
    db.session.rollback()
    shared_worker.settle(Redis.from_url(app.config["REDIS_URL"]))


@contextmanager
def deadline(seconds, what):
    """Interrupt the test (even inside a request) once `seconds` have passed."""
    def expire(signum, frame):
        raise Deadline(f"{what} took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def descendants(pid):
    """Process ids of every descendant of `pid` (the RQ work horse, the scheduler)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class PeakMemory(threading.Thread):
    """Samples VmHWM (peak resident memory) of the worker's children until stopped."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            for child in descendants(self.pid):
                try:
                    status = Path(f"/proc/{child}/status").read_text()
                except OSError:
                    continue
                found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
                if found:
                    self.peak_kb = max(self.peak_kb, int(found.group(1)))
            self.done.wait(0.02)

    def stop(self):
        self.done.set()
        if self.is_alive():
            self.join()
        return self.peak_kb / 1024


def settled(upload_id, timeout):
    """The upload once it is finished, or once an attempt crashed (RQ would retry it later)."""
    def final_or_crashed():
        db.session.expire_all()
        upload = db.session.get(Upload, upload_id)
        if upload.status in UploadStatus.FINISHED or (upload.failure_reason or "").startswith("attempt failed"):
            return upload
        return None
    return wait_until(final_or_crashed, timeout=timeout, interval=0.05, message=f"upload {upload_id} to finish")


def form_errors(page):
    return re.findall(r'<small class="error" role="alert">(.*?)</small>', page, re.DOTALL)


def check_refusal(response, upload_as, expected):
    page = response.get_data(as_text=True)
    assert response.status_code == 400, form_errors(page) or page[:2000]
    prefix, message = str(escape(f"{upload_as}: ")), str(escape(expected["refused"]))
    assert any(error.startswith(prefix) and message in error for error in form_errors(page)), form_errors(page)
    check_page(page, expected)
    assert db.session.scalar(db.select(db.func.count(Upload.id))) == 0


def check_page(page, expected):
    for text in expected.get("page_contains", []):
        assert text in page
    for text in expected.get("page_lacks", []):
        assert text not in page


def check_upload(upload, expected):
    got = dict(status=upload.status, lines_read=upload.lines_read, inserted=upload.rows_inserted,
               duplicates=upload.duplicates, invalid=upload.rows_invalid)
    assert got == {key: expected[key] for key in got}, upload.failure_reason
    if expected["failure_reason"] is None:
        assert upload.failure_reason is None
    else:
        assert expected["failure_reason"] in (upload.failure_reason or ""), upload.failure_reason
    if "encoding" in expected:
        assert upload.encoding == expected["encoding"]
    if "shown_name" in expected:
        assert upload.filename == expected["shown_name"]


def check_row_errors(upload, expected):
    got = [(line, column, reason[:300]) for line, column, reason in row_errors(upload.id)]
    assert len(got) == len(expected["errors"]), got[:30]
    for (line, column, reason), (want_line, want_column, want_reason) in zip(got, expected["errors"]):
        assert (line, column) == (want_line, want_column) and want_reason in reason, (line, column, reason)


def check_records(expected):
    for email_norm, fields in expected.get("records", {}).items():
        record = db.session.scalar(db.select(Record).filter_by(email_norm=email_norm))
        assert record is not None, f"{email_norm!r} is not stored"
        for field, value in fields.items():
            if field == "extra_has":
                assert {key: record.extra.get(key) for key in value} == value
            else:
                assert getattr(record, field) == value, field


@pytest.mark.parametrize("name, expected", corpus())
def test_hostile_file(name, expected, client, worker, generated_dir):
    content = content_of(name, expected, generated_dir)
    upload_as = expected.get("upload_as", name)
    seconds = expected.get("max_seconds", DEFAULT_SECONDS)
    memory = PeakMemory(worker.process.pid)
    if "max_worker_mb" in expected:
        memory.start()
    try:
        with deadline(seconds, f"uploading and ingesting {name}"):
            response = post_files(client, [(upload_as, content)], **expected.get("options", {}))
            if "refused" in expected:
                check_refusal(response, upload_as, expected)
            else:
                assert response.status_code == 303, form_errors(response.get_data(as_text=True))
                upload = settled(int(response.location.rsplit("/", 1)[1]), timeout=seconds + 1)
    finally:
        peak_mb = memory.stop()
    if "refused" not in expected:
        check_upload(upload, expected)
        check_row_errors(upload, expected)
        check_records(expected)
        page = client.get(f"/uploads/{upload.id}")
        assert page.status_code == 200
        check_page(page.get_data(as_text=True), expected)
        report = client.get(f"/uploads/{upload.id}/errors.csv")
        assert report.status_code == 200 and report.mimetype == "text/csv"
        report_text = report.get_data(as_text=True)
        for text in expected.get("report_contains", []):
            assert text in report_text
    for path in ("/uploads/new", "/uploads"):
        assert client.get(path).status_code == 200, path
    assert worker.process.poll() is None, "the worker died"
    if "max_worker_mb" in expected and peak_mb > expected["max_worker_mb"]:
        raise OverBudget(f"the work horse peaked at {peak_mb:.0f} MB (budget {expected['max_worker_mb']} MB)")
