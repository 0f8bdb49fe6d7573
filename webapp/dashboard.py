"""The home page: what is happening now, where to go next, and the last 30 days drawn."""
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from flask import Blueprint, render_template
from redis.exceptions import RedisError
from rq import Worker

from webapp.charts import height_percent, scale_top
from webapp.extensions import db
from webapp.models import RowError, Upload, UploadStatus
from webapp.queueing import redis_connection
from webapp.rejections import REASON_KIND, REASON_KINDS_BY_NAME

blueprint = Blueprint("dashboard", __name__)

ACTIVE_SHOWN = 20
DAYS_DRAWN = 30
# The reasons chart reads at most this many of the newest rejected lines, so that the
# page stays quick however many lines were rejected.
REJECTIONS_READ = 100_000
REASONS_SHOWN = 6


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


@dataclass
class Day:
    """One bar of the daily chart: the lines of the uploads made that day (UTC), stored and rejected."""
    date: object
    stored: int
    rejected: int
    x: float = 0.0
    width: float = 0.0
    stored_y: float = 0.0
    rejected_y: float = 0.0


def first_day_drawn():
    return datetime.now(timezone.utc).date() - timedelta(days=DAYS_DRAWN - 1)


def since_first_day():
    return Upload.created_at >= datetime.combine(first_day_drawn(), time(), timezone.utc)


def lines_per_day():
    day = db.func.date(db.func.timezone("UTC", Upload.created_at))
    rows = db.session.execute(
        db.select(day, db.func.sum(Upload.rows_inserted + Upload.rows_updated),
                  db.func.sum(Upload.rows_invalid + Upload.duplicates_in_file + Upload.duplicates_existing))
        .where(since_first_day()).group_by(day)).all()
    totals = {date: (stored, rejected) for date, stored, rejected in rows}
    days = [Day(date, *totals.get(date, (0, 0)))
            for date in (first_day_drawn() + timedelta(days=offset) for offset in range(DAYS_DRAWN))]
    top = scale_top(max(day.stored + day.rejected for day in days))
    slot = 100 / DAYS_DRAWN
    for index, day in enumerate(days):
        day.x, day.width = round(index * slot + slot * 0.1, 2), round(slot * 0.8, 2)
        day.stored_y = height_percent(day.stored, top)
        day.rejected_y = height_percent(day.stored + day.rejected, top)
    return days, top


def uploads_by_outcome():
    """[(status, count)] of the uploads of the days drawn, in the order an upload goes through them."""
    counts = dict(db.session.execute(db.select(Upload.status, db.func.count()).where(since_first_day())
                                     .group_by(Upload.status)).all())
    return [(status, counts[status]) for status in UploadStatus.ACTIVE + UploadStatus.FINISHED if counts.get(status)]


def frequent_reasons():
    """[(ReasonKind, count)] among the newest rejected lines of the days drawn, most first."""
    recent_uploads = db.select(Upload.id).where(since_first_day())
    newest = (db.select(REASON_KIND.label("reason_kind")).where(RowError.upload_id.in_(recent_uploads))
              .order_by(RowError.upload_id.desc()).limit(REJECTIONS_READ).subquery())
    rows = db.session.execute(db.select(newest.c.reason_kind, db.func.count()).group_by(newest.c.reason_kind)
                              .order_by(db.func.count().desc()).limit(REASONS_SHOWN)).all()
    return [(REASON_KINDS_BY_NAME[name], count) for name, count in rows]


def dashboard_charts():
    days, top = lines_per_day()
    return {"days": days, "days_top": top, "outcomes": uploads_by_outcome(), "reasons": frequent_reasons(),
            "rejections_read": REJECTIONS_READ}


@blueprint.route("/")
def index():
    has_uploads = db.session.scalar(db.select(Upload.id).limit(1)) is not None
    charts = dashboard_charts() if has_uploads else {}
    return render_template("dashboard.html", has_uploads=has_uploads, **charts, **dashboard_context())
