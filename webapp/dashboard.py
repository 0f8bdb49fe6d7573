"""The home page: what is happening now and where to go next."""
from datetime import datetime, time, timezone

from flask import Blueprint, render_template
from redis.exceptions import RedisError
from rq import Worker

from webapp.extensions import db
from webapp.models import Upload, UploadStatus
from webapp.queueing import redis_connection

blueprint = Blueprint("dashboard", __name__)

ACTIVE_SHOWN = 20


def active_uploads():
    return db.session.scalars(db.select(Upload).where(Upload.status.in_(UploadStatus.ACTIVE))
                              .order_by(Upload.id).limit(ACTIVE_SHOWN)).all()


def today_totals():
    midnight = datetime.combine(datetime.now(timezone.utc).date(), time(), timezone.utc)
    files, inserted, rejected = db.session.execute(
        db.select(db.func.count(Upload.id), db.func.coalesce(db.func.sum(Upload.rows_inserted), 0),
                  db.func.coalesce(db.func.sum(Upload.rows_invalid + Upload.duplicates_in_file
                                               + Upload.duplicates_existing), 0))
        .where(Upload.created_at >= midnight)).one()
    return {"files": files, "inserted": inserted, "rejected": rejected}


def worker_states():
    """{'busy': n, 'idle': n}, or None when Redis cannot be reached."""
    try:
        workers = Worker.all(connection=redis_connection())
    except RedisError:
        return None
    busy = sum(worker.get_state() == "busy" for worker in workers)
    return {"busy": busy, "idle": len(workers) - busy}


def dashboard_context():
    return {"active": active_uploads(), "today": today_totals(), "workers": worker_states()}


@blueprint.route("/")
def index():
    has_uploads = db.session.scalar(db.select(Upload.id).limit(1)) is not None
    return render_template("dashboard.html", has_uploads=has_uploads, **dashboard_context())
