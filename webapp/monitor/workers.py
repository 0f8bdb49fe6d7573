"""The RQ workers registered in Redis, as the Workers page and /metrics show them."""
from dataclasses import dataclass
from datetime import datetime

from rq import Worker

from webapp.models import utcnow
from webapp.monitor.ingest_jobs import upload_id_of

# RQ renews a worker's key for its TTL + 60 s at every heartbeat (idle or busy:
# rq/worker/base.py heartbeat), and keeps the key of a killed worker until that
# runs out. With less than 60 s left, the last heartbeat is older than the
# worker's own TTL, whatever TTL it was started with. GRACE_MS allows for a
# heartbeat that is a little late on a loaded machine.
AFTER_TTL_MS = 60_000
GRACE_MS = 3_000


@dataclass
class WorkerRow:
    name: str
    host: str | None
    pid: int | None
    queues: list[str]
    state: str
    job_id: str | None
    done: int
    failed: int
    last_heartbeat: datetime | None

    @property
    def upload_id(self):
        return upload_id_of(self.job_id)

    @property
    def lost(self):
        return self.state == "lost"

    @property
    def heartbeat_age_seconds(self):
        return (utcnow() - self.last_heartbeat).total_seconds() if self.last_heartbeat else None


def is_lost(key_ttl_ms):
    """A worker whose key has no expiry (-1) is not judged; a missing one (-2) is gone."""
    return 0 <= key_ttl_ms < AFTER_TTL_MS - GRACE_MS


def worker_rows(redis):
    """Every registered worker, lost ones included, by name."""
    workers = sorted(Worker.all(connection=redis), key=lambda worker: worker.name)
    with redis.pipeline(transaction=False) as pipeline:
        for worker in workers:
            pipeline.pttl(worker.key)
        key_ttls = pipeline.execute()
    return [worker_row(worker, ttl) for worker, ttl in zip(workers, key_ttls)]


def worker_row(worker, key_ttl_ms):
    state = worker.get_state()
    # A suspended worker (rq suspend) sends no heartbeat until it is resumed.
    if state != "suspended" and is_lost(key_ttl_ms):
        state = "lost"
    return WorkerRow(
        name=worker.name, host=worker.hostname, pid=worker.pid,
        queues=worker.queue_names(), state=state,
        job_id=worker.get_current_job_id(),
        done=worker.successful_job_count, failed=worker.failed_job_count,
        last_heartbeat=worker.last_heartbeat,
    )
