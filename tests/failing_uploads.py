"""Uploads whose ingest job fails for good, for the pages and e-mails that report it."""
from rq import Callback
from rq.job import Job

from tests.support_jobs import BROKEN
from webapp.queueing import ingest_job_id, ingest_queue, redis_connection


def make_fail_for_good(upload_id):
    """Swap the upload's queued ingest job for one that fails until `mend()`, with no
    retries, reporting its failure through the real job's callback."""
    job_id = ingest_job_id(upload_id)
    Job.fetch(job_id, connection=redis_connection()).delete()
    ingest_queue().enqueue("tests.support_jobs.ingest_unless_broken", upload_id, job_id=job_id,
                           on_failure=Callback("jobs.ingest.record_failure"))
    redis_connection().set(BROKEN, 1)


def mend():
    redis_connection().delete(BROKEN)
