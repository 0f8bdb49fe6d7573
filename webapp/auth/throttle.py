"""Login throttling, kept in Redis so it holds across web processes: after
MAX_FAILURES failed attempts for an account or from an address within WINDOW
seconds, further attempts are refused until the window has passed."""
from redis.exceptions import RedisError

from webapp.queueing import redis_connection

MAX_FAILURES = 5
WINDOW = 15 * 60


def _email_key(email):
    return f"intake:login-failures:email:{email}"


def _keys(email, address):
    return [_email_key(email), f"intake:login-failures:address:{address}"]


def seconds_blocked(email, address):
    """How long this login is still refused; 0 when it may be tried."""
    try:
        connection = redis_connection()
        blocked = [key for key in _keys(email, address) if int(connection.get(key) or 0) >= MAX_FAILURES]
        return max((connection.ttl(key) for key in blocked), default=0)
    except RedisError:
        return 0  # without Redis, logging in still works; only the throttle is off


def record_failure(email, address):
    try:
        with redis_connection().pipeline() as pipeline:
            for key in _keys(email, address):
                pipeline.incr(key)
                pipeline.expire(key, WINDOW, nx=True)
            pipeline.execute()
    except RedisError:
        pass


def clear(email):
    try:
        redis_connection().delete(_email_key(email))
    except RedisError:
        pass
