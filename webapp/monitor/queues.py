"""What waits in each RQ queue, and how long the oldest job has waited."""
from dataclasses import dataclass
from datetime import datetime

from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

from webapp.models import utcnow
from webapp.queueing import INGEST_QUEUE, MAINTENANCE_QUEUE

QUEUES = (INGEST_QUEUE, MAINTENANCE_QUEUE)


@dataclass
class QueueRow:
    name: str
    waiting: int
    oldest_enqueued_at: datetime | None
    running: int
    retrying: int
    failed: int

    @property
    def oldest_age_seconds(self):
        return (utcnow() - self.oldest_enqueued_at).total_seconds() if self.oldest_enqueued_at else None


def queue_rows(redis):
    return [queue_row(Queue(name, connection=redis)) for name in QUEUES]


def queue_row(queue):
    # cleanup=False: RQ's clean-up moves jobs between registries, and a page view changes nothing.
    return QueueRow(
        name=queue.name, waiting=queue.count, oldest_enqueued_at=oldest_enqueued_at(queue),
        running=queue.started_job_registry.get_job_count(cleanup=False),
        retrying=queue.scheduled_job_registry.get_job_count(cleanup=False),
        failed=queue.failed_job_registry.get_job_count(cleanup=False),
    )


def oldest_enqueued_at(queue):
    """Workers take jobs from the head of the list, so the head has waited longest."""
    head = queue.get_job_ids(0, 1)
    if not head:
        return None
    try:
        return Job.fetch(head[0], connection=queue.connection).enqueued_at
    except NoSuchJobError:  # deleted while queued; a worker will skip it
        return None
