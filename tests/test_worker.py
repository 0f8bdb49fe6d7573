from rq.job import JobStatus

from tests.conftest import wait_until
from webapp.queueing import ingest_queue


def test_a_real_worker_runs_jobs_inside_the_app_context(app, operator, worker):
    job = ingest_queue().enqueue("tests.support_jobs.count_operators")
    wait_until(lambda: job.get_status(refresh=True) in (JobStatus.FINISHED, JobStatus.FAILED),
               message="job to finish")
    assert job.get_status() == JobStatus.FINISHED, job.latest_result().exc_string
    assert job.return_value() == 1


def test_worker_logs_are_json_lines_naming_the_job_and_upload(client, start_process, monkeypatch):
    import json

    from tests.conftest import worker_process
    from tests.ingest_helpers import ingest
    monkeypatch.setenv("LOG_FORMAT", "json")
    worker = start_process(worker_process)
    upload = ingest(client, "a.csv", b"email\na@example.com\n")

    def our_lines():
        """The upload's log lines, once the last one is written (it follows the status in the database)."""
        lines = [json.loads(line) for line in worker.log.read_text().splitlines() if line.startswith("{")]
        ours = [line for line in lines if line["upload_id"] == upload.id]
        return ours if any(line["message"] == "ingest completed" for line in ours) else None
    ours = wait_until(our_lines, timeout=30, message="the worker to log 'ingest completed'")
    assert {line["job_id"] for line in ours} == {f"ingest-{upload.id}"}
