from rq.job import JobStatus

from tests.conftest import wait_until
from webapp.queueing import ingest_queue


def test_a_real_worker_runs_jobs_inside_the_app_context(app, operator, worker):
    job = ingest_queue().enqueue("tests.support_jobs.count_operators")
    wait_until(lambda: job.get_status(refresh=True) in (JobStatus.FINISHED, JobStatus.FAILED),
               message="job to finish")
    assert job.get_status() == JobStatus.FINISHED, job.latest_result().exc_string
    assert job.return_value() == 1
