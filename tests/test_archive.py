"""Archive (cold storage): old uploads move to gzip-compressed CSV files and come back."""
import csv
import gzip
import json
from datetime import timedelta

import pytest
from flask import current_app
from rq_scheduler import Scheduler

from jobs.archive import archive_old_uploads
from jobs.scheduler import TIMEOUTS, periodic_jobs
from tests.conftest import scheduler_process, wait_until, worker_process
from tests.ingest_helpers import finished, upload_file
from webapp.archive import file_sha256
from webapp.config import ConfigError, load_config
from webapp.extensions import db
from webapp.models import Record, RowError, Upload, UploadPiece, utcnow
from webapp.queueing import redis_connection
from webapp.validation import normalize_email

JOB = "jobs.archive.archive_old_uploads"
FILE = (b"email,first_name,last_name,phone,company,plan\n"
        b"ann@example.com,=1+2,O'Neil,+44 20 7946 0000,\"Acme, Inc.\",gold\n"
        b"Bob@Example.com,Zo\xc3\xab,\"Line \"\"two\"\"\",,-minus,@silver\n"
        b"not-an-email,Eve,,,,\n")


def set_upload(upload_id, **values):
    db.session.execute(db.update(Upload).where(Upload.id == upload_id).values(**values))
    db.session.commit()


def count(model, **where):
    return db.session.scalar(db.select(db.func.count()).select_from(model).filter_by(**where))


def table_rows(table, upload_id, order="id"):
    """Every column of the rows of one upload, as PostgreSQL gives them."""
    return db.session.execute(db.text(f"SELECT * FROM {table} WHERE upload_id = :id ORDER BY {order}"),
                              {"id": upload_id}).mappings().all()


def upload_row(upload_id):
    return db.session.execute(db.text("SELECT * FROM uploads WHERE id = :id"), {"id": upload_id}).mappings().one()


def manifests(directory):
    return sorted(directory.glob("*.manifest.json"))


def read_csv_gz(path):
    with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
        return list(csv.reader(text))


def configure(app, **settings):
    """Settings of the app the commands run in and of the test's own, where the job runs."""
    app.config.update(settings)
    current_app.config.update(settings)


@pytest.fixture
def archive_dir_off(app, tmp_path):
    """ARCHIVE_DIR in the test's folder; archive_dir as the defaults have it."""
    configure(app, ARCHIVE_DIR=str(tmp_path / "archive"))
    return tmp_path / "archive"


@pytest.fixture
def archive_dir(app, archive_dir_off):
    """ARCHIVE_DIR in the test's folder; archive_dir on, after 30 days."""
    configure(app, ARCHIVE_AFTER_DAYS=30)
    return archive_dir_off


def old_upload(client, operator, days=31, status="completed", name="old.csv"):
    """An upload finished `days` ago with records and row errors written the way ingest writes them,
    including values a CSV file or a spreadsheet could get wrong."""
    upload_id = upload_file(client, name, FILE)
    set_upload(upload_id, status=status, started_at=utcnow() - timedelta(days=days, minutes=1),
               finished_at=utcnow() - timedelta(days=days), lines_read=3, rows_inserted=2, rows_invalid=1)
    prefix = "" if name == "old.csv" else f"{name}."   # an email is stored once
    people = [
        {"email": f"{prefix}ann@example.com", "first_name": "=1+2", "last_name": "O'Neil", "phone": "+44 20 7946 0000",
         "company": "Acme, Inc.", "extra": {"plan": "gold", "tags": ["a", "b"], "note": "line\nbreak"}},
        {"email": f"{prefix}Bob@Example.com", "first_name": "Zoë", "last_name": 'Line "two"', "phone": None,
         "company": "-minus", "city": "", "country": "'quoted", "extra": {"plan": "@silver"},
         "updated_by": operator.id},
        {"email": f"{prefix}tab@example.com", "first_name": "\tTab", "extra": {}},
    ]
    db.session.add_all(Record(email_norm=normalize_email(person["email"]), upload_id=upload_id, source_line=line,
                              **person) for line, person in enumerate(people, 2))
    db.session.add(RowError(upload_id=upload_id, line=4, column_name="email", reason="not an email address",
                            raw_line="=HYPERLINK(\"x\"),Eve,,,,"))
    db.session.add(RowError(upload_id=upload_id, line=5, column_name=None, reason="too many columns",
                            raw_line=None))
    db.session.commit()
    return upload_id


def restore(app, path):
    return app.test_cli_runner().invoke(args=["archive", "restore", str(path)])


