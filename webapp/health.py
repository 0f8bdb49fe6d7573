"""GET /api/health: can this process reach PostgreSQL and Redis, and are workers up?"""
from flask import Blueprint, jsonify
from redis.exceptions import RedisError
from rq import Worker
from sqlalchemy.exc import SQLAlchemyError

from webapp.extensions import db
from webapp.queueing import redis_connection

blueprint = Blueprint("health", __name__)


def database_state():
    try:
        db.session.execute(db.text("SELECT 1"))
        return "ok"
    except SQLAlchemyError as error:
        db.session.rollback()
        return f"error: {type(error.orig or error).__name__}"


def redis_state():
    try:
        connection = redis_connection()
        connection.ping()
        return "ok", Worker.count(connection=connection)
    except RedisError as error:
        return f"error: {type(error).__name__}", 0


@blueprint.get("/api/health")
def health():
    database = database_state()
    redis, workers = redis_state()
    healthy = database == "ok" and redis == "ok"
    body = {"status": "ok" if healthy else "degraded", "database": database, "redis": redis,
            "workers": workers}
    return jsonify(body), 200 if healthy else 503
