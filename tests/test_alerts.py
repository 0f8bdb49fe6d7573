"""The failure e-mail, from a real worker to a real SMTP server."""
from email import message_from_bytes
from email.policy import default as email_policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from rq.job import Job, JobStatus

from jobs.alerts import send_failure_email
from scripts.services import free_port
from tests.conftest import wait_until, worker_process
from tests.failing_uploads import make_fail_for_good
from tests.ingest_helpers import finished, upload_file
from webapp.config import ConfigError, load_config
from webapp.queueing import ingest_job_id, redis_connection

REJECTED_FILE = b"email\nann@example.com\nnot-an-email\n"


class Inbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=email_policy)
        self.messages.append((envelope.rcpt_tos, message, session.auth_data))
        return "250 OK"


def authenticate(server, session, envelope, mechanism, login_password):
    return AuthResult(success=login_password == (b"intake", b"mail-secret"), auth_data=login_password.login)


@pytest.fixture
def inbox(app, monkeypatch):
    """A real SMTP server on a free port, and the settings a worker started afterwards needs to use it."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    for name, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_USER": "intake",
                        "SMTP_PASSWORD": "mail-secret", "SMTP_FROM": "intake@example.org",
                        "ALERT_EMAIL": "alerts@example.org", "PUBLIC_URL": "https://intake.example.org"}.items():
        monkeypatch.setenv(name, value)
    yield inbox
    controller.stop()


def test_a_rejected_file_emails_the_uploader_and_the_alert_address(client, inbox, start_process):
    start_process(worker_process)
    upload_id = upload_file(client, "reject me.csv", REJECTED_FILE, on_duplicate="reject")
    upload = finished(upload_id)
    assert upload.status == "failed"
    wait_until(lambda: inbox.messages, timeout=30, message="the failure e-mail")
    recipients, message, login = inbox.messages[0]
    assert recipients == ["op@example.com", "alerts@example.org"] and login == b"intake"
    assert message["Subject"] == "Intake: reject me.csv failed"
    assert message["From"] == "intake@example.org"
    body = message.get_content()
    assert f"Reason: {upload.failure_reason}" in body and "line 3" in body
    assert f"https://intake.example.org/uploads/{upload_id}" in body


def test_a_job_that_fails_for_good_sends_one_email(client, inbox, start_process):
    upload_id = upload_file(client, "broken.csv", b"email\nann@example.com\n")
    make_fail_for_good(upload_id)
    start_process(worker_process)
    assert finished(upload_id).status == "failed"
    wait_until(lambda: inbox.messages, timeout=30, message="the failure e-mail")
    job = Job.fetch(ingest_job_id(upload_id), connection=redis_connection())
    wait_until(lambda: job.get_status() == JobStatus.FAILED, message="the job to fail")
    assert len(inbox.messages) == 1
    _, message, _ = inbox.messages[0]
    assert "Reason: the worker kept failing (RuntimeError: the database went away)" in message.get_content()


def test_a_mail_server_that_is_down_does_not_fail_the_job(client, monkeypatch, start_process):
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(free_port()))   # nothing listens there
    worker = start_process(worker_process)
    upload_id = upload_file(client, "reject me.csv", REJECTED_FILE, on_duplicate="reject")
    upload = finished(upload_id)
    assert upload.status == "failed" and upload.failure_reason.startswith("rejected: 1 line(s)")
    job = Job.fetch(ingest_job_id(upload_id), connection=redis_connection())
    wait_until(lambda: job.get_status() == JobStatus.FINISHED, message="the job to end")
    wait_until(lambda: "could not send the failure e-mail for upload" in worker.log.read_text(),
               message="the worker to log the lost e-mail")


def test_without_smtp_host_nothing_is_sent(client, inbox, monkeypatch, start_process):
    monkeypatch.delenv("SMTP_HOST")
    start_process(worker_process)
    upload = finished(upload_file(client, "reject me.csv", REJECTED_FILE, on_duplicate="reject"))
    assert upload.status == "failed"
    assert send_failure_email(upload.id) is False   # this test's app has no SMTP_HOST either
    job = Job.fetch(ingest_job_id(upload.id), connection=redis_connection())
    wait_until(lambda: job.get_status() == JobStatus.FINISHED, message="the job to end")
    assert inbox.messages == []


def test_the_mail_settings_are_checked_when_read():
    config = load_config({"INTAKE_ENV": "test", "SMTP_PORT": "587", "SMTP_STARTTLS": "yes",
                          "PUBLIC_URL": "https://intake.example.org/"})
    assert (config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_STARTTLS"]) == (None, 587, True)
    assert config["PUBLIC_URL"] == "https://intake.example.org"
    with pytest.raises(ConfigError, match="SMTP_STARTTLS must be true or false"):
        load_config({"INTAKE_ENV": "test", "SMTP_STARTTLS": "maybe"})