def test_it_is_off_by_default_and_leaves_recent_and_running_uploads(app, client, operator, archive_dir_off):
    archive_dir = archive_dir_off
    assert app.config["ARCHIVE_AFTER_DAYS"] == 0
    ancient = old_upload(client, operator, days=1000)
    assert archive_old_uploads() == []
    assert count(Upload) == 1 and not archive_dir.exists()

    configure(app, ARCHIVE_AFTER_DAYS=30)
    failed = old_upload(client, operator, days=31, status="failed", name="failed.csv")
    cancelled = old_upload(client, operator, days=40, status="cancelled", name="cancelled.csv")
    recent = old_upload(client, operator, days=29, name="recent.csv")
    running = old_upload(client, operator, days=90, status="running", name="running.csv")
    assert archive_old_uploads() == [ancient, failed, cancelled]
    assert sorted(db.session.scalars(db.select(Upload.id))) == [recent, running]
    assert sorted(db.session.scalars(db.select(Record.upload_id).distinct())) == [recent, running]
    assert count(RowError) == 4 and count(UploadPiece) == 2
    assert [path.name.split("-")[1] for path in manifests(archive_dir)] == \
        sorted(str(upload_id) for upload_id in (ancient, failed, cancelled))
    assert archive_old_uploads() == []


def test_the_scheduler_registers_it_once_and_a_worker_archives_an_old_upload(app, client, start_process, tmp_path,
                                                                             monkeypatch):
    directory = tmp_path / "archive"
    monkeypatch.setenv("ARCHIVE_AFTER_DAYS", "30")
    monkeypatch.setenv("ARCHIVE_DIR", str(directory))
    assert ("periodic-archive-old-uploads", JOB, 3600) in periodic_jobs(app.config)
    start_process(worker_process)
    upload_id = upload_file(client, "people.csv", FILE)
    upload = finished(upload_id)
    assert (upload.status, upload.rows_inserted, upload.rows_invalid) == ("completed", 2, 1)
    records, row_errors = table_rows("records", upload_id), table_rows("row_errors", upload_id)
    set_upload(upload_id, finished_at=utcnow() - timedelta(days=31))
    before = upload_row(upload_id)

    scheduler = start_process(scheduler_process)   # runs each periodic job once at start
    [manifest_file] = wait_until(lambda: manifests(directory), timeout=30, message="the archive")
    wait_until(lambda: count(Upload, id=upload_id) == 0, timeout=30, message="the upload to leave PostgreSQL")
    scheduler.kill()
    scheduler = start_process(scheduler_process)   # a restart registers it again, under the same id
    wait_until(lambda: JOB in scheduler.log.read_text(), timeout=30, message="the scheduler to register")
    scheduler.kill()
    scheduled = [job for job in Scheduler(connection=redis_connection()).get_jobs() if job.func_name == JOB]
    assert [(job.id, job.origin, job.timeout) for job in scheduled] == \
        [("periodic-archive-old-uploads", "maintenance", TIMEOUTS[JOB])]
    assert count(Record) == 0 and count(RowError) == 0 and count(UploadPiece) == 0
    assert sorted(path.name for path in directory.iterdir()) == \
        sorted(manifest_file.name.replace(".manifest.json", suffix)
               for suffix in (".errors.csv.gz", ".manifest.json", ".records.csv.gz"))

    manifest = json.loads(manifest_file.read_text())
    assert manifest["upload"]["id"] == upload_id and manifest["upload"]["filename"] == "people.csv"
    assert manifest["upload"]["raw_deleted_at"]   # the raw bytes are not archived
    files = manifest["files"]
    assert (files["records"]["rows"], files["row_errors"]["rows"]) == (2, 1)
    for description in files.values():
        assert file_sha256(directory / description["name"]) == description["sha256"]
    table = read_csv_gz(directory / files["records"]["name"])
    assert table[0][:8] == ["email", "first_name", "last_name", "phone", "company", "city", "country", "extra"]
    ann = dict(zip(table[0], table[1]))
    assert (ann["email"], ann["first_name"], ann["phone"], ann["company"]) == \
        ("ann@example.com", "'=1+2", "'+44 20 7946 0000", "Acme, Inc.")   # no formula in a spreadsheet
    assert json.loads(ann["extra"]) == {"plan": "gold"} and ann["source_line"] == "2"
    assert read_csv_gz(directory / files["row_errors"]["name"])[1][0] == "4"

    result = restore(app, manifest_file)
    assert result.exit_code == 0, result.output
    assert f"Restored upload {upload_id}: 2 records, 1 row errors." in result.output
    assert table_rows("records", upload_id) == records and table_rows("row_errors", upload_id) == row_errors
    assert {**upload_row(upload_id), "raw_deleted_at": None} == {**before, "raw_deleted_at": None}


