"""Failed RQ jobs of every queue, newest first, and putting them back or away.

A failed registry can still name a job that has been queued again since (the
upload's own retry button, the stalled-upload reaper and the periodic jobs
reuse fixed job ids): only jobs whose status is failed now are listed.
"""
from dataclasses import dataclass
from datetime import datetime

from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

from webapp.monitor.ingest_jobs import reopen_upload_of, upload_id_of
from webapp.monitor.queues import QUEUES

PAGE_SIZE = 20
FAILED_NOW = {JobStatus.FAILED.value, JobStatus.STOPPED.value}
SUMMARY_CHARACTERS = 300


@dataclass
class FailedJob:
    id: str
    queue: str
    function: str | None
    failed_at: datetime | None
    summary: str

    @property
    def upload_id(self):
        return upload_id_of(self.id)


@dataclass
class Page:
    jobs: list[FailedJob]
    number: int
    total: int

    @property
    def pages(self):
        return page_count(self.total)


def page_count(total):
    return max(1, -(-total // PAGE_SIZE))


def failed_entries(redis):
    """(job id, queue name) of every job failed now, newest first."""
    entries = [(job_id.decode(), name) for name in QUEUES
               for job_id in redis.zrange(FailedJobRegistry(name, connection=redis).key, 0, -1)]
    with redis.pipeline(transaction=False) as pipeline:
        for job_id, _ in entries:
            pipeline.hmget(Job.key_for(job_id), "status", "ended_at")
        states = pipeline.execute()
    # ended_at is stored as ISO 8601 text in UTC, so it sorts as text.
    failed = [(ended_at or b"", entry) for entry, (status, ended_at) in zip(entries, states)
              if status and status.decode() in FAILED_NOW]
    return [entry for _, entry in sorted(failed, reverse=True)]


def failed_page(redis, number):
    entries = failed_entries(redis)
    number = min(max(1, number), page_count(len(entries)))
    chosen = entries[(number - 1) * PAGE_SIZE:number * PAGE_SIZE]
    jobs = Job.fetch_many([job_id for job_id, _ in chosen], connection=redis)
    rows = [failed_job(job, name) for job, (_, name) in zip(jobs, chosen) if job is not None]
    return Page(rows, number, len(entries))


def failed_job(job, queue_name):
    return FailedJob(id=job.id, queue=queue_name, function=job.func_name, failed_at=job.ended_at,
                     summary=exception_summary(job))


def exception_summary(job):
    """The last line of the traceback: the exception and its message."""
    result = job.latest_result()
    lines = (result.exc_string or "").strip().splitlines() if result else []
    return lines[-1][:SUMMARY_CHARACTERS] if lines else "no exception recorded"


def failed_job_by_id(redis, job_id):
    """The job if it is failed now, else None."""
    try:
        job = Job.fetch(job_id, connection=redis)
    except NoSuchJobError:
        return None
    return job if job.get_status(refresh=False) in FAILED_NOW else None


def requeue(redis, job_id):
    """Put a failed job back in its queue (an ingest job's upload too); False if it is not failed."""
    job = failed_job_by_id(redis, job_id)
    if job is None:
        return False
    reopen_upload_of(job.id)
    try:
        FailedJobRegistry(job.origin, connection=redis).requeue(job)
    except InvalidJobOperation:  # requeued by someone else a moment ago
        return False
    return True


def delete(redis, job_id):
    """Forget a failed job; its upload, if any, keeps its own status and retry button."""
    job = failed_job_by_id(redis, job_id)
    if job is None:
        return False
    job.delete()
    return True


def requeue_all(redis):
    return sum(requeue(redis, job_id) for job_id, _ in failed_entries(redis))
