import json
import time

from flask import Blueprint, current_app, request

from webapp.events import UPLOAD_EVENTS
from webapp.extensions import db, sock
from webapp.live.watch import Watch
from webapp.queueing import redis_connection

blueprint = Blueprint("live", __name__)

# At most one update per upload every THROTTLE seconds; everything is re-read
# from PostgreSQL, so skipping events never loses the final state.
THROTTLE = 0.25
# Even with no event at all (Redis restarted, events lost), refresh this often.
FULL_REFRESH = 10.0
POLICY_VIOLATION = 1008


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
    pubsub = redis_connection().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(UPLOAD_EVENTS)
    try:
        stream(ws, watch, pubsub)
    finally:
        pubsub.close()


def push(ws, html):
    ws.send(html)
    # A long-lived socket must not keep a database connection or an old snapshot.
    db.session.remove()


def stream(ws, watch, pubsub):
    push(ws, watch.render())
    pending, last_sent, last_full = set(), 0.0, time.monotonic()
    while True:
        message = pubsub.get_message(timeout=THROTTLE)
        if message:
            upload_id = json.loads(message["data"])["upload_id"]
            if watch.concerns(upload_id):
                pending.add(upload_id)
        now = time.monotonic()
        if now - last_full >= FULL_REFRESH:
            push(ws, watch.render())
            pending.clear()
            last_full = last_sent = now
        elif pending and now - last_sent >= THROTTLE:
            push(ws, watch.render(pending))
            pending.clear()
            last_sent = now
        ws.receive(timeout=0)  # raises ConnectionClosed once the page has gone
