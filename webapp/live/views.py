import threading
import time
from collections import defaultdict

from flask import Blueprint, current_app, request

from webapp.extensions import db, sock
from webapp.live.hub import EventHub
from webapp.live.watch import Watch

blueprint = Blueprint("live", __name__)

# At most one update per upload every THROTTLE seconds; everything is re-read
# from PostgreSQL, so skipping events never loses the final state.
THROTTLE = 0.25
# Even with no event at all (Redis restarted, events lost), refresh this often.
FULL_REFRESH = 10.0
POLICY_VIOLATION = 1008
# A full refresh may reuse a render another watcher of the same page started this recently.
REUSE_FOR_REFRESH = 1.0
# The watchers of one page in this process share its renders: {watch key: (monotonic start, html)}.
_renders = {}
_render_locks = defaultdict(threading.Lock)


def origin_allowed():
    """Browsers always send Origin on a WebSocket; it must be this site (cross-site hijacking)."""
    origin = request.headers.get("Origin")
    allowed = {request.host_url.rstrip("/"), *current_app.config.get("ALLOWED_ORIGINS", ())}
    return origin is None or origin.rstrip("/") in allowed


@blueprint.get("/live/poll")
def poll():
    """The fragments the socket would push, for pages that cannot keep a socket open."""
    return Watch.from_args(request.args).render()


@sock.route("/ws", bp=blueprint)
def feed(ws):
    if not origin_allowed():
        ws.close(reason=POLICY_VIOLATION, message="cross-site WebSocket refused")
        return
    watch = Watch.from_args(request.args)
    hub = event_hub()
    listener = hub.listen(watch)
    try:
        stream(ws, watch, listener)
    finally:
        hub.leave(listener)


def event_hub():
    """This process's one subscription to upload events, started by its first socket."""
    extensions = current_app.extensions
    if "live_hub" not in extensions:
        extensions.setdefault("live_hub", EventHub(current_app.config["REDIS_URL"]))
    return extensions["live_hub"]


def shared_render(watch, not_before):
    """(start, html) of the page's fragments, rendered by the first watcher of the same page in this
    process that needs a render started at or after `not_before`, and reused by the others."""
    with _render_locks[watch.key]:
        started, html = _renders.get(watch.key, (float("-inf"), ""))
        if started < not_before:
            started = time.monotonic()
            html = watch.render()
            # A long-lived socket must not keep a database connection or an old snapshot.
            db.session.remove()
            _renders[watch.key] = (started, html)
            for key in [key for key, (at, _) in _renders.items()
                        if started - at > 2 * FULL_REFRESH and not _render_locks[key].locked()]:
                del _renders[key], _render_locks[key]
    return started, html


def stream(ws, watch, listener):
    shown, html = shared_render(watch, time.monotonic())
    ws.send(html)
    pending, newest, last_sent, last_full = False, 0.0, 0.0, time.monotonic()
    while True:
        heard = listener.wait(timeout=THROTTLE)
        if heard is not None:
            pending, newest = True, heard
        now = time.monotonic()
        # Never send a render older than the event, nor older than the one the page shows.
        if now - last_full >= FULL_REFRESH:
            shown, html = shared_render(watch, max(shown, now - REUSE_FOR_REFRESH))
            ws.send(html)
            pending, last_full, last_sent = False, now, now
        elif pending and now - last_sent >= THROTTLE:
            shown, html = shared_render(watch, max(shown, newest))
            ws.send(html)
            pending, last_sent = False, now
        ws.receive(timeout=0)  # raises ConnectionClosed once the page has gone
