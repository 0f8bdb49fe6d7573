"""The Redis pub/sub channel that says "upload N changed". Events carry no
numbers: listeners read the truth from PostgreSQL, so a lost event loses nothing."""
import json

from redis.exceptions import RedisError

from webapp.queueing import redis_connection

UPLOAD_EVENTS = "intake:uploads"


def publish(redis, upload_id, status):
    redis.publish(UPLOAD_EVENTS, json.dumps({"upload_id": upload_id, "status": status}))


def publish_change(upload_id, status):
    """From a web request; if Redis is away the pages catch up on their next refresh."""
    try:
        publish(redis_connection(), upload_id, status)
    except RedisError:
        pass
