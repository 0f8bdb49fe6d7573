"""The RQ worker class the Procfile starts: every job runs inside the Flask app context,
in a forked work horse, except jobs flagged IN_PROCESS (small ones, such as an API
batch), which the worker runs itself as RQ's SimpleWorker does.

    rq worker --worker-class jobs.worker.AppWorker ingest
"""
import gc

import pyarrow
from psycopg.conninfo import conninfo_to_dict
from rq.worker import SimpleWorker, Worker

# Imported here, once, rather than by every forked work horse: about 9 ms of each job
# of a 1,000-record API batch.
import jobs.archive  # noqa: F401
import jobs.flush  # noqa: F401
import jobs.ingest  # noqa: F401
import jobs.maintenance  # noqa: F401
import jobs.retention  # noqa: F401
from webapp import create_app, logs
from webapp.extensions import db
from webapp.queueing import IN_PROCESS

# Arrow's own allocator keeps the memory of freed chunks for reuse; the C library's hands
# it back. Reading 1M lines grew a process by 57 MB with the first and 34 MB with the second.
pyarrow.set_memory_pool(pyarrow.system_memory_pool())


class AppWorker(Worker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = create_app(migrations=False)
        warm_up_libpq(self.app.config["DATABASE_URL"])
        # Every object so far (modules, the app) stays out of the garbage collector's
        # way: a horse whose collections walk them copies the parent's memory page by
        # page (copy-on-write), which doubled the time of a 1,000-record job.
        gc.freeze()
        logs.configure(self.app.config["LOG_FORMAT"])

    def execute_job(self, job, queue):
        if job.meta.get(IN_PROCESS):
            SimpleWorker.execute_job(self, job, queue)
        else:
            super().execute_job(job, queue)

    def main_work_horse(self, job, queue):
        with self.app.app_context():
            # The work horse is a fork: never reuse connections the parent opened.
            db.engine.dispose(close=False)
        super().main_work_horse(job, queue)

    def perform_job(self, *args, **kwargs):
        with self.app.app_context():
            return super().perform_job(*args, **kwargs)


def warm_up_libpq(database_url):
    """libpq sets itself up on the first connection string a process parses, which
    took a work horse about 4 ms per job; done once here, every horse inherits it."""
    conninfo_to_dict(database_url)
