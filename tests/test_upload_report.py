"""The upload page's report: why lines were rejected, every rejected line a
page at a time, the job's throughput, and a notice that stays true."""
import csv
import io
import re
from collections import Counter

import pytest

from tests.conftest import scheduler_process, wait_until, worker_process
from tests.ingest_helpers import finished, ingest, post_files, upload_file
from webapp.extensions import db
from webapp.models import RowError, Upload, UploadCheckpoint
from webapp.rejections import REASON_KIND, REASON_KINDS_BY_NAME, ROW_ERROR_KIND
from webapp.validation import MAX_FIELD_LENGTH, email_problem, value_problem

HTMX = {"HX-Request": "true"}
# One line of each kind (the reason kinds' names), repeated to tell the counts apart.
BAD_LINES = {
    "invalid_email": (3, "plain{n},Bad,Graz"),
    "missing_email": (1, ",Nobody,Graz"),
    "duplicate_in_file": (4, "OK{n}@Example.com,Again,Graz"),
    "already_stored": (2, "kept{n}@example.com,Kept,Graz"),
    "control_characters": (1, "ctl@example.com,A\x01B,Graz"),
    "too_long": (1, "long@example.com," + "x" * (MAX_FIELD_LENGTH + 1) + ",Graz"),
    "wrong_field_count": (2, "short{n}@example.com,Two"),
    "not_csv": (1, 'quote@example.com,"Bob" Smith,Graz'),
}


def report_csv():
    """A file of good lines and every kind of bad one; (bytes, {kind: count})."""
    lines = ["email,first_name,city"] + [f"ok{n}@example.com,Ann,Graz" for n in range(5)]
    for count, line in BAD_LINES.values():
        lines += [line.format(n=n) for n in range(count)]
    return ("\n".join(lines) + "\n").encode(), {kind: count for kind, (count, _) in BAD_LINES.items()}


def summary_on(page):
    """{kind: count} as the reasons chart of an upload page shows them."""
    reasons = re.search(r'<ul class="bar-chart reasons".*?</ul>', page, re.S).group(0)
    bars = re.findall(r'kind=(\w+)#rejected">[^<]+</a></span>.*?<span class="bar-count">([\d,]+)</span>', reasons, re.S)
    return {kind: int(count.replace(",", "")) for kind, count in bars}


def shown_lines(html):
    return [int(line) for line in re.findall(r'<tr id="rejected-\d+"><td class="num">(\d+)</td>', html)]


def next_rows_url(html):
    found = re.search(r'hx-get="([^"]+)" hx-target="closest tr"', html)
    return found and found.group(1).replace("&amp;", "&")


@pytest.fixture
def stored_kept(client, worker):
    ingest(client, "kept.csv", b"email\nkept0@example.com\nkept1@example.com\n")


def test_the_summary_counts_each_kind_of_rejected_line(client, stored_kept):
    content, expected = report_csv()
    upload = ingest(client, "report.csv", content)
    page = client.get(f"/uploads/{upload.id}").get_data(as_text=True)

    assert summary_on(page) == expected
    assert sum(expected.values()) == upload.duplicates + upload.rows_invalid
    assert "15 lines rejected: 6 duplicates, 9 invalid." in " ".join(page.split())
    for kind in expected:
        filtered = client.get(f"/uploads/{upload.id}?kind={kind}").get_data(as_text=True)
        assert len(shown_lines(filtered)) == expected[kind], kind
    assert client.get(f"/uploads/{upload.id}?kind=typo").status_code == 400


def test_every_reason_the_validation_gives_has_a_kind_and_the_coarse_kind_follows(app):
    upload = Upload(filename="reasons.csv")
    db.session.add(upload)
    db.session.flush()
    reasons = [("invalid_email", "email", email_problem("a@b")), ("missing_email", "email", email_problem(" ")),
               ("too_long", "email", email_problem("a" * 65 + "@example.com")),
               ("too_long", None, "the line is larger than 50 MB (52,428,801 characters); it was not read"),
               ("control_characters", "city", value_problem("a\x00b")),
               ("duplicate_in_file", "email", "duplicate of record 3 in this batch"),
               ("wrong_field_count", None, "record 4 has 3 fields but the header has 2"),
               ("other", "city", "a reason no kind knows")]
    db.session.add_all(RowError(upload_id=upload.id, line=line, column_name=column, reason=reason)
                       for line, (_, column, reason) in enumerate(reasons, 2))
    db.session.flush()
    kinds = db.session.execute(db.select(REASON_KIND, ROW_ERROR_KIND).where(RowError.upload_id == upload.id)
                               .order_by(RowError.line)).all()
    assert kinds == [(kind, REASON_KINDS_BY_NAME[kind].coarse) for kind, _, _ in reasons]
    db.session.rollback()


