"""Live updates give way to page requests.

Under gunicorn's gevent workers the sockets and the page requests of a web
process share one thread. An event wakes every socket watching that upload at
once, and a page request that arrived meanwhile waited behind all their renders
and sends at each of its database queries (bench/README.md, "Live progress").
So a socket about to update its page first waits until this process serves no
page request, for at most GIVE_WAY_AT_MOST seconds, so that busy pages cannot
hold the updates back for long.
"""
import threading

GIVE_WAY_AT_MOST = 0.1


class PageRequests:
    """How many page requests (anything but a WebSocket) this process is serving."""

    def __init__(self):
        self._serving = 0
        self._changed = threading.Condition()

    def started(self):
        with self._changed:
            self._serving += 1

    def finished(self):
        with self._changed:
            self._serving -= 1
            if self._serving == 0:
                self._changed.notify_all()

    @property
    def busy(self):
        return self._serving > 0

    def give_way(self, at_most=GIVE_WAY_AT_MOST):
        """Returns once no page request is being served, or after `at_most` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: not self.busy, timeout=at_most)


class CountingPageRequests:
    """WSGI middleware: counts the requests it passes on, except WebSocket handshakes,
    whose request lasts as long as the socket."""

    def __init__(self, wsgi_app, page_requests):
        self.wsgi_app = wsgi_app
        self.page_requests = page_requests

    def __call__(self, environ, start_response):
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            return self.wsgi_app(environ, start_response)
        self.page_requests.started()
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            self.page_requests.finished()


def register(app):
    page_requests = PageRequests()
    app.extensions["page_requests"] = page_requests
    app.wsgi_app = CountingPageRequests(app.wsgi_app, page_requests)
