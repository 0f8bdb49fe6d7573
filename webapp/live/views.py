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
CLOSED_CHECK = 1.0
# A full refresh may reuse a render another watcher of the same page started this recently.
REUSE_FOR_REFRESH = 1.0
# The watchers of one page in this process share its renders: {watch key: (monotonic start, fragments)}.
_renders = {}
_render_locks = defaultdict(threading.Lock)


def origin_allowed():
    """Browsers always send Origin on a WebSocket; it must be this site (cross-site hijacking)."""
    origin = request.headers.get("Origin")
    allowed = {request.host_url.rstrip("/"), *current_app.config.get("ALLOWED_ORIGINS", ())}
    return origin is None or origin.rstrip("/") in allowed


@blueprint.before_request
def decline_compression():
    """Take back the browser's offer of permessage-deflate before the socket is accepted
    (simple-websocket accepts every offer and has no setting for it). The fragments are
    small and go over one connection each; compressing every message once per socket
    cost the web process a third of its time with 200 open pages, time its page
    requests waited for (bench/README.md, "Live progress")."""
    request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)


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
    """(start, fragments) of the page, rendered by the first watcher of the same page in this
    process that needs a render started at or after `not_before`, and reused by the others."""
    with _render_locks[watch.key]:
        started, fragments = _renders.get(watch.key, (float("-inf"), ()))
        if started < not_before:
            current_app.extensions["page_requests"].give_way()
            started = time.monotonic()
            fragments = watch.fragments()
            # A long-lived socket must not keep a database connection or an old snapshot.
            db.session.remove()
            _renders[watch.key] = (started, fragments)
            for key in [key for key, (at, _) in _renders.items()
                        if started - at > 2 * FULL_REFRESH and not _render_locks[key].locked()]:
                del _renders[key], _render_locks[key]
    return started, fragments


def stream(ws, watch, listener):
    page_requests = current_app.extensions["page_requests"]
    shown, fragments = shared_render(watch, time.monotonic())
    ws.send("".join(fragments))
    pending, newest, last_sent, last_full = False, 0.0, 0.0, time.monotonic()
    while True:
        # Asleep until news, the throttle's end or the next full refresh; and at least once
        # a second, to notice a page that has gone.
        next_due = last_sent + THROTTLE if pending else last_full + FULL_REFRESH
        heard = listener.wait(timeout=min(max(0.0, next_due - time.monotonic()), CLOSED_CHECK))
        if heard is not None:
            pending, newest = True, heard
        now = time.monotonic()
        refresh = now - last_full >= FULL_REFRESH
        if refresh or (pending and now - last_sent >= THROTTLE):
            rendered = shared_render(watch, oldest_render_to_send(shown, newest, refresh, now))
            # Again before sending: the sockets that waited on the render's lock all go on at once.
            page_requests.give_way()
            shown, fragments = send_changes(ws, fragments, *rendered)
            pending, last_sent = False, now
            if refresh:
                last_full = now
        ws.receive(timeout=0)  # raises ConnectionClosed once the page has gone


def oldest_render_to_send(shown, newest, refresh, now):
    """When the render sent next must have started: never before the one the page shows,
    nor before the last event heard (also when a full refresh is due at the same time);
    a full refresh may reuse a render up to REUSE_FOR_REFRESH old."""
    return max(shown, newest, now - REUSE_FOR_REFRESH if refresh else shown)


def send_changes(ws, shown_fragments, started, fragments):
    """Sends the fragments that differ from those the page shows; returns (started, fragments)."""
    if len(fragments) != len(shown_fragments):
        changed = fragments
    else:
        changed = [new for new, old in zip(fragments, shown_fragments) if new != old]
    if changed:
        ws.send("".join(changed))
    return started, fragments