def test_a_restored_upload_is_exactly_what_was_archived(app, client, operator, archive_dir):
    upload_id = old_upload(client, operator)
    records, row_errors, upload = table_rows("records", upload_id), table_rows("row_errors", upload_id), \
        upload_row(upload_id)
    assert archive_old_uploads() == [upload_id]
    assert count(Upload) == count(Record) == 0
    [manifest_file] = manifests(archive_dir)
    result = restore(app, str(manifest_file).replace(".manifest.json", ".records.csv.gz"))   # any of its files
    assert result.exit_code == 0, result.output
    assert f"Restored upload {upload_id}: 3 records, 2 row errors." in result.output
    assert "left out" not in result.output and "The archive files are kept" in result.output
    assert len(manifests(archive_dir)) == 1
    assert table_rows("records", upload_id) == records
    assert table_rows("row_errors", upload_id) == row_errors
    restored = upload_row(upload_id)
    assert restored["raw_deleted_at"] is not None and upload["raw_deleted_at"] is None
    assert {**restored, "raw_deleted_at": None} == dict(upload)
    # New rows do not take the restored numbers.
    new = Record(email="new@example.com", email_norm="new@example.com")
    db.session.add(new)
    db.session.commit()
    assert new.id > max(row["id"] for row in records)

    again = restore(app, manifest_file)
    assert again.exit_code != 0 and "restored before" in again.output and "Nothing was restored" in again.output
    assert count(Record) == 4


def test_emails_stored_again_meanwhile_are_left_out_and_named(app, client, operator, archive_dir):
    upload_id = old_upload(client, operator)
    assert archive_old_uploads() == [upload_id]
    newer = Record(email="BOB@example.com", email_norm="bob@example.com", first_name="Bob today")
    db.session.add(newer)
    db.session.commit()
    result = restore(app, manifests(archive_dir)[0])
    assert result.exit_code == 0, result.output
    assert f"Restored upload {upload_id}: 2 records, 2 row errors." in result.output
    assert "1 archived records were left out because their email is stored now" in result.output
    assert f"Bob@Example.com\t(stored as record #{newer.id})" in result.output
    db.session.expire_all()
    assert db.session.get(Record, newer.id).first_name == "Bob today"
    assert sorted(db.session.scalars(db.select(Record.email_norm).filter_by(upload_id=upload_id))) == \
        ["ann@example.com", "tab@example.com"]


def test_an_upload_number_taken_meanwhile_gives_the_restored_upload_a_new_one(app, client, operator, archive_dir):
    upload_id = old_upload(client, operator)
    assert archive_old_uploads() == [upload_id]
    db.session.add(Upload(id=upload_id, filename="other.csv", status="queued"))
    db.session.commit()
    result = restore(app, manifests(archive_dir)[0])
    assert result.exit_code == 0, result.output
    new_id = db.session.scalar(db.select(Upload.id).filter_by(filename="old.csv"))
    assert new_id != upload_id
    assert f"Restored upload {new_id} (archived as upload {upload_id}, a number another upload has now)" \
        in result.output
    assert count(Record, upload_id=new_id) == 3 and count(RowError, upload_id=new_id) == 2


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "delete", "edit the manifest"])
def test_a_damaged_archive_is_refused_and_nothing_is_restored(app, client, operator, archive_dir, damage):
    upload_id = old_upload(client, operator)
    assert archive_old_uploads() == [upload_id]
    [manifest_file] = manifests(archive_dir)
    records_file = archive_dir / json.loads(manifest_file.read_text())["files"]["records"]["name"]
    content = records_file.read_bytes()
    if damage == "flip a byte":
        records_file.write_bytes(content[:40] + bytes([content[40] ^ 1]) + content[41:])
    elif damage == "truncate":
        records_file.write_bytes(content[:-20])
    elif damage == "delete":
        records_file.unlink()
    else:
        manifest_file.write_text(manifest_file.read_text().replace('"rows": 3', '"rows": 4'))
    result = restore(app, manifest_file)
    assert result.exit_code != 0
    assert ("is damaged" in result.output or "is missing" in result.output or "holds 3 rows" in result.output)
    assert "Nothing was restored" in result.output and "Traceback" not in result.output
    assert count(Upload) == count(Record) == count(RowError) == 0


