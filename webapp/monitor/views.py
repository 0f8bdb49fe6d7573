from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from redis.exceptions import RedisError

from webapp.errors import page as error_page
from webapp.monitor import failed
from webapp.monitor.add_worker import add_worker
from webapp.monitor.queues import queue_rows
from webapp.monitor.schedule import scheduled_jobs
from webapp.monitor.workers import worker_rows
from webapp.queueing import redis_connection

blueprint = Blueprint("monitor", __name__)


@blueprint.errorhandler(RedisError)
def redis_unreachable(error):
    return error_page(503, "Queue unreachable", "Redis cannot be reached, so workers and queues are "
                                                "unknown right now. Uploads wait until it is back.")


def page_number():
    return request.args.get("page", 1, type=int)


def live_context(notice=None):
    """Everything the page shows live, read from Redis now."""
    redis = redis_connection()
    return {"workers": worker_rows(redis), "queues": queue_rows(redis),
            "failed_jobs": failed.failed_page(redis, page_number()), "scheduled": scheduled_jobs(redis),
            "notice": notice}


@blueprint.get("/workers")
def workers():
    """The whole page, or only its live part for htmx's polling."""
    if request.headers.get("HX-Request"):
        return render_template("monitor/_live.html", **live_context())
    return render_template("monitor/workers.html", add_worker=add_worker(current_app.config), **live_context())


@blueprint.post("/workers/failed/<job_id>/requeue")
def requeue(job_id):
    if failed.requeue(redis_connection(), job_id):
        return after_action(f"Job {job_id} is queued again.")
    return after_action(f"Job {job_id} is no longer failed: nothing to requeue.", "error")


@blueprint.post("/workers/failed/<job_id>/delete")
def delete(job_id):
    if failed.delete(redis_connection(), job_id):
        return after_action(f"Job {job_id} is deleted.")
    return after_action(f"Job {job_id} is no longer failed: nothing to delete.", "error")


@blueprint.post("/workers/failed/requeue-all")
def requeue_all():
    count = failed.requeue_all(redis_connection())
    return after_action(f"{count} failed job(s) queued again.")


def after_action(notice, category="info"):
    if request.headers.get("HX-Request"):
        return render_template("monitor/_live.html", **live_context((notice, category)))
    flash(notice, category)
    return redirect(url_for("monitor.workers", page=page_number()), code=303)
