"""The WebSocket feed, with a real websockets client against a real server."""
import re
import time
from contextlib import ExitStack

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.conftest import wait_until
from tests.ingest_helpers import emails_csv, finished, upload_file
from webapp.events import UPLOAD_EVENTS, publish
from webapp.extensions import db
from webapp.live.views import REUSE_FOR_REFRESH, oldest_render_to_send
from webapp.models import Upload
from webapp.queueing import redis_connection


@pytest.fixture
def session_cookie(app, client):
    return "session=" + client.get_cookie("session").value


def socket(web_server, cookie, query, origin=None):
    url = web_server.replace("http", "ws", 1) + "/ws?" + query
    return connect(url, additional_headers={"Cookie": cookie}, origin=origin or web_server, open_timeout=10,
                   close_timeout=2)


def counter(html, name):
    match = re.search(rf'data-counter="{name}">([\d,]+)<', html)
    return int(match.group(1).replace(",", "")) if match else None


def test_anonymous_sockets_are_refused(web_server):
    with pytest.raises(InvalidStatus) as refused:
        socket(web_server, "", "view=dashboard")
    assert refused.value.response.status_code == 401


def test_a_foreign_origin_is_refused_with_a_close_code(web_server, session_cookie):
    with socket(web_server, session_cookie, "view=dashboard", origin="https://evil.example") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 1008


def test_sockets_are_not_compressed(web_server, session_cookie):
    with socket(web_server, session_cookie, "view=dashboard") as ws:
        assert "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert "dashboard" in ws.recv(timeout=10)


def test_connecting_brings_the_page_up_to_date(web_server, session_cookie, client):
    upload_id = upload_file(client, "a.csv", b"email\na@example.com\n")
    db.session.execute(db.update(Upload).where(Upload.id == upload_id).values(lines_read=7, status="running"))
    db.session.commit()
    with socket(web_server, session_cookie, f"view=upload&id={upload_id}") as ws:
        first = ws.recv(timeout=10)
    assert f'id="upload-{upload_id}-progress" hx-swap-oob="true"' in first
    assert counter(first, "lines") == 7


def test_a_burst_of_events_is_throttled_but_ends_on_the_final_state(web_server, session_cookie, client):
    upload_id = upload_file(client, "a.csv", b"email\na@example.com\n")
    with socket(web_server, session_cookie, f"view=upload&id={upload_id}") as ws:
        ws.recv(timeout=10)
        redis = redis_connection()
        for lines in range(1, 201):
            db.session.execute(db.update(Upload).where(Upload.id == upload_id).values(lines_read=lines))
            db.session.commit()
            publish(redis, upload_id, "running")
        received = []
        started = time.monotonic()
        while not received or counter(received[-1], "lines") != 200:
            received.append(ws.recv(timeout=10))
        elapsed = time.monotonic() - started
    assert len(received) < 50, "200 events should not become 200 messages"
    assert counter(received[-1], "lines") == 200
    assert elapsed < 30


def test_a_full_refresh_due_with_an_event_still_shows_the_event():
    # The final "completed" event once arrived just as a socket's full refresh was due; the
    # refresh reused a render from before the event and the page kept "running" for 10 s.
    shown, event, now = 100.0, 100.9, 101.0
    assert oldest_render_to_send(shown, event, refresh=True, now=now) == event
    assert oldest_render_to_send(shown, event, refresh=False, now=now) == event
    assert oldest_render_to_send(shown, 50.0, refresh=True, now=now) == now - REUSE_FOR_REFRESH