def test_a_file_that_is_no_archive_is_refused(app, tmp_path):
    for path, content in ((tmp_path / "x.manifest.json", "{not json"), (tmp_path / "y.manifest.json", "{}")):
        path.write_text(content)
        result = restore(app, path)
        assert result.exit_code != 0 and "is not an archive manifest" in result.output
    result = restore(app, tmp_path / "missing.manifest.json")
    assert result.exit_code != 0 and "does not exist" in result.output


def test_an_unwritable_archive_dir_leaves_postgresql_untouched(app, client, operator, tmp_path):
    (tmp_path / "a-file").write_text("")
    configure(app, ARCHIVE_AFTER_DAYS=30, ARCHIVE_DIR=str(tmp_path / "a-file" / "archive"))
    upload_id = old_upload(client, operator)
    with pytest.raises(OSError):
        archive_old_uploads()
    assert count(Upload, id=upload_id) == 1 and count(Record) == 3 and count(RowError) == 2


def test_a_failure_after_the_files_are_written_leaves_postgresql_untouched_and_no_files(app, client, operator,
                                                                                         archive_dir):
    """The database refuses the last deletion (a trigger stands in for any error there)."""
    upload_id = old_upload(client, operator)
    records = table_rows("records", upload_id)
    db.session.execute(db.text(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;"
        "CREATE TRIGGER refuse_upload_delete BEFORE DELETE ON uploads FOR EACH ROW EXECUTE FUNCTION refuse()"))
    db.session.commit()
    try:
        with pytest.raises(Exception, match="refused"):
            archive_old_uploads()
    finally:
        db.session.execute(db.text("DROP TRIGGER refuse_upload_delete ON uploads; DROP FUNCTION refuse()"))
        db.session.commit()
    assert table_rows("records", upload_id) == records and count(RowError) == 2 and count(UploadPiece) == 1
    assert list(archive_dir.iterdir()) == []   # the temporary files are removed
    assert archive_old_uploads() == [upload_id]   # and the next run succeeds


def test_archive_list_shows_each_archive(app, client, operator, archive_dir):
    upload_id = old_upload(client, operator)
    runner = app.test_cli_runner()
    assert "No archives in" in runner.invoke(args=["archive", "list"]).output
    archive_old_uploads()
    output = runner.invoke(args=["archive", "list"]).output
    assert f"{upload_id}\told.csv\tcompleted\t3 records\t2 row errors\tarchived " in output


def test_the_csv_opens_in_a_spreadsheet_reader(app, client, operator, archive_dir):
    """Quoted commas, quotes, line breaks and formula-looking cells survive a plain CSV reader."""
    upload_id = old_upload(client, operator)
    archive_old_uploads()
    manifest = json.loads(manifests(archive_dir)[0].read_text())
    header, *rows = read_csv_gz(archive_dir / manifest["files"]["records"]["name"])
    by_email = {row[0]: dict(zip(header, row)) for row in rows}
    assert by_email["Bob@Example.com"]["last_name"] == 'Line "two"'
    assert by_email["Bob@Example.com"]["company"] == "'-minus" and by_email["Bob@Example.com"]["country"] == "''quoted"
    assert json.loads(by_email["ann@example.com"]["extra"])["note"] == "line\nbreak"
    assert by_email["tab@example.com"]["first_name"] == "'\tTab"
    assert {row["upload_id"] for row in by_email.values()} == {str(upload_id)}
    errors = read_csv_gz(archive_dir / manifest["files"]["row_errors"]["name"])
    assert errors[0][:4] == ["line", "column_name", "reason", "raw_line"]
    assert errors[1][3] == "'=HYPERLINK(\"x\"),Eve,,,,"


def test_the_settings_are_read_and_checked():
    defaults = load_config({"SECRET_KEY": "s"})
    assert defaults["ARCHIVE_AFTER_DAYS"] == 0 and defaults["ARCHIVE_DIR"].endswith("/var/archive")
    config = load_config({"SECRET_KEY": "s", "ARCHIVE_AFTER_DAYS": "365", "ARCHIVE_DIR": "/srv/cold"})
    assert (config["ARCHIVE_AFTER_DAYS"], config["ARCHIVE_DIR"]) == (365, "/srv/cold")
    with pytest.raises(ConfigError, match="ARCHIVE_AFTER_DAYS must be 0 or more, got -1"):
        load_config({"SECRET_KEY": "s", "ARCHIVE_AFTER_DAYS": "-1"})
