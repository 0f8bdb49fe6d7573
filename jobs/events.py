"""Publishes "upload N changed" events, a few a second at most per upload."""
import json
import time

from redis.exceptions import RedisError

from webapp.events import UPLOAD_EVENTS

MIN_INTERVAL = 0.2


class UploadEvents:
    def __init__(self, redis, upload_id, log):
        self.redis = redis
        self.upload_id = upload_id
        self.log = log
        self._last = 0.0

    def changed(self, status, final=False):
        """Publish unless one went out in the last MIN_INTERVAL s; `final` always goes."""
        now = time.monotonic()
        if not final and now - self._last < MIN_INTERVAL:
            return
        self._last = now
        try:
            self.redis.publish(UPLOAD_EVENTS, json.dumps({"upload_id": self.upload_id, "status": status}))
        except RedisError as error:
            # Events are a convenience: pages re-read PostgreSQL, so a lost one loses nothing.
            self.log.warning("could not publish progress of upload %s: %s", self.upload_id, error)
