"""Killed workers, small chunks and concurrent uploads: no line lost, none stored twice."""
import pytest

from tests.conftest import scheduler_process, wait_until, worker_process
from tests.ingest_helpers import finished, post_files, row_errors, upload_file
from webapp.extensions import db
from webapp.models import Record, RowError, Upload


def people_csv(count, prefix="p", invalid_every=50, duplicate_every=30):
    """A file with known content: (bytes, emails that must end up stored)."""
    lines, expected = ["email,first_name,city"], set()
    for number in range(count):
        if number % invalid_every == 7:
            lines.append(f"not-an-email-{number},Bad,Nowhere")
        elif number % duplicate_every == 11:
            lines.append(f"{prefix}{number // 2}@EXAMPLE.com,Dup,Again")
        else:
            email = f"{prefix}{number}@example.com"
            lines.append(f'{email},"Name, {number}",City')
            expected.add(email)
    return ("\n".join(lines) + "\n").encode(), expected


def stored_count():
    return db.session.scalar(db.select(db.func.count(Record.id)))


def counts(upload):
    return (upload.lines_read, upload.rows_inserted, upload.duplicates, upload.rows_invalid)


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setenv("INGEST_CHUNK_ROWS", "500")
    monkeypatch.setenv("REAPER_SECONDS", "2")


def test_duplicates_across_chunks_are_found(client, small_chunks, start_process):
    start_process(worker_process)
    content, expected = people_csv(3000)
    upload = finished(upload_file(client, "chunks.csv", content))
    assert {email.lower() for email in db.session.scalars(db.select(Record.email))} == expected
    invalid, duplicates = 60, 3000 - 60 - len(expected)
    assert counts(upload) == (3000, len(expected), duplicates, invalid)
    reasons = [reason for _, _, reason in row_errors(upload.id)]
    assert sum(reason.startswith("duplicate of line") for reason in reasons) == duplicates


def test_a_worker_killed_again_and_again_loses_and_doubles_nothing(client, small_chunks, start_process):
    content, expected = people_csv(60_000)
    upload_id = upload_file(client, "big.csv", content)
    start_process(scheduler_process)
    for kill in range(3):
        worker = start_process(worker_process)
        reached = (kill + 1) * 8_000
        wait_until(lambda: checkpoint(upload_id) >= reached, timeout=120, message=f"checkpoint {reached}")
        worker.kill()
        assert db.session.get(Upload, upload_id).status == "running"
    start_process(worker_process)
    assert_resumed_exactly(upload_id, 60_000, expected, invalid=1_200)


def assert_resumed_exactly(upload_id, lines, expected, invalid):
    """The resumed upload completes with each of the `expected` emails stored once and each
    rejected line reported once; returns the lines of its row errors."""
    upload = finished(upload_id, timeout=240)
    assert upload.status == "completed", upload.failure_reason
    emails = db.session.scalars(db.select(Record.email_norm)).all()
    assert len(emails) == len(set(emails)) == len(expected)
    assert set(emails) == expected
    duplicates = lines - invalid - len(expected)
    assert counts(upload) == (lines, len(expected), duplicates, invalid)
    error_lines = db.session.scalars(db.select(RowError.line).filter_by(upload_id=upload_id)).all()
    assert len(error_lines) == len(set(error_lines)) == duplicates + invalid
    return error_lines


def checkpoint(upload_id):
    db.session.expire_all()
    return db.session.get(Upload, upload_id).checkpoint_records


def test_concurrent_uploads_sharing_emails_store_each_email_once(client, small_chunks, start_process):
    start_process(worker_process)
    start_process(worker_process)
    first, expected_first = people_csv(6_000, prefix="s")
    second, expected_second = people_csv(6_000, prefix="S")   # the same emails, other letter case
    ids = [upload_file(client, "first.csv", first), upload_file(client, "second.csv", second)]
    uploads = [finished(upload_id) for upload_id in ids]
    assert stored_count() == len(expected_first) == len(expected_second)
    assert sum(upload.rows_inserted for upload in uploads) == len(expected_first)
    for upload in uploads:
        assert upload.status == "completed"
        assert upload.lines_read == upload.rows_inserted + upload.duplicates + upload.rows_invalid == 6_000


def test_ten_uploads_at_once_on_two_workers_count_every_line_once(client, small_chunks, start_process):
    files = []
    for number in range(10):
        # Every file shares half its emails with the next one, in another letter case.
        lines = ["email,first_name"] + [f"{'S' if number % 2 else 's'}{row}@example.com,N{number}"
                                        for row in range(number * 1_000, number * 1_000 + 2_000)]
        lines.append(f"bad-{number},Bad")
        files.append((f"f{number}.csv", ("\n".join(lines) + "\n").encode()))
    response = post_files(client, files)
    assert response.status_code == 303
    start_process(worker_process)
    start_process(worker_process)
    uploads = [finished(upload_id, timeout=240) for upload_id in db.session.scalars(db.select(Upload.id))]
    assert len(uploads) == 10 and {upload.status for upload in uploads} == {"completed"}
    assert stored_count() == 11_000
    assert sum(upload.rows_inserted for upload in uploads) == 11_000
    for upload in uploads:
        assert upload.lines_read == upload.rows_inserted + upload.duplicates + upload.rows_invalid == 2_001
    assert sum(upload.duplicates for upload in uploads) == 20_000 - 11_000
