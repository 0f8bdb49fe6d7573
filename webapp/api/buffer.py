"""The Redis buffer behind POST /api/records: accepted records wait here until
the periodic flush stores them (jobs/flush.py)."""
import orjson
from flask import current_app
from rq import Queue
from rq.job import JobStatus

from webapp.api.grouped_append import GroupedAppend
from webapp.models import utcnow
from webapp.queueing import MAINTENANCE_QUEUE, redis_connection

BUFFER = "intake:api-buffer"
# A flush renames BUFFER to PROCESSING and deletes it only after its commit, so
# a flush that dies leaves the records for the next one.
PROCESSING = "intake:api-buffer:processing"
FLUSH_JOB_ID = "flush-api-buffer"

_buffer = GroupedAppend(BUFFER)


def accept(records, caller):
    """Buffer the records; the request that fills the buffer past BUFFER_FLUSH_ROWS asks for a flush."""
    received_at = utcnow().isoformat()
    items = [orjson.dumps({"record": record, "token": caller.name, "received_at": received_at})
             for record in records]
    waiting = _buffer.append(redis_connection(), items)
    if waiting >= current_app.config["BUFFER_FLUSH_ROWS"] > waiting - len(items):
        flush_soon()


def flush_soon():
    """Ask for a flush now rather than at the next period (once, however often asked)."""
    queue = Queue(MAINTENANCE_QUEUE, connection=redis_connection())
    job = queue.fetch_job(FLUSH_JOB_ID)
    if job is None or job.get_status() not in (JobStatus.QUEUED, JobStatus.STARTED):
        queue.enqueue("jobs.flush.flush_api_buffer", job_id=FLUSH_JOB_ID, result_ttl=0)
