"""Live updates wait while the web process serves page requests (webapp/live/right_of_way.py)."""
import threading
import time

import pytest

from webapp.live.right_of_way import CountingPageRequests, PageRequests


def serve(page_requests, environ):
    """Passes one request through the middleware; returns whether it was counted while served."""
    seen = []

    def app(environ, start_response):
        seen.append(page_requests.busy)
        return [b""]
    CountingPageRequests(app, page_requests)(environ, lambda status, headers: None)
    return seen[0]


def test_page_requests_are_counted_while_served_and_socket_handshakes_never():
    page_requests = PageRequests()
    assert serve(page_requests, {"PATH_INFO": "/uploads"}) is True
    assert serve(page_requests, {"PATH_INFO": "/ws", "HTTP_UPGRADE": "WebSocket"}) is False
    assert not page_requests.busy


def test_a_failing_request_is_no_longer_counted():
    page_requests = PageRequests()

    def failing(environ, start_response):
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        CountingPageRequests(failing, page_requests)({}, lambda status, headers: None)
    assert not page_requests.busy


def test_a_socket_sends_once_the_page_request_is_served():
    page_requests = PageRequests()
    page_requests.started()
    order = []
    socket = threading.Thread(target=lambda: (page_requests.give_way(at_most=60), order.append("socket")))
    socket.start()
    socket.join(timeout=0.2)  # time to start waiting; the order holds either way
    order.append("page served")
    page_requests.finished()
    socket.join(timeout=60)
    assert order == ["page served", "socket"]


def test_a_long_page_request_holds_the_socket_back_only_so_long():
    page_requests = PageRequests()
    page_requests.started()
    started = time.monotonic()
    page_requests.give_way(at_most=0.05)
    assert time.monotonic() - started >= 0.05
    assert page_requests.busy