def test_many_watchers_share_one_redis_subscription(web_server, session_cookie, client):
    upload_id = upload_file(client, "a.csv", b"email\na@example.com\n")
    other_id = upload_file(client, "b.csv", b"email\nb@example.com\n")
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket(web_server, session_cookie, f"view=upload&id={upload_id}"))
                   for _ in range(5)]
        for ws in sockets:
            ws.recv(timeout=10)
        redis = redis_connection()
        wait_until(lambda: redis.pubsub_numsub(UPLOAD_EVENTS) == [(UPLOAD_EVENTS.encode(), 1)],
                   message="the web process to subscribe once")
        publish(redis, other_id, "running")  # another upload's news goes to nobody here
        db.session.execute(db.update(Upload).where(Upload.id == upload_id).values(lines_read=42))
        db.session.commit()
        publish(redis, upload_id, "running")
        for ws in sockets:
            # A refresh may come first: the process re-reads every page when it (re)subscribes.
            assert any(counter(ws.recv(timeout=10), "lines") == 42 for _ in range(3))


def test_a_real_ingest_streams_to_the_socket_until_completed(web_server, session_cookie, client, worker):
    content = emails_csv("w", 20_000)
    upload_id = upload_file(client, "w.csv", content)
    with socket(web_server, session_cookie, f"view=upload&id={upload_id}") as ws:
        messages = []
        while not messages or "status-completed" not in messages[-1]:
            messages.append(ws.recv(timeout=60))
    assert counter(messages[-1], "inserted") == 20_000
    assert finished(upload_id).rows_inserted == 20_000


def test_the_uploads_list_and_dashboard_get_their_own_fragments(web_server, session_cookie, client):
    upload_id = upload_file(client, "a.csv", b"email\na@example.com\n")
    with socket(web_server, session_cookie, f"view=uploads&ids={upload_id}") as ws:
        assert f'<tr id="upload-row-{upload_id}" hx-swap-oob="true"' in ws.recv(timeout=10)
    with socket(web_server, session_cookie, "view=dashboard") as ws:
        assert 'id="dashboard-active" hx-swap-oob="true"' in ws.recv(timeout=10)


def test_polling_serves_the_same_fragments(client):
    upload_id = upload_file(client, "a.csv", b"email\na@example.com\n")
    html = client.get(f"/live/poll?view=upload&id={upload_id}").get_data(as_text=True)
    assert f'id="upload-{upload_id}-progress" hx-swap-oob="true"' in html
    assert client.get("/live/poll?view=nonsense").status_code == 400
    assert client.get("/live/poll?view=uploads&ids=1,x").status_code == 400


def test_cancel_and_retry_on_a_real_worker(client, start_process, monkeypatch):
    from tests.conftest import csrf_token, worker_process
    monkeypatch.setenv("INGEST_CHUNK_ROWS", "1000")
    content = emails_csv("c", 300_000)
    upload_id = upload_file(client, "c.csv", content)
    start_process(worker_process)
    wait_until(lambda: checkpoint(upload_id) > 0, message="first chunk")
    token = csrf_token(client, f"/uploads/{upload_id}")
    assert client.post(f"/uploads/{upload_id}/cancel", data={"csrf_token": token}).status_code == 303
    cancelled = finished(upload_id)
    assert cancelled.status == "cancelled" and 0 < cancelled.rows_inserted < 300_000
    page = client.get(f"/uploads/{upload_id}").get_data(as_text=True)
    assert "Retry from where it stopped" in page
    response = client.post(f"/uploads/{upload_id}/retry", data={"csrf_token": token},
                           headers={"HX-Request": "true"})
    assert f'id="upload-{upload_id}-progress" hx-swap-oob="true"' in response.get_data(as_text=True)
    done = finished(upload_id)
    assert (done.status, done.rows_inserted, done.duplicates) == ("completed", 300_000, 0)


def checkpoint(upload_id):
    db.session.expire_all()
    return db.session.get(Upload, upload_id).checkpoint_records


def test_cancel_while_queued_stops_at_once(client):
    from tests.conftest import csrf_token
    upload_id = upload_file(client, "q.csv", b"email\na@example.com\n")
    token = csrf_token(client, f"/uploads/{upload_id}")
    client.post(f"/uploads/{upload_id}/cancel", data={"csrf_token": token})
    assert finished(upload_id).status == "cancelled"
    assert client.post(f"/uploads/{upload_id}/cancel").status_code == 400  # no CSRF token
