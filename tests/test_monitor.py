"""The Workers page against real RQ worker and scheduler processes."""
import html
import os
import re
import time

from rq import Queue
from rq.job import Job, JobStatus
from rq.suspension import resume, suspend
from rq_scheduler import Scheduler

from jobs.scheduler import periodic_jobs
from tests.conftest import ChildProcess, csrf_token, scheduler_process, wait_until, worker_process
from tests.failing_uploads import make_fail_for_good, mend
from tests.ingest_helpers import emails_csv, finished, upload_file
from webapp.extensions import db
from webapp.models import Upload
from webapp.monitor import failed
from webapp.queueing import MAINTENANCE_QUEUE, ingest_job_id, redis_connection


def page(client, **headers):
    response = client.get("/workers", headers=headers)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def worker_rows(client):
    """{pid: row html} of the workers table."""
    rows = re.findall(r'<tr id="worker-[^"]+">(.*?)</tr>', page(client), re.S)
    return {int(re.search(r'<td class="num">(\d+)</td>', row).group(1)): row for row in rows}


def state(row):
    return re.search(r'data-state="([^"]+)"', row).group(1)


def worker_state(client, pid):
    row = worker_rows(client).get(pid)
    return row and state(row)


def failed_ids(client, **query):
    text = client.get("/workers", query_string=query).get_data(as_text=True)
    return re.findall(r'<tr id="failed-([^"]+)">', text)


def short_ttl_worker(log):
    """A worker that sends a heartbeat every second, so it counts as lost a few seconds after its last."""
    argv = worker_process(log).argv
    return ChildProcess([*argv[:-2], "--worker-ttl", "2", *argv[-2:]], log)


def failing_jobs(count, queue=MAINTENANCE_QUEUE):
    queue = Queue(queue, connection=redis_connection())
    return [queue.enqueue("tests.support_jobs.fail", f"broken {number}").id for number in range(count)]


def wait_for_failures(count):
    wait_until(lambda: len(failed.failed_entries(redis_connection())) == count, message=f"{count} failed jobs")


def test_the_page_and_its_actions_need_a_login(app):
    anonymous = app.test_client()
    assert anonymous.get("/workers").status_code == 302
    assert anonymous.post("/workers/failed/requeue-all").status_code == 302


def test_a_busy_worker_shows_its_upload_then_goes_idle_with_one_job_done(client, start_process, monkeypatch):
    monkeypatch.setenv("INGEST_CHUNK_ROWS", "1000")
    content = emails_csv("b", 200_000)
    upload_id = upload_file(client, "big.csv", content)
    pid = start_process(worker_process).process.pid
    wait_until(lambda: worker_state(client, pid) == "busy", message="the worker to be busy")
    row = worker_rows(client)[pid]
    assert f'<a href="/uploads/{upload_id}">{ingest_job_id(upload_id)}</a>' in row
    assert "ingest, maintenance" in row and os.uname().nodename in row and "ago" in row
    client.post(f"/uploads/{upload_id}/cancel", data={"csrf_token": csrf_token(client, f"/uploads/{upload_id}")})
    assert finished(upload_id).status == "cancelled"
    wait_until(lambda: worker_state(client, pid) == "idle", message="the worker to be idle")
    done, failures = re.findall(r'<td class="num">([\d,]+)</td>', worker_rows(client)[pid])[1:3]
    assert (done, failures) == ("1", "0")


def test_a_suspended_worker_is_not_lost_but_a_killed_one_is(client, start_process):
    worker = start_process(short_ttl_worker)
    pid = worker.process.pid
    wait_until(lambda: worker_state(client, pid) == "idle", message="the worker to register")
    suspend(redis_connection())
    Queue(MAINTENANCE_QUEUE, connection=redis_connection()).enqueue("tests.support_jobs.count_operators")
    # An idle worker looks at suspension after its next job.
    wait_until(lambda: worker_state(client, pid) == "suspended", message="the worker to be suspended")
    time.sleep(6)   # longer than the heartbeats a suspended worker does not send
    assert worker_state(client, pid) == "suspended"
    resume(redis_connection())
    wait_until(lambda: worker_state(client, pid) == "idle", message="the worker to resume")
    worker.kill()
    assert worker_state(client, pid) == "idle"   # RQ keeps a dead worker's registration for a while
    wait_until(lambda: worker_state(client, pid) == "lost", timeout=30, message="the worker to be lost")
    assert "no heartbeat within its TTL" in worker_rows(client)[pid]


def test_the_live_part_is_polled_as_a_fragment(client):
    fragment = page(client, **{"HX-Request": "true"})
    assert "<html" not in fragment
    assert 'id="monitor-live" hx-get="/workers?page=1"' in fragment and 'hx-trigger="every 2s"' in fragment
    assert "No worker is running" in fragment


def test_queues_show_their_length_and_oldest_job(client):
    failing_jobs(3)
    text = page(client)
    maintenance = re.search(r'<tr id="queue-maintenance">(.*?)</tr>', text, re.S).group(1)
    assert '<td class="num" data-counter="waiting">3</td>' in maintenance
    assert re.search(r"<td>\d+ s</td>", maintenance)
    assert '<td class="num" data-counter="waiting">0</td>' in text.split('id="queue-ingest"')[1]


