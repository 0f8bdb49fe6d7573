"""Bearer tokens for the API. The browser session does not count here."""
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import abort, g, request

from webapp.extensions import db
from webapp.models import ApiToken, utcnow

# Token look-ups are cached this long per process, so a high-rate feed does not
# query PostgreSQL on every request (one query a second per token and process
# costs nothing measurable), and a revoked token stops working within it.
CACHE_SECONDS = 1
LAST_USED_PRECISION = timedelta(minutes=1)
# Unknown tokens are cached too; a caller sending ever new ones must not grow the cache without end.
MAX_CACHED = 10_000


@dataclass(frozen=True)
class Caller:
    token_id: int
    name: str
    operator_id: int | None


_cache = {}


def _look_up(token_hash):
    token = db.session.scalar(db.select(ApiToken).filter_by(token_hash=token_hash, revoked_at=None))
    if token is None:
        return None
    if token.last_used_at is None or utcnow() - token.last_used_at > LAST_USED_PRECISION:
        token.last_used_at = utcnow()
        db.session.commit()
    return Caller(token.id, token.name, token.operator_id)


def authenticate():
    """Set g.caller from the Authorization header, or answer 401."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        abort(401, "send an API token as 'Authorization: Bearer <token>'")
    token_hash = ApiToken.hash(secret.strip())
    cached = _cache.get(token_hash)
    if cached is None or cached[1] < time.monotonic():
        if len(_cache) >= MAX_CACHED:
            _cache.clear()
        cached = (_look_up(token_hash), time.monotonic() + CACHE_SECONDS)
        _cache[token_hash] = cached
    if cached[0] is None:
        abort(401, "this API token is unknown or revoked")
    g.caller = cached[0]
