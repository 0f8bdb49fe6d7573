"""/metrics: Prometheus text, behind METRICS_TOKEN, read from PostgreSQL and Redis."""
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tests.conftest import wait_until, worker_process
from tests.ingest_helpers import upload_file
from webapp.extensions import db
from webapp.models import Upload, utcnow

TOKEN = "metrics-secret"
NAMES = ["intake_uploads", "intake_rows_inserted", "intake_rows_rejected", "intake_ingest_duration_seconds",
         "intake_redis_up", "intake_queue_jobs", "intake_failed_jobs", "intake_workers",
         "intake_websocket_connections"]


@pytest.fixture
def scrape(app):
    """GET /metrics as Prometheus does: no session, maybe a bearer token."""
    scraper = app.test_client()

    def scrape(authorization=None):
        return scraper.get("/metrics", headers={"Authorization": authorization} if authorization else {})
    return scrape


@pytest.fixture
def metrics(app, scrape):
    """The samples of one scrape with the right token: {(name, labels): value}."""
    app.config["METRICS_TOKEN"] = TOKEN

    def metrics():
        response = scrape(f"Bearer {TOKEN}")
        assert response.status_code == 200 and response.mimetype == "text/plain"
        return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(response.get_data(as_text=True))
                for sample in family.samples}
    return metrics


def test_metrics_answer_404_until_a_token_is_configured(scrape):
    assert scrape(f"Bearer {TOKEN}").status_code == 404


def test_a_wrong_or_missing_token_is_refused(app, scrape):
    app.config["METRICS_TOKEN"] = TOKEN
    for authorization in (None, "Bearer wrong", f"Basic {TOKEN}", "Bearer "):
        assert scrape(authorization).status_code == 401, authorization


def test_the_right_token_gets_every_metric_from_the_database_and_redis(client, metrics):
    ids = [upload_file(client, f"{number}.csv", b"email\na@example.com\n") for number in range(3)]
    started = utcnow() - timedelta(hours=1)
    finish(ids[0], "completed", started, seconds=2, rows_inserted=5, rows_invalid=2, duplicates_existing=1)
    finish(ids[1], "failed", started, seconds=100)
    samples = metrics()
    names = {name for name, _ in samples}
    assert all(any(sample.startswith(name) for sample in names) for name in NAMES)
    assert [samples["intake_uploads", (("status", status),)] for status in ("queued", "completed", "failed")] \
        == [1, 1, 1]
    assert samples["intake_uploads", (("status", "running"),)] == 0
    assert (samples["intake_rows_inserted", ()], samples["intake_rows_rejected", ()]) == (5, 3)
    assert samples["intake_queue_jobs", (("queue", "ingest"),)] == 3
    assert samples["intake_queue_jobs", (("queue", "maintenance"),)] == 0
    completed = (("status", "completed"),)
    assert samples["intake_ingest_duration_seconds_bucket", (("le", "1.0"), *completed)] == 0
    assert samples["intake_ingest_duration_seconds_bucket", (("le", "5.0"), *completed)] == 1
    assert samples["intake_ingest_duration_seconds_sum", completed] == pytest.approx(2)
    assert samples["intake_ingest_duration_seconds_bucket", (("le", "60.0"), ("status", "failed"))] == 0
    assert samples["intake_ingest_duration_seconds_count", (("status", "failed"),)] == 1
    assert samples["intake_redis_up", ()] == 1
    assert samples["intake_workers", (("state", "idle"),)] == 0


def finish(upload_id, status, started_at, seconds, **counters):
    db.session.execute(db.update(Upload).where(Upload.id == upload_id).values(
        status=status, started_at=started_at, finished_at=started_at + timedelta(seconds=seconds), **counters))
    db.session.commit()


def test_workers_and_open_websockets_are_counted(client, metrics, start_process, web_server):
    start_process(worker_process)
    wait_until(lambda: metrics()["intake_workers", (("state", "idle"),)] == 1, message="the worker")
    cookie = "session=" + client.get_cookie("session").value
    url = web_server.replace("http", "ws", 1) + "/ws?view=dashboard"
    with connect(url, additional_headers={"Cookie": cookie}, origin=web_server, open_timeout=10) as socket:
        socket.recv(timeout=10)
        assert metrics()["intake_websocket_connections", ()] == 1
    wait_until(lambda: metrics()["intake_websocket_connections", ()] == 0, message="the socket to close")
