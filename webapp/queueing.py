"""The Redis connection and the RQ queues. The web app enqueues jobs by name
only, so it never imports the jobs package."""
from flask import current_app
from redis import Redis
from rq import Callback, Queue, Retry

INGEST_QUEUE = "ingest"
MAINTENANCE_QUEUE = "maintenance"
# Large files take minutes, not hours; a job that runs this long is stuck.
INGEST_JOB_TIMEOUT = 6 * 3600
# Merging a large upload's partition into the shared one rewrites its rows with live indexes:
# minutes for millions of rows, far beyond RQ's default of 180 s.
UPKEEP_JOB_TIMEOUT = 3 * 3600
# Job meta flag: the worker runs the job itself instead of forking a work horse for
# it (jobs/worker.py). For a 1,000-record API batch the fork and the horse's set-up
# cost about as much as the work.
IN_PROCESS = "in_process"


def redis_connection():
    """The app's Redis client: its connection pool serves every request of the
    process (a new client per request cost a new connection and handshake each)."""
    extensions = current_app.extensions
    if "redis" not in extensions:
        extensions["redis"] = Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=5,
                                             socket_connect_timeout=5)
    return extensions["redis"]


def ingest_queue():
    return Queue(INGEST_QUEUE, connection=redis_connection())


def ingest_job_id(upload_id):
    return f"ingest-{upload_id}"


def enqueue_ingest(upload_id, in_process=False):
    """Queue the ingest of an upload; a dead worker's job is retried from its checkpoint.
    `in_process`: a small upload, which the worker runs without a work horse."""
    config = current_app.config
    return ingest_queue().enqueue(
        "jobs.ingest.ingest_upload", upload_id,
        job_id=ingest_job_id(upload_id),
        job_timeout=INGEST_JOB_TIMEOUT,
        retry=Retry(max=config["INGEST_RETRIES"], interval=[1, 5, 15, 30, 60]),
        on_failure=Callback("jobs.ingest.record_failure"),
        meta={IN_PROCESS: True} if in_process else None,
    )
