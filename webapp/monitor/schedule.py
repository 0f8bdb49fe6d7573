"""The periodic jobs rq-scheduler holds (registered by jobs/scheduler.py), with their next run."""
from dataclasses import dataclass
from datetime import datetime, timezone

from rq_scheduler import Scheduler

from webapp.models import utcnow


@dataclass
class ScheduledJob:
    id: str
    function: str | None
    queue: str
    interval_seconds: int | None
    next_run: datetime

    @property
    def due_in_seconds(self):
        return (self.next_run - utcnow()).total_seconds()


def scheduled_jobs(redis):
    """Soonest first."""
    return [ScheduledJob(id=job.id, function=job.func_name, queue=job.origin,
                         interval_seconds=job.meta.get("interval"),
                         # rq-scheduler hands out naive UTC times.
                         next_run=next_run.replace(tzinfo=timezone.utc))
            for job, next_run in Scheduler(connection=redis).get_jobs(with_times=True)]
