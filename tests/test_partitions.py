"""Large uploads load into a partition of their own, bare, and are attached to
`records` once its indexes are built; a worker killed while building or
attaching leaves a job that finishes both when resumed."""
import psycopg
import pytest

from jobs import partition
from tests.conftest import scheduler_process, wait_until, worker_process
from tests.ingest_helpers import finished, row_errors, upload_file
from tests.test_ingest_faults import counts, people_csv
from webapp.extensions import db
from webapp.models import Record, RecordEmail, Upload


@pytest.fixture
def large_uploads(monkeypatch):
    """Every upload counts as large; the reaper resumes a killed job within seconds."""
    monkeypatch.setenv("OWN_PARTITION_MIN_BYTES", "1")
    monkeypatch.setenv("INGEST_CHUNK_ROWS", "500")
    monkeypatch.setenv("REAPER_SECONDS", "2")


def database(app):
    return psycopg.connect(app.config["DATABASE_URL"], autocommit=True)


def partition_state(app, upload_id):
    """(attached, number of indexes) of the upload's own partition."""
    with database(app) as connection:
        return connection.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(%s)), "
            "(SELECT count(*) FROM pg_index WHERE indrelid = to_regclass(%s))",
            (f"records_upload_{upload_id}",) * 2).fetchone()


def shared_index_count(app):
    with database(app) as connection:
        return connection.execute(
            "SELECT count(*) FROM pg_index WHERE indrelid = 'records_shared'::regclass").fetchone()[0]


def test_a_large_upload_is_stored_in_its_own_partition_and_listed_once_attached(
        app, client, large_uploads, start_process):
    db.session.add(Record(email="Kept@example.com", email_norm="kept@example.com", extra={}))
    db.session.commit()
    kept_id = db.session.scalar(db.select(Record.id))
    start_process(worker_process)
    content, expected = people_csv(3_000)
    content += b"KEPT@example.com,Again,Elsewhere\n"
    upload = finished(upload_file(client, "large.csv", content))

    assert upload.status == "completed", upload.failure_reason
    assert upload.indexing_started_at is not None and not upload.loading_alone
    assert partition_state(app, upload.id) == (True, shared_index_count(app))
    assert counts(upload) == (3_001, len(expected), 3_001 - 60 - len(expected), 60)
    stored = set(db.session.scalars(db.select(Record.email_norm).filter_by(upload_id=upload.id)))
    assert stored == expected
    assert db.session.scalar(db.select(db.func.count()).select_from(RecordEmail)) == len(expected) + 1
    assert (3_002, "email", f"email is already stored (record #{kept_id}); kept the stored record") \
        in row_errors(upload.id)
    page = client.get(f"/records?upload={upload.id}&sort=email&size=25").get_data(as_text=True)
    assert "p0@example.com" in page


def test_an_email_of_a_large_upload_cannot_be_stored_again_by_hand(app, client, large_uploads, start_process):
    start_process(worker_process)
    upload = finished(upload_file(client, "large.csv", b"email\nann@example.com\n"))
    assert partition_state(app, upload.id)[0] and upload.rows_inserted == 1
    with database(app) as connection, pytest.raises(psycopg.errors.UniqueViolation):
        connection.execute("INSERT INTO records (email, email_norm) VALUES ('ANN@example.com', 'ann@example.com')")


def blocked_then_killed(app, client, start_process, lock_statement, stage_reached):
    """Upload a large file while `lock_statement` holds back one step of its job; kill the worker
    once `stage_reached(upload_id)` holds, release the lock and let the reaper resume the job."""
    content, expected = people_csv(4_000)
    start_process(scheduler_process)
    with database(app) as blocker:
        upload_id = upload_file(client, "large.csv", content)
        partition.create(blocker, upload_id)    # as the job would, so that it can be locked first
        blocker.execute("BEGIN")
        blocker.execute(lock_statement.format(table=Upload.own_table_name(upload_id)))
        worker = start_process(worker_process)
        wait_until(lambda: stage_reached(upload_id), timeout=120, message="the blocked step")
        loading = client.get(f"/records?upload={upload_id}&sort=email&size=25").get_data(as_text=True)
        assert "p0@example.com" in loading
        assert "p0@example.com" not in client.get("/records?sort=email&size=25").get_data(as_text=True)
        worker.kill()
        blocker.execute("COMMIT")
    start_process(worker_process)
    upload = finished(upload_id, timeout=180)
    assert upload.status == "completed", upload.failure_reason
    assert partition_state(app, upload_id) == (True, shared_index_count(app))
    emails = db.session.scalars(db.select(Record.email_norm)).all()
    assert len(emails) == len(set(emails)) == len(expected) and set(emails) == expected
    assert counts(upload) == (4_000, len(expected), 4_000 - 80 - len(expected), 80)


def waiting_on_lock(app, statement_start):
    with database(app) as connection:
        return connection.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                  "AND starts_with(query, %s)", (statement_start,)).fetchone()[0]


def test_a_worker_killed_during_the_index_build_finishes_it_when_resumed(app, client, large_uploads,
                                                                          start_process):
    # CREATE INDEX needs a SHARE lock, which a ROW EXCLUSIVE one holds off; the load's COPYs do not.
    blocked_then_killed(app, client, start_process, "LOCK TABLE {table} IN ROW EXCLUSIVE MODE",
                        lambda upload_id: waiting_on_lock(app, f"CREATE INDEX records_upload_{upload_id}_")
                        or waiting_on_lock(app, f"ALTER TABLE records_upload_{upload_id} "))


def test_a_worker_killed_while_attaching_finishes_it_when_resumed(app, client, large_uploads, start_process):
    # ATTACH PARTITION needs a SHARE UPDATE EXCLUSIVE lock on records; the load itself never touches records.
    blocked_then_killed(app, client, start_process, "LOCK TABLE records IN SHARE UPDATE EXCLUSIVE MODE",
                        lambda upload_id: waiting_on_lock(app, "ALTER TABLE records ATTACH PARTITION "))


def test_the_oldest_partitions_beyond_the_kept_number_are_merged_into_the_shared_one(
        app, client, large_uploads, monkeypatch, start_process):
    monkeypatch.setenv("OWN_PARTITIONS_KEPT", "1")
    start_process(worker_process)
    first = finished(upload_file(client, "first.csv", b"email,city\nann@example.com,Oslo\nbob@example.com,Rome\n"))
    second = finished(upload_file(client, "second.csv", b"email\ncid@example.com\nANN@example.com\n"))
    # The second attach queued the upkeep job, which the worker runs with OWN_PARTITIONS_KEPT=1.
    wait_until(lambda: partition_state(app, first.id) == (False, 0), timeout=60,
               message="the first upload's table to be merged")
    assert partition_state(app, second.id)[0]
    with database(app) as connection:
        assert connection.execute("SELECT email_norm, segment FROM records ORDER BY id").fetchall() == [
            ("ann@example.com", 0), ("bob@example.com", 0), ("cid@example.com", second.id)]
        assert connection.execute("SELECT email_norm, segment FROM record_emails ORDER BY email_norm").fetchall() == [
            ("ann@example.com", 0), ("bob@example.com", 0), ("cid@example.com", second.id)]
        with pytest.raises(psycopg.errors.UniqueViolation):
            connection.execute("INSERT INTO records (email, email_norm) VALUES ('bob@x', 'bob@example.com')")
    assert db.session.get(Record, 1).city == "Oslo"
    assert "bob@example.com" in client.get("/records?sort=email").get_data(as_text=True)