def test_the_list_pages_to_the_last_line_of_a_kind_and_column(client, worker):
    content = b"email,city\n" + b"".join(b"bad%d,Graz\n" % n if n % 3 else b"ok%d@example.com,\x02\n" % n
                                         for n in range(180))
    upload = ingest(client, "many.csv", content)
    page = client.get(f"/uploads/{upload.id}?kind=invalid_email&column=email").get_data(as_text=True)
    lines = shown_lines(page)
    assert len(lines) == 50
    url = next_rows_url(page)
    while url:
        assert "kind=invalid_email" in url and "column=email" in url
        rows = client.get(url, headers=HTMX).get_data(as_text=True)
        lines += shown_lines(rows)
        url = next_rows_url(rows)
    assert "That is the last rejected line that matches." in rows
    assert lines == [n + 2 for n in range(180) if n % 3]
    report = list(csv.reader(io.StringIO(
        client.get(f"/uploads/{upload.id}/errors.csv?kind=control_characters").get_data(as_text=True))))
    assert [int(row[0]) for row in report[1:]] == [n + 2 for n in range(180) if n % 3 == 0]

    assert shown_lines(client.get(f"/uploads/{upload.id}?column=nosuch").get_data(as_text=True)) == []
    for bad in ("after=not-a-cursor", "column=" + "c" * 201, "kind=../etc"):
        assert client.get(f"/uploads/{upload.id}?{bad}").status_code == 400, bad
        assert client.get(f"/uploads/{upload.id}/errors.csv?{bad}").status_code == 400, bad


def test_the_notice_says_queued_only_while_the_upload_is(client, start_process):
    upload_id = upload_file(client, "notice.csv", b"email\nn@example.com\n")
    assert "notice.csv is queued" in client.get(f"/uploads/{upload_id}").get_data(as_text=True)
    start_process(worker_process)
    assert finished(upload_id).status == "completed"
    assert "queued" not in client.get(f"/uploads/{upload_id}").get_data(as_text=True)
    response = post_files(client, [("a.csv", b"email\na@example.com\n"), ("b.csv", b"email\nb@example.com\n")])
    listing = client.get(response.location).get_data(as_text=True)
    assert "Received 2 files" in listing and "is queued" not in listing


def checkpoints(upload_id):
    return db.session.scalar(db.select(db.func.count()).select_from(UploadCheckpoint).filter_by(upload_id=upload_id))


def test_the_chart_has_a_point_per_checkpoint_and_marks_where_a_killed_job_resumed(client, monkeypatch,
                                                                                 start_process):
    monkeypatch.setenv("INGEST_CHUNK_ROWS", "500")
    monkeypatch.setenv("REAPER_SECONDS", "2")
    upload_id = upload_file(client, "killed.csv", b"email\n" + b"".join(b"k%d@example.com\n" % n
                                                                        for n in range(40_000)))
    start_process(scheduler_process)
    worker = start_process(worker_process)
    wait_until(lambda: checkpoints(upload_id) >= 4, timeout=60, message="a few checkpoints")
    worker.kill()
    start_process(worker_process)
    upload = finished(upload_id)
    assert upload.status == "completed" and upload.rows_inserted == 40_000

    runs = Counter(db.session.scalars(db.select(UploadCheckpoint.run_started_at).filter_by(upload_id=upload_id)))
    page = client.get(f"/uploads/{upload_id}").get_data(as_text=True)
    assert page.count('<circle class="checkpoint"') == sum(runs.values()) == 80
    assert len(runs) == 2
    assert page.count('<line class="resume"') == 1
    assert re.search(r"Resumed at \d+ s, after \d+ s without progress", page)
    # No line joins the last point before the stall to the first after it: the gap.
    assert page.count('<line class="rate"') == sum(runs.values()) - len(runs)


def test_the_dashboard_draws_the_last_30_days(client, stored_kept):
    content, expected = report_csv()
    ingest(client, "report.csv", content)
    assert ingest(client, "rejected.csv", b"email\nr@example.com\nr@example.com\n",
                  on_duplicate="reject").status == "failed"
    page = client.get("/").get_data(as_text=True)
    assert page.count('<rect class="stored"') == 1  # today only
    outcomes = re.search(r'id="dashboard-outcomes".*?</section>', page, re.S).group(0)
    assert re.findall(r'status=(\w+)">\w+</a></span>.*?<span class="bar-count">(\d+)</span>', outcomes, re.S) == [
        ("completed", "2"), ("failed", "1")]
    reasons = re.search(r'id="dashboard-reasons".*?</section>', page, re.S).group(0)
    assert re.findall(r'<span class="bar-label">([^<]+)</span>', reasons)[:2] == ["duplicate within the file",
                                                                                   "invalid email"]
