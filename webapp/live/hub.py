"""One Redis subscription per web process, shared by all its WebSockets.

A thread (a greenlet under gunicorn's gevent workers) listens on the upload
events channel and wakes the sockets whose page shows the upload that changed.
Many watchers cost one Redis connection, and a socket waiting for news costs
nothing until there is some. Each process also keeps its number of open
sockets in Redis, for /metrics.
"""
import json
import logging
import os
import socket
import threading
import time

from redis import Redis
from redis.exceptions import RedisError

from webapp.events import UPLOAD_EVENTS

log = logging.getLogger(__name__)
RECONNECT_SECONDS = 1.0
# intake:websockets:<host>:<pid> holds that process's open sockets; a process
# that died stops renewing its key, which expires.
SOCKET_COUNT_KEYS = "intake:websockets:"
SOCKET_COUNT_RENEW_SECONDS = 10
SOCKET_COUNT_TTL = 3 * SOCKET_COUNT_RENEW_SECONDS


def open_sockets(redis):
    """Open live-update sockets over every web process and host."""
    keys = list(redis.scan_iter(match=SOCKET_COUNT_KEYS + "*", count=1000))
    return sum(int(count) for count in redis.mget(keys) if count) if keys else 0


class Listener:
    """What one socket hears: whether its page has news, and since when."""

    def __init__(self, watch):
        self.watch = watch
        self.news = threading.Event()
        self.newest = 0.0

    def notify(self, upload_id, heard_at):
        if upload_id is None or self.watch.concerns(upload_id):
            self.newest = heard_at
            self.news.set()

    def wait(self, timeout):
        """The time of the newest event since the last call, or None after `timeout` seconds without one."""
        if not self.news.wait(timeout):
            return None
        self.news.clear()
        return self.newest


class EventHub:
    def __init__(self, redis_url):
        self.redis_url = redis_url
        self.redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.count_key = f"{SOCKET_COUNT_KEYS}{socket.gethostname()}:{os.getpid()}"
        self.listeners = set()
        self.lock = threading.Lock()
        self.thread = None

    def listen(self, watch):
        listener = Listener(watch)
        with self.lock:
            self.listeners.add(listener)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="live-events", daemon=True)
                self.thread.start()
        self._save_count()
        return listener

    def leave(self, listener):
        with self.lock:
            self.listeners.discard(listener)
        self._save_count()

    def _save_count(self):
        try:
            self.redis.set(self.count_key, len(self.listeners), ex=SOCKET_COUNT_TTL)
        except RedisError:
            pass    # the listening thread saves it again once Redis is back

    def _notify(self, upload_id):
        # One time for all: sockets that heard the same event can share one render of it.
        heard_at = time.monotonic()
        with self.lock:
            listeners = list(self.listeners)
        for listener in listeners:
            listener.notify(upload_id, heard_at)

    def _run(self):
        while True:
            try:
                self._subscribe_and_relay()
            except RedisError as error:
                log.warning("live events: Redis is unreachable (%s); trying again", error)
            # Events may have been missed while away: every page re-reads its state.
            self._notify(None)
            time.sleep(RECONNECT_SECONDS)

    def _subscribe_and_relay(self):
        with Redis.from_url(self.redis_url, socket_connect_timeout=5, health_check_interval=30) as redis:
            pubsub = redis.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(UPLOAD_EVENTS)
            self._notify(None)
            while True:
                self._save_count()
                renew_at = time.monotonic() + SOCKET_COUNT_RENEW_SECONDS
                while (wait := renew_at - time.monotonic()) > 0:
                    if message := pubsub.get_message(timeout=wait):
                        self._notify(json.loads(message["data"])["upload_id"])
