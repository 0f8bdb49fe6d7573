"""Periodic jobs that keep Intake tidy, run by the scheduler process."""
import logging
from datetime import datetime, timedelta, timezone

import psycopg
from flask import current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

from jobs import partition
from jobs.ingest import LOCK_SPACE
from webapp.models import UploadStatus
from webapp.queueing import enqueue_ingest, ingest_job_id, ingest_queue, redis_connection

log = logging.getLogger(__name__)

# Jobs in these states will run without help; a SCHEDULED one only while some worker's
# scheduler (rq worker --with-scheduler) moves it to the queue on time.
WILL_RUN = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


def resume_stalled_uploads():
    """Re-enqueue uploads that are queued or running but that no worker holds:
    their worker died, or Redis lost the job. They resume from their checkpoint."""
    config = current_app.config
    resumed = []
    with psycopg.connect(config["DATABASE_URL"], autocommit=True) as connection:
        stalled = connection.execute(
            "SELECT id FROM uploads WHERE status = ANY(%s) "
            "AND coalesce(heartbeat_at, created_at) < now() - make_interval(secs => %s) ORDER BY id",
            (list(UploadStatus.ACTIVE), config["REAPER_SECONDS"])).fetchall()
        for (upload_id,) in stalled:
            if not _held_by_a_worker(connection, upload_id) and not _will_run(upload_id):
                enqueue_ingest(upload_id)
                resumed.append(upload_id)
    if resumed:
        log.warning("resumed stalled uploads %s", resumed)
    return resumed


def _held_by_a_worker(connection, upload_id):
    """A live ingest holds the upload's advisory lock; a dead one's went with its connection."""
    free = connection.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_SPACE, upload_id)).fetchone()[0]
    if free:
        connection.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_SPACE, upload_id))
    return not free


def _will_run(upload_id):
    try:
        job = Job.fetch(ingest_job_id(upload_id), connection=redis_connection())
    except NoSuchJobError:
        return False
    status = job.get_status()
    if status == JobStatus.SCHEDULED and _overdue(job):
        # No worker's scheduler is moving it (the scheduler process dies with a Redis restart
        # and goes with a killed worker; RQ starts another one only every 10 minutes).
        ScheduledJobRegistry(queue=ingest_queue()).remove(job)
        return False
    return status in WILL_RUN


def _overdue(job):
    """A scheduled job whose time passed more than REAPER_SECONDS ago."""
    try:
        due = ScheduledJobRegistry(queue=ingest_queue()).get_scheduled_time(job)
    except NoSuchJobError:
        return True
    late = timedelta(seconds=current_app.config["REAPER_SECONDS"])
    return due < datetime.now(timezone.utc) - late


def tend_record_partitions():
    """Attach the own partitions that a job left unattached (it failed for good while building
    them); merge the oldest into the shared partition while there are more than
    OWN_PARTITIONS_KEPT, since every statement of the records list is planned over each
    partition (bench/README.md, "Records"); then refresh the statistics of `records` as a whole,
    which autovacuum never gathers for a partitioned table and which the list reads."""
    config = current_app.config
    with psycopg.connect(config["DATABASE_URL"], autocommit=True) as connection:
        finished = connection.execute(
            "SELECT id FROM uploads WHERE loading_alone AND status = ANY(%s) ORDER BY id",
            (list(UploadStatus.FINISHED),)).fetchall()
        for (upload_id,) in finished:
            if not _held_by_a_worker(connection, upload_id):
                partition.finish(connection, config["DATABASE_URL"], upload_id, announce=lambda: None)
        attached = partition.attached_uploads(connection)
        for upload_id in attached[:max(0, len(attached) - config["OWN_PARTITIONS_KEPT"])]:
            partition.merge_into_shared(connection, upload_id)
        connection.execute("ANALYZE records")
