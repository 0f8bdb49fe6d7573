"""The scheduler process: registers Intake's periodic jobs, then runs rq-scheduler.

    python -m jobs.scheduler

Registration replaces the jobs by their fixed ids, so a restart never adds a
second copy. Run exactly one scheduler.
"""
import logging
import time
from datetime import datetime, timezone

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq_scheduler import Scheduler

from webapp import create_app, logs
from webapp.queueing import MAINTENANCE_QUEUE, UPKEEP_JOB_TIMEOUT, redis_connection

log = logging.getLogger(__name__)

# While Redis is away (a restart, a failover) the scheduler waits this long between attempts
# instead of exiting: under honcho one exiting process stops all the others.
RECONNECT_SECONDS = 2


def periodic_jobs(config):
    """(job id, function, seconds between runs)."""
    return [
        ("periodic-resume-stalled-uploads", "jobs.maintenance.resume_stalled_uploads",
         max(1, config["REAPER_SECONDS"] // 2)),
        ("periodic-flush-api-buffer", "jobs.flush.flush_api_buffer", config["BUFFER_FLUSH_SECONDS"]),
        ("periodic-delete-expired-raw-files", "jobs.retention.delete_expired_raw_files", 3600),  # hourly
        # Hourly; each attach also queues it at once.
        ("periodic-tend-record-partitions", "jobs.maintenance.tend_record_partitions", 3600),
        # Hourly too; it does nothing while ARCHIVE_AFTER_DAYS is 0.
        ("periodic-archive-old-uploads", "jobs.archive.archive_old_uploads", 3600),
    ]


# Longer than RQ's default of 180 s: one large upload takes minutes to write out and delete.
TIMEOUTS = {"jobs.archive.archive_old_uploads": 3 * 3600,
            "jobs.maintenance.tend_record_partitions": UPKEEP_JOB_TIMEOUT}


def register(scheduler, config):
    for job_id, function, interval in periodic_jobs(config):
        scheduler.cancel(job_id)
        scheduler.schedule(datetime.now(timezone.utc), function, id=job_id, interval=interval,
                           queue_name=MAINTENANCE_QUEUE, result_ttl=600, timeout=TIMEOUTS.get(function))
        log.info("every %s s: %s", interval, function)


def main():
    app = create_app()
    logs.configure(app.config["LOG_FORMAT"])
    with app.app_context():
        while True:
            try:
                scheduler = Scheduler(connection=redis_connection(), interval=1)
                register(scheduler, app.config)
                scheduler.run()
                return
            except (RedisConnectionError, RedisTimeoutError) as error:
                log.warning("Redis is unreachable (%s); trying again in %s s", error, RECONNECT_SECONDS)
                time.sleep(RECONNECT_SECONDS)


if __name__ == "__main__":
    main()
