"""Raw-file retention: old files' bytes go, their records and reports stay."""
from datetime import timedelta

from flask import current_app

from jobs.retention import delete_expired_raw_files
from jobs.scheduler import periodic_jobs
from tests.conftest import scheduler_process, wait_until, worker_process
from tests.ingest_helpers import finished, row_errors, stored_emails, upload_file
from webapp.extensions import db
from webapp.models import Upload, UploadPiece, utcnow

FILE = b"email\nann@example.com\nnot-an-email\n"


def pieces(upload_id):
    return db.session.scalar(db.select(db.func.count()).where(UploadPiece.upload_id == upload_id))


def set_upload(upload_id, **values):
    db.session.execute(db.update(Upload).where(Upload.id == upload_id).values(**values))
    db.session.commit()


def finished_days_ago(days, client, status="completed"):
    upload_id = upload_file(client, f"{days}-days.csv", FILE)
    set_upload(upload_id, status=status, finished_at=utcnow() - timedelta(days=days))
    return upload_id


def test_only_files_finished_longer_ago_than_the_retention_are_deleted(app, client):
    expired = [finished_days_ago(31, client), finished_days_ago(45, client, status="failed"),
               finished_days_ago(40, client, status="cancelled")]
    recent = finished_days_ago(29, client)
    running = upload_file(client, "running.csv", FILE)
    set_upload(running, status="running", created_at=utcnow() - timedelta(days=90))
    assert delete_expired_raw_files() == expired
    db.session.expire_all()
    for upload_id in expired:
        assert pieces(upload_id) == 0 and db.session.get(Upload, upload_id).raw_deleted_at is not None
    for upload_id in (recent, running):
        assert pieces(upload_id) == 1 and db.session.get(Upload, upload_id).raw_deleted_at is None
    assert delete_expired_raw_files() == []


def test_the_retention_follows_its_setting(client):
    upload_id = finished_days_ago(8, client)
    assert delete_expired_raw_files() == []
    current_app.config["RAW_RETENTION_DAYS"] = 7   # the test's own app, where the job runs
    assert delete_expired_raw_files() == [upload_id]


def test_a_file_whose_bytes_are_gone_cannot_be_retried(client):
    upload_id = finished_days_ago(31, client, status="failed")
    delete_expired_raw_files()
    page = client.get(f"/uploads/{upload_id}").get_data(as_text=True)
    assert "Retry from where it stopped" not in page


def test_the_scheduler_deletes_old_files_and_the_page_says_so_while_records_stay(app, client, start_process):
    assert ("periodic-delete-expired-raw-files", "jobs.retention.delete_expired_raw_files", 3600) \
        in periodic_jobs(app.config)
    start_process(worker_process)
    upload_id = upload_file(client, "old.csv", FILE)
    assert finished(upload_id).status == "completed"
    set_upload(upload_id, finished_at=utcnow() - timedelta(days=31))
    start_process(scheduler_process)   # runs each periodic job once at start
    wait_until(lambda: pieces(upload_id) == 0, timeout=30, message="the raw file to be deleted")
    page = client.get(f"/uploads/{upload_id}").get_data(as_text=True)
    assert "The uploaded file was deleted on" in page and "files are kept 30 days" in page
    assert stored_emails() == ["ann@example.com"]
    assert [reason for _, _, reason in row_errors(upload_id)] != []
