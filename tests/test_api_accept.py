"""The API's accept path: grouped appends to the buffer, one-statement batches, token revocation."""
import json
import threading
import urllib.request

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import free_port, wait_until
from tests.ingest_helpers import finished, stored_emails
from webapp.api.buffer import BUFFER
from webapp.api.grouped_append import GroupedAppend
from webapp.extensions import db
from webapp.models import ApiToken, UploadPiece, utcnow
from webapp.queueing import redis_connection
from webapp.uploads.storage import PIECE_SIZE


def in_threads(count, work):
    """Run work(index) in `count` threads at once; returns their results or raises the first error."""
    results, errors = [None] * count, []
    start = threading.Barrier(count)

    def run(index):
        start.wait()
        try:
            results[index] = work(index)
        except Exception as error:  # noqa: BLE001 - handed to the test below
            errors.append(error)
    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def test_concurrent_appends_each_land_once_and_know_where(app):
    redis = redis_connection()
    appender = GroupedAppend("test:grouped")
    ends = in_threads(24, lambda index: appender.append(redis, [f"{index}-{n}".encode() for n in range(3)]))
    stored = redis.lrange("test:grouped", 0, -1)
    assert sorted(stored) == sorted(f"{index}-{n}".encode() for index in range(24) for n in range(3))
    assert len(set(ends)) == 24
    for index, end in enumerate(ends):   # each caller's length ends just after its own last item
        assert stored[end - 1] == f"{index}-2".encode()


def test_when_redis_is_down_every_waiting_append_fails_and_none_is_acknowledged(app):
    unreachable = Redis(port=free_port(), socket_connect_timeout=1)
    appender = GroupedAppend("test:grouped")
    failures = in_threads(8, lambda index: _failure(appender, unreachable))
    assert all(isinstance(failure, RedisConnectionError) for failure in failures)
    assert redis_connection().llen("test:grouped") == 0
    assert appender.append(redis_connection(), [b"after"]) == 1   # the appender is not stuck


def _failure(appender, redis):
    try:
        appender.append(redis, [b"x"])
    except RedisConnectionError as error:
        return error
    return None


def post_json(url, token, body):
    request = urllib.request.Request(url, method="POST", data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_concurrent_single_records_through_the_web_server_are_all_buffered(app, web_server, token):
    answers = in_threads(40, lambda index: post_json(f"{web_server}/api/records", token,
                                                     {"email": f"c{index}@example.com"}))
    assert [status for status, _ in answers] == [202] * 40
    buffered = [json.loads(item)["record"]["email"] for item in redis_connection().lrange(BUFFER, 0, -1)]
    assert sorted(buffered) == sorted(f"c{index}@example.com" for index in range(40))


def test_more_concurrent_batches_than_database_connections_are_all_accepted(app, web_server, token):
    """One web process has 15 pooled connections; a request must never hold two."""
    answers = in_threads(32, lambda index: post_json(f"{web_server}/api/ingest", token,
                                                     {"records": [{"email": f"b{index}-{n}@example.com"}
                                                                  for n in range(10)]}))
    assert [status for status, _ in answers] == [202] * 32
    assert len({answer["job_id"] for _, answer in answers}) == 32


def test_a_batch_larger_than_a_piece_is_stored_in_pieces_and_ingested_whole(api_client, worker):
    long_values = {"notes": "n" * 1000, "comment": "c" * 1000, "remark": "r" * 1000}  # each as long as a field may be
    records = [{"email": f"p{n}@example.com", **long_values} for n in range(999)] + [{"email": "P0@example.com"}]
    response = api_client("/api/ingest", {"records": records})
    assert response.status_code == 202
    job_id = response.get_json()["job_id"]
    pieces = db.session.scalars(db.select(db.func.octet_length(UploadPiece.data))
                                .where(UploadPiece.upload_id == job_id).order_by(UploadPiece.seq)).all()
    assert len(pieces) == 3 and max(pieces) <= PIECE_SIZE
    job = finished(job_id)
    assert (job.rows_inserted, job.duplicates_in_file, job.rows_invalid) == (999, 1, 0)
    assert len(stored_emails()) == 999


def test_a_revoked_token_stops_working_within_seconds(app, api_client, token):
    assert api_client("/api/records", {"email": "before@example.com"}).status_code == 202
    api_token = db.session.scalar(db.select(ApiToken).filter_by(token_hash=ApiToken.hash(token)))
    api_token.revoked_at = utcnow()
    db.session.commit()
    wait_until(lambda: api_client("/api/records", {"email": "after@example.com"}).status_code == 401,
               timeout=10, message="the revoked token to be refused")


@pytest.fixture
def api_client(app, token):
    client = app.test_client()

    def post(path, body):
        return client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    return post