def test_failed_jobs_are_listed_newest_first_with_their_exception(client, start_process, monkeypatch):
    jobs = failing_jobs(3)
    start_process(worker_process)
    wait_for_failures(3)
    text = page(client)
    assert "Failed jobs (3)" in text
    assert failed_ids(client) == jobs[::-1]
    assert "RuntimeError: broken 0" in text and "tests.support_jobs.fail" in text
    monkeypatch.setattr(failed, "PAGE_SIZE", 2)
    assert failed_ids(client) == jobs[:0:-1]
    assert failed_ids(client, page=2) == jobs[:1]
    assert "page 2 of 2" in client.get("/workers?page=2").get_data(as_text=True)


def test_delete_and_requeue_need_a_post_with_a_csrf_token(client, start_process):
    jobs = failing_jobs(3)
    start_process(worker_process)
    wait_for_failures(3)
    token = csrf_token(client, "/workers")
    assert client.get(f"/workers/failed/{jobs[0]}/delete").status_code == 405
    assert client.get("/workers/failed/requeue-all").status_code == 405
    assert client.post(f"/workers/failed/{jobs[0]}/delete").status_code == 400
    assert client.post("/workers/failed/requeue-all").status_code == 400
    assert sorted(failed_ids(client)) == sorted(jobs)

    response = client.post(f"/workers/failed/{jobs[0]}/delete", data={"csrf_token": token})
    assert response.status_code == 303 and response.location.endswith("/workers?page=1")
    assert f"Job {jobs[0]} is deleted." in page(client)
    assert not Job.exists(jobs[0], connection=redis_connection())
    assert sorted(failed_ids(client)) == sorted(jobs[1:])

    fragment = client.post(f"/workers/failed/{jobs[1]}/requeue", data={"csrf_token": token},
                           headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f"Job {jobs[1]} is queued again." in fragment and 'id="monitor-live"' in fragment
    assert "is no longer failed" in client.post(f"/workers/failed/{jobs[0]}/requeue", data={"csrf_token": token},
                                                headers={"HX-Request": "true"}).get_data(as_text=True)
    wait_for_failures(2)   # it ran, and failed again

    assert client.post("/workers/failed/requeue-all", data={"csrf_token": token}).status_code == 303
    assert "2 failed job(s) queued again." in page(client)
    wait_for_failures(2)
    assert Job.fetch(jobs[2], connection=redis_connection()).get_status() == JobStatus.FAILED


def test_requeueing_a_failed_ingest_job_resumes_its_upload(client, start_process):
    upload_id = upload_file(client, "people.csv", b"email\nann@example.com\nbob@example.com\n")
    make_fail_for_good(upload_id)
    worker = start_process(worker_process)
    upload = finished(upload_id)
    assert upload.status == "failed" and "RuntimeError: the database went away" in upload.failure_reason
    job_id = ingest_job_id(upload_id)
    wait_until(lambda: failed_ids(client) == [job_id], message="the failed ingest job")
    row = re.search(rf'<tr id="failed-{job_id}">(.*?)</tr>', page(client), re.S).group(1)
    assert f'<a href="/uploads/{upload_id}">{job_id}</a>' in row
    assert "RuntimeError: the database went away" in row

    worker.kill()   # so that the upload's status can be seen before anything runs it
    mend()
    client.post(f"/workers/failed/{job_id}/requeue", data={"csrf_token": csrf_token(client, "/workers")})
    db.session.expire_all()
    assert db.session.get(Upload, upload_id).status == "queued"
    assert redis_connection().lrange("rq:queue:ingest", 0, -1) == [job_id.encode()]
    start_process(worker_process)
    upload = finished(upload_id)
    assert (upload.status, upload.rows_inserted, upload.failure_reason) == ("completed", 2, None)
    assert failed_ids(client) == []


def test_the_scheduler_registers_each_periodic_job_once_and_the_page_lists_them(app, client, start_process):
    expected = sorted(job_id for job_id, _, _ in periodic_jobs(app.config))
    for _ in range(2):   # a restart
        scheduler = start_process(scheduler_process)
        wait_until(lambda: "jobs.retention.delete_expired_raw_files" in scheduler.log.read_text(),
                   timeout=30, message="the scheduler to register its jobs")
        scheduler.kill()
    scheduled = Scheduler(connection=redis_connection()).get_jobs()
    assert sorted(job.id for job in scheduled) == expected
    text = page(client)
    for job_id in expected:
        row = re.search(rf'<tr id="scheduled-{job_id}">(.*?)</tr>', text, re.S).group(1)
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", row)
    assert "jobs.retention.delete_expired_raw_files" in text and "1 h 0 min" in text


def test_the_add_worker_command_starts_a_worker_with_nothing_but_its_three_settings(client, start_process):
    text = page(client)
    script = html.unescape(re.search(r'<pre class="command"><code>(.*?)</code></pre>', text, re.S).group(1))
    assert "rq worker --worker-class jobs.worker.AppWorker" in script
    assert [name for name in re.findall(r"^export (\w+)=", script, re.M)] == ["DATABASE_URL", "REDIS_URL",
                                                                              "SECRET_KEY"]
    assert "test-secret" not in text
    script = script.replace("<the SECRET_KEY this server uses>", os.environ["SECRET_KEY"])

    def started_by_hand(log):
        return ChildProcess(["env", "-i", f"PATH={os.environ['PATH']}", "bash", "-c", script], log)
    start_process(started_by_hand)
    wait_until(lambda: 'data-state="idle"' in page(client), timeout=30, message="the new worker")
