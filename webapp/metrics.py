"""/metrics for Prometheus: read from PostgreSQL and Redis at each scrape, so
every web process on every host answers the same and nothing is kept in
process memory. Off (404) until METRICS_TOKEN is set; then the scraper sends
it as a bearer token instead of logging in."""
import hmac
import logging
from collections import defaultdict
from itertools import accumulate

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from redis.exceptions import RedisError
from rq import Queue

from webapp.extensions import db
from webapp.live.hub import open_sockets
from webapp.models import Upload, UploadStatus
from webapp.monitor.queues import QUEUES
from webapp.monitor.workers import worker_rows
from webapp.queueing import redis_connection

log = logging.getLogger(__name__)
blueprint = Blueprint("metrics", __name__)

DURATION_BOUNDS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600)
# width_bucket puts a duration into 0 … len(bounds); the API's daily stream
# upload (jobs/flush.py) is no ingest job and has no duration of its own.
DURATIONS = db.text("""
    SELECT status, width_bucket(seconds, CAST(:bounds AS float8[])) AS bucket, count(*), sum(seconds)
    FROM (SELECT status, extract(epoch FROM finished_at - started_at)::float8 AS seconds FROM uploads
          WHERE status = ANY(:finished) AND started_at IS NOT NULL AND finished_at IS NOT NULL
                AND source <> 'api-stream') AS durations
    GROUP BY status, bucket""")


@blueprint.get("/metrics")
def metrics():
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        abort(404)
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(secret.strip().encode(), token.encode()):
        abort(401, "send the METRICS_TOKEN as 'Authorization: Bearer <token>'")
    registry = CollectorRegistry()
    registry.register(IntakeCollector())
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


class IntakeCollector:
    """A prometheus_client collector: collect() runs once per scrape."""

    def collect(self):
        yield uploads_by_status()
        yield from row_totals()
        yield ingest_durations()
        yield from redis_metrics()


def uploads_by_status():
    counts = dict(db.session.execute(db.select(Upload.status, db.func.count()).group_by(Upload.status)).all())
    family = GaugeMetricFamily("intake_uploads", "Uploads by status", labels=["status"])
    for status in UploadStatus.ACTIVE + UploadStatus.FINISHED:
        family.add_metric([status], counts.get(status, 0))
    return family


def row_totals():
    # Gauges, not counters: a rejected all-or-nothing file takes its rows back,
    # which a counter would report as a reset.
    inserted, rejected = db.session.execute(db.select(
        db.func.coalesce(db.func.sum(Upload.rows_inserted), 0),
        db.func.coalesce(db.func.sum(Upload.rows_invalid + Upload.duplicates_in_file
                                     + Upload.duplicates_existing), 0))).one()
    yield GaugeMetricFamily("intake_rows_inserted", "Rows inserted, over all uploads", value=inserted)
    yield GaugeMetricFamily("intake_rows_rejected", "Rows rejected as invalid or duplicate, over all uploads",
                            value=rejected)


def ingest_durations():
    per_bucket = defaultdict(lambda: [0] * (len(DURATION_BOUNDS) + 1))
    sums = defaultdict(float)
    rows = db.session.execute(DURATIONS, {"bounds": list(DURATION_BOUNDS), "finished": list(UploadStatus.FINISHED)})
    for status, bucket, count, seconds in rows:
        per_bucket[status][bucket] += count
        sums[status] += seconds
    family = HistogramMetricFamily("intake_ingest_duration_seconds", "Time from start to end of finished uploads",
                                   labels=["status"])
    bounds = [str(float(bound)) for bound in DURATION_BOUNDS] + ["+Inf"]
    for status, counts in sorted(per_bucket.items()):
        family.add_metric([status], list(zip(bounds, accumulate(counts))), sums[status])
    return family


def redis_metrics():
    up = GaugeMetricFamily("intake_redis_up", "1 when Redis answered this scrape")
    try:
        families = list(queue_and_worker_metrics(redis_connection()))
    except RedisError as error:
        log.warning("metrics without Redis: %s", error)
        up.add_metric([], 0)
        yield up
        return
    up.add_metric([], 1)
    yield up
    yield from families


def queue_and_worker_metrics(redis):
    jobs = GaugeMetricFamily("intake_queue_jobs", "Jobs waiting in each queue", labels=["queue"])
    failed = GaugeMetricFamily("intake_failed_jobs", "Jobs in each queue's failed registry", labels=["queue"])
    for name in QUEUES:
        queue = Queue(name, connection=redis)
        jobs.add_metric([name], queue.count)
        failed.add_metric([name], queue.failed_job_registry.get_job_count(cleanup=False))
    yield jobs
    yield failed
    workers = GaugeMetricFamily("intake_workers", "Registered RQ workers by state (lost: no heartbeat "
                                                  "within its TTL)", labels=["state"])
    states = defaultdict(int, {"idle": 0, "busy": 0, "lost": 0})
    for worker in worker_rows(redis):
        states[worker.state] += 1
    for state, count in sorted(states.items()):
        workers.add_metric([state], count)
    yield workers
    yield GaugeMetricFamily("intake_websocket_connections", "Open live-update WebSockets", value=open_sockets(redis))
