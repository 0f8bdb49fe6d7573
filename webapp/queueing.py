"""The Redis connection and the RQ queues. The web app enqueues jobs by name
only, so it never imports the jobs package."""
from flask import current_app, g
from redis import Redis
from rq import Queue

INGEST_QUEUE = "ingest"


def redis_connection():
    """One Redis client per app context."""
    if "redis" not in g:
        g.redis = Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=5,
                                 socket_connect_timeout=5)
    return g.redis


def ingest_queue():
    return Queue(INGEST_QUEUE, connection=redis_connection())
