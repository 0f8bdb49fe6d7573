"""The JSON API against real PostgreSQL, Redis, RQ workers and the scheduler."""
import json
import os

import psycopg
import pytest
from rq.registry import StartedJobRegistry

from tests.conftest import scheduler_process, wait_until, worker_process
from tests.ingest_helpers import finished, stored_emails
from webapp.api import buffer
from webapp.api.buffer import BUFFER, PROCESSING
from webapp.extensions import db
from webapp.models import ApiToken, Upload, utcnow
from webapp.queueing import INGEST_QUEUE, ingest_job_id, redis_connection


@pytest.fixture
def api(app, token):
    client = app.test_client()

    def call(method, path, body=None, **kwargs):
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return client.open(path, method=method, json=body, headers=headers, **kwargs)
    return call


def test_missing_wrong_and_revoked_tokens_get_401_json(app, api, token):
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {token}"}):
        response = client.get("/api/jobs/1", headers=headers)
        assert response.status_code == 401 and response.is_json
    db.session.execute(db.update(ApiToken).values(revoked_at=utcnow()))
    db.session.commit()
    from webapp.api import auth
    auth._cache.clear()
    assert api("GET", "/api/jobs/1").status_code == 401


def test_the_browser_session_does_not_open_the_api_and_tokens_do_not_open_pages(app, client, token):
    assert client.get("/api/jobs/1").status_code == 401
    response = app.test_client().get("/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 302


def test_a_batch_is_ingested_by_a_worker_and_reported(api, worker, client):
    records = [{"email": "a@example.com", "first_name": "Ann", "tier": "gold", "age": 41},
               {"email": "A@EXAMPLE.com"}, {"email": "not an email"}, {"email": "b@example.com", "city": None}]
    response = api("POST", "/api/ingest", {"records": records})
    assert response.status_code == 202
    job_id = response.get_json()["job_id"]
    assert response.get_json()["status_url"].endswith(f"/api/jobs/{job_id}")
    finished(job_id)
    job = api("GET", f"/api/jobs/{job_id}").get_json()
    assert job["status"] == "completed" and job["progress"] == 100
    assert job["counts"] == {"received": 4, "inserted": 2, "updated": 0, "duplicate": 1, "invalid": 1}
    errors = api("GET", job["errors_url"]).get_json()
    assert errors == {"next": None, "errors": [
        {"index": 1, "kind": "duplicate", "field": "email", "reason": "duplicate of record 1 in this batch"},
        {"index": 2, "kind": "invalid", "field": "email", "reason": "'not an email' is not a valid email address"}]}
    assert stored_emails() == ["a@example.com", "b@example.com"]
    page = client.get("/uploads").get_data(as_text=True)
    assert "API batch of 4 records" in page
    assert "through the API (billing service)" in client.get(f"/uploads/{job_id}").get_data(as_text=True)


def errors_of(api, url):
    """Every error of a job, following `next` from page to page."""
    errors = []
    while url:
        page = api("GET", url).get_json()
        errors += page["errors"]
        url = page["next"]
    return errors


def test_the_errors_of_a_job_say_which_are_invalid_and_which_duplicates(api, worker, monkeypatch):
    stored = api("POST", "/api/ingest", {"records": [{"email": f"s{n}@example.com"} for n in range(10)]})
    finished(stored.get_json()["job_id"])
    records = ([{"email": f"n{n}@example.com"} for n in range(960)] + [{"email": f"bad {n}"} for n in range(15)]
               + [{"email": f"N{n}@EXAMPLE.com"} for n in range(15)]         # repeats within the batch
               + [{"email": f"s{n}@example.com"} for n in range(10)])        # repeats of stored records
    job_id = api("POST", "/api/ingest", {"records": records}).get_json()["job_id"]
    finished(job_id)
    counts = api("GET", f"/api/jobs/{job_id}").get_json()["counts"]
    assert (counts["inserted"], counts["invalid"], counts["duplicate"]) == (960, 15, 25)
    monkeypatch.setattr("webapp.api.views.ERRORS_PAGE", 10)
    everything = errors_of(api, f"/api/jobs/{job_id}/errors")
    assert [error["index"] for error in everything] == list(range(960, 1000))
    for kind, count in (("invalid", counts["invalid"]), ("duplicate", counts["duplicate"])):
        listed = errors_of(api, f"/api/jobs/{job_id}/errors?kind={kind}")
        assert listed == [error for error in everything if error["kind"] == kind] and len(listed) == count


@pytest.mark.parametrize("kind", ["", "duplicates", "INVALID"])
def test_an_unknown_kind_of_error_is_400(api, kind):
    job_id = api("POST", "/api/ingest", {"records": [{"email": "a@example.com"}]}).get_json()["job_id"]
    response = api("GET", f"/api/jobs/{job_id}/errors?kind={kind}")
    assert response.status_code == 400 and response.is_json
    assert response.get_json()["message"] == f"kind must be invalid or duplicate, not {kind!r}"


def test_reject_and_update_modes_work_through_the_api(api, worker):
    first = api("POST", "/api/ingest", {"records": [{"email": "a@example.com", "city": "Oslo"}]}).get_json()
    finished(first["job_id"])
    updated = api("POST", "/api/ingest", {"records": [{"email": "A@example.com", "city": "Rome"}],
                                          "on_duplicate": "update"}).get_json()
    assert finished(updated["job_id"]).rows_updated == 1
    rejected = api("POST", "/api/ingest", {"records": [{"email": "n@example.com"}, {"email": "bad"}],
                                           "on_duplicate": "reject"}).get_json()
    job = finished(rejected["job_id"])
    assert job.status == "failed" and "nothing was stored" in job.failure_reason
    assert stored_emails() == ["A@example.com"]


def test_a_worker_killed_during_a_batch_loses_and_doubles_nothing(app, api, start_process, monkeypatch):
    """An API batch runs in the worker itself, with no work horse: the job dies with the
    worker, and the scheduler's reaper hands it to another worker."""
    monkeypatch.setenv("REAPER_SECONDS", "2")
    records = [{"email": f"k{number}@example.com"} for number in range(999)] + [{"email": "K7@EXAMPLE.com"}]
    job_id = api("POST", "/api/ingest", {"records": records}).get_json()["job_id"]
    with psycopg.connect(os.environ["DATABASE_URL"]) as holder:
        # The job stops at its first change to the upload, while this transaction holds the row.
        holder.execute("SELECT 1 FROM uploads WHERE id = %s FOR UPDATE", (job_id,))
        worker = start_process(worker_process)
        started = StartedJobRegistry(INGEST_QUEUE, connection=redis_connection())
        wait_until(lambda: ingest_job_id(job_id) in started.get_job_ids(), message="the worker to start the job")
        worker.kill()
    start_process(scheduler_process)
    start_process(worker_process)
    job = finished(job_id)
    assert (job.status, job.rows_inserted, job.duplicates) == ("completed", 999, 1)
    assert len(stored_emails()) == 999


@pytest.mark.parametrize("body, path", [
    ([], "$"),
    ({"records": []}, "$.records"),
    ({"records": "a@example.com"}, "$.records"),
    ({"records": [{"email": "a@example.com"}, "b@example.com"]}, "$.records[1]"),
    ({"records": [{"email": {"nested": True}}]}, "$.records[0].email"),
    ({"records": [{"email": "a@example.com", "vip": True}]}, "$.records[0].vip"),
    ({"records": [{"email": "a@example.com"}], "on_duplicate": "merge"}, "$.on_duplicate"),
    ({"records": [{"email": "a@example.com"}], "validate_only": "yes"}, "$.validate_only"),
    ({"records": [{"email": "a@example.com"}], "mode": "fast"}, "$.mode"),
])
def test_a_wrong_shape_is_422_with_the_json_path(api, body, path):
    response = api("POST", "/api/ingest", body)
    assert response.status_code == 422
    assert response.get_json()["path"] == path


def test_malformed_json_too_many_records_and_unknown_jobs(api):
    response = api("POST", "/api/ingest", data="{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.is_json
    response = api("POST", "/api/ingest", {"records": [{"email": f"{n}@example.com"} for n in range(1001)]})
    assert response.status_code == 413 and "at most 1,000 records" in response.get_json()["message"]
    assert api("GET", "/api/jobs/999").status_code == 404
    missing = api("GET", "/api/nothing-here")
    assert missing.status_code == 404 and missing.is_json
    assert api("GET", "/api/ingest").status_code == 405


@pytest.mark.parametrize("path", ["/api/ingest", "/api/records"])
@pytest.mark.parametrize("records, message", [
    ([{"email": "a\x00@example.com"}], "$.records[0].email contains a NUL character."),
    ([{"email": "a@example.com"}, {"email": "b@example.com", "city": "\ud800"}],
     "the body is not valid JSON: no low surrogate in string"),
    ([{"email": "a@example.com", "note\ud800": "x"}], "the body is not valid JSON: no low surrogate in string"),
    ([{"email": "a@example.com", "notes": "x" * 2**20}], "$.records[0].notes is longer than 4,000 characters."),
    ([{"email": "a@example.com", "notes": '"' * 4001}], "$.records[0].notes is longer than 4,000 characters."),
])
def test_unusable_text_in_a_json_body_is_a_clear_400(api, path, records, message):
    # Encoded here: the app's own encoder would refuse the lone surrogates before sending.
    response = api("POST", path, data=json.dumps({"records": records}), headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.is_json
    assert message in response.get_json()["message"]
    assert db.session.scalar(db.select(db.func.count(Upload.id))) == 0
    assert not redis_connection().exists(BUFFER)


@pytest.mark.parametrize("text", ['\\u0000 is no NUL', '"' * 3000, "x" * 4000, "é" * 4000, "\\" * 3000])
def test_text_that_only_looks_unusable_in_the_json_is_taken(api, text):
    response = api("POST", "/api/records", data=json.dumps({"email": "a@example.com", "notes": text}),
                   headers={"Content-Type": "application/json"})
    assert response.status_code == 202


def test_control_characters_in_a_batch_are_judged_record_by_record(api, worker):
    """A file of mostly control characters is refused as binary at the form; a batch's
    CSV is Intake's own, so its records are judged one by one like any other."""
    records = [{"email": "a@example.com", "notes": "\x01" * 3000}, {"email": "b@example.com"}]
    response = api("POST", "/api/ingest", {"records": records})
    assert response.status_code == 202
    job = finished(response.get_json()["job_id"])
    assert (job.rows_inserted, job.rows_invalid) == (1, 1)
    assert stored_emails() == ["b@example.com"]


def test_unusable_text_in_an_api_query_parameter_is_a_clear_400(api):
    response = api("GET", "/api/jobs/1/errors?after=%00")
    assert response.status_code == 400 and response.is_json
    assert response.get_json() == {"error": "Bad request",
                                   "message": "The query parameter 'after' contains a NUL character."}


def test_an_oversized_body_is_413_json(app, api):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = api("POST", "/api/ingest", {"records": [{"email": "a@example.com", "x": "y" * 2000}]})
    assert response.status_code == 413 and response.is_json


def test_buffered_records_are_flushed_by_the_scheduler_into_todays_stream(api, start_process, monkeypatch,
                                                                           client):
    monkeypatch.setenv("BUFFER_FLUSH_SECONDS", "1")
    assert api("POST", "/api/records", {"email": "one@example.com", "company": "Acme"}).status_code == 202
    many = {"records": [{"email": f"m{n}@example.com"} for n in range(100)] + [{"email": "bad"}]}
    assert api("POST", "/api/records", many).status_code == 413
    many["records"] = many["records"][1:]
    assert api("POST", "/api/records", many).get_json() == {"accepted": 100}
    start_process(scheduler_process)
    start_process(worker_process)
    wait_until(lambda: len(stored_emails()) == 100, message="buffer flushed")
    stream = db.session.scalar(db.select(Upload).filter_by(source="api-stream"))
    db.session.refresh(stream)
    assert (stream.lines_read, stream.rows_inserted, stream.rows_invalid) == (101, 100, 1)
    assert stream.filename.startswith("API stream ")
    assert "API stream" in client.get("/uploads").get_data(as_text=True)
    assert not redis_connection().exists(BUFFER) and not redis_connection().exists(PROCESSING)


def test_a_flush_that_died_leaves_its_records_for_the_next(app, api):
    from jobs.flush import flush_api_buffer
    api("POST", "/api/records", {"records": [{"email": "a@example.com"}, {"email": "b@example.com"}]})
    redis = redis_connection()
    redis.rename(BUFFER, PROCESSING)   # what a flush killed before its commit leaves behind
    api("POST", "/api/records", {"email": "c@example.com"})
    assert flush_api_buffer() == 2
    assert stored_emails() == ["a@example.com", "b@example.com"]
    assert flush_api_buffer() == 1
    assert stored_emails() == ["a@example.com", "b@example.com", "c@example.com"]
    redis.rpush(PROCESSING, json.dumps({"record": {"email": "a@example.com"}, "token": "t",
                                        "received_at": "x"}))
    assert flush_api_buffer() == 1   # stored twice: harmless, a duplicate
    assert stored_emails() == ["a@example.com", "b@example.com", "c@example.com"]
    assert db.session.scalar(db.select(Upload.duplicates_in_file)) == 1


def test_killing_the_flusher_mid_flush_loses_no_record(app, start_process, monkeypatch):
    from webapp.api.auth import Caller
    monkeypatch.setenv("BUFFER_FLUSH_SECONDS", "1")
    caller = Caller(1, "feed", None)
    for start in range(0, 60_000, 1_000):
        buffer.accept([{"email": f"k{n}@example.com"} for n in range(start, start + 1_000)], caller)
    start_process(scheduler_process)
    flusher = start_process(worker_process)
    redis = redis_connection()
    wait_until(lambda: 0 < redis.llen(PROCESSING) < 60_000, message="a flush under way")
    flusher.kill()
    assert 0 < redis.llen(PROCESSING)
    start_process(worker_process)
    wait_until(lambda: not redis.exists(PROCESSING) and len(stored_emails()) == 60_000, timeout=120,
               message="every buffered record stored")
    assert len(set(stored_emails())) == 60_000


def test_the_spec_lists_exactly_the_api_routes(app, api):
    spec = api("GET", "/api/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    served = {rule.rule.replace("<id:job_id>", "{job_id}") for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/api/")}
    assert set(spec["paths"]) == served


def test_the_docs_page_is_for_logged_in_operators(app, client):
    page = client.get("/api/docs").get_data(as_text=True)
    assert "POST /api/ingest" in page and "Bearer" in page
    assert app.test_client().get("/api/docs").status_code == 302


def test_operators_create_and_revoke_tokens_on_a_page(client):
    from tests.conftest import csrf_token
    token = csrf_token(client, "/settings/tokens")
    page = client.post("/settings/tokens", data={"name": "crm", "csrf_token": token}).get_data(as_text=True)
    secret = page.split('id="new-token">')[1].split("<")[0]
    assert client.get("/api/jobs/1", headers={"Authorization": f"Bearer {secret}"}).status_code == 404
    stored = db.session.scalar(db.select(ApiToken).filter_by(name="crm"))
    assert stored.token_hash != secret and secret not in client.get("/settings/tokens").get_data(as_text=True)
    client.post(f"/settings/tokens/{stored.id}/revoke", data={"csrf_token": token})
    from webapp.api import auth
    auth._cache.clear()
    assert client.get("/api/jobs/1", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_the_tokens_page_moved_from_its_slashed_address_and_a_form_posted_there_still_works(client):
    from tests.conftest import csrf_token
    assert client.get("/settings/tokens/").location == "/settings/tokens"
    form = {"name": "crm", "csrf_token": csrf_token(client, "/settings/tokens")}
    response = client.post("/settings/tokens/", data=form)
    assert response.status_code == 308 and response.location == "/settings/tokens"
    # What a browser does with a 308: the same POST again, at the new address.
    assert 'id="new-token"' in client.post(response.location, data=form).get_data(as_text=True)


def test_the_cli_creates_a_token(app):
    secret = app.test_cli_runner().invoke(args=["tokens", "create", "etl"]).output.strip()
    assert secret.startswith("intake_")
    assert db.session.scalar(db.select(ApiToken).filter_by(name="etl")).token_hash == ApiToken.hash(secret)


def test_ids_out_of_the_database_range_are_404s(api, client):
    assert api("GET", "/api/jobs/2147483648").status_code == 404
    assert api("GET", "/api/jobs/1/errors?after=99999999999999999999999").status_code == 404
    assert client.get("/uploads/99999999999999999999").status_code == 404
