"""Publishes "upload N changed" events, a few a second at most per upload."""
import time

from redis.exceptions import RedisError

from webapp.events import publish

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
            publish(self.redis, self.upload_id, status)
        except RedisError as error:
            self.log.warning("could not publish progress of upload %s: %s", self.upload_id, error)
