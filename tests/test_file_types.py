"""Excel workbooks (.xlsx) and JSON Lines (.jsonl) through the real form, a real
RQ worker and PostgreSQL: the same validation, duplicates, report and resume as CSV."""
import csv
import datetime
import io
import json

import openpyxl
import pytest

from tests.conftest import csrf_token, scheduler_process, wait_until, worker_process
from tests.ingest_helpers import finished, ingest, row_errors
from tests.test_ingest_faults import (assert_resumed_exactly, checkpoint, counts, people_csv,  # noqa: F401
                                      small_chunks)  # small_chunks: a fixture
from webapp.extensions import db
from webapp.models import Record, Upload


def workbook(*sheets):
    """An .xlsx file of (title, rows) sheets, in that order."""
    book = openpyxl.Workbook(write_only=True)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    content = io.BytesIO()
    book.save(content)
    return content.getvalue()


def json_lines(*objects):
    return "".join(f"{json.dumps(item)}\n" if item is not None else "\n" for item in objects).encode()


def post_file(client, name, content, **fields):
    """POST /uploads/new with one file and other form fields (sheet, on_duplicate)."""
    data = {"csrf_token": csrf_token(client, "/uploads/new"), "on_duplicate": "skip",
            "files": [(io.BytesIO(content), name)], **fields}
    return client.post("/uploads/new", data=data, content_type="multipart/form-data")


def ingest_file(client, name, content, **fields):
    response = post_file(client, name, content, **fields)
    assert response.status_code == 303, response.get_data(as_text=True)
    return finished(int(response.location.rsplit("/", 1)[1]))


def record(email_norm):
    return db.session.scalar(db.select(Record).filter_by(email_norm=email_norm))


def test_the_form_offers_the_file_types_and_a_sheet(client):
    page = client.get("/uploads/new").get_data(as_text=True)
    assert 'accept=".csv,text/csv,.xlsx,.jsonl"' in page and 'name="sheet"' in page


def test_an_unknown_sheet_is_refused_naming_the_sheets(client):
    content = workbook(("Notes", [["text"]]), ("People", [["email"], ["a@example.com"]]))
    response = post_file(client, "people.xlsx", content, sheet="Staff")
    assert response.status_code == 400
    assert ("people.xlsx: the workbook has no sheet &#39;Staff&#39;; its sheets are &#39;Notes&#39;, "
            "&#39;People&#39;") in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Upload.id))) == 0


@pytest.mark.usefixtures("worker")
def test_a_chosen_sheet_ingests_with_its_row_numbers_as_lines(client):
    ingest(client, "stored.csv", b"email\nold@example.com\n")
    rows = [["Email", "First name", "Joined", "Phone"],
            ["ann@example.com", "Ann", datetime.date(2024, 3, 1), 441134960000],
            [],
            ["ANN@Example.com", "Ann again", None, None],
            ["OLD@Example.com", "Old", None, None],
            ["not-an-email", "Bad", None, None],
            ["bob@example.com", "Bob", datetime.datetime(2024, 3, 1, 9, 30), 7.0]]
    upload = ingest_file(client, "people.xlsx", workbook(("Notes", [["no emails here"]]), ("People", rows)),
                         sheet="People")
    assert (upload.status, upload.filename, upload.delimiter) == ("completed", "people.xlsx", "People")
    assert counts(upload) == (5, 2, 2, 1)
    assert row_errors(upload.id) == [
        (4, "email", "duplicate of line 2 in this file"),
        (5, "email", f"email is already stored (record #{record('old@example.com').id}); kept the stored record"),
        (6, "email", "'not-an-email' is not a valid email address")]
    ann, bob = record("ann@example.com"), record("bob@example.com")
    assert (ann.first_name, ann.phone, ann.extra, ann.source_line) == ("Ann", "441134960000", {"Joined": "2024-03-01"}, 2)
    assert (bob.phone, bob.extra, bob.source_line) == ("7", {"Joined": "2024-03-01T09:30:00"}, 7)
    report = client.get(f"/uploads/{upload.id}/errors.csv").get_data(as_text=True)
    assert "4,email,duplicate of line 2 in this file,\"ANN@Example.com,Ann again\n\",duplicate" in report


@pytest.mark.usefixtures("worker")
def test_a_json_lines_file_ingests_with_its_line_numbers(client):
    ingest(client, "stored.csv", b"email\nold@example.com\n")
    content = json_lines({"email": "ann@example.com", "first_name": "Ann", "age": 41},
                         None,
                         {"email": "Ann@EXAMPLE.com", "first_name": "Ann again"},
                         {"E-Mail": "old@example.COM"},
                         {"email": "bob@example.com", "city": "York", "tags": ["a"]},
                         ["cat@example.com"],
                         {"email": "dan@example.com", "Surname": "Lee", "phone": None})
    upload = ingest_file(client, "people.jsonl", content)
    assert upload.status == "completed"
    assert counts(upload) == (6, 2, 2, 2)
    assert row_errors(upload.id) == [
        (3, "email", "duplicate of line 1 in this file"),
        (4, "email", f"email is already stored (record #{record('old@example.com').id}); kept the stored record"),
        (5, "tags", "must be a string, a number or null, not an array"),
        (6, None, "not a JSON object but an array")]
    ann, dan = record("ann@example.com"), record("dan@example.com")
    assert (ann.first_name, ann.extra, ann.source_line) == ("Ann", {"age": "41"}, 1)
    assert (dan.last_name, dan.phone, dan.source_line) == ("Lee", None, 7)


@pytest.mark.usefixtures("worker")
def test_update_overwrites_the_fields_the_first_object_names(client):
    ingest(client, "stored.csv", b"email,first_name,city\nann@example.com,Ann,Leeds\n")
    content = json_lines({"email": "ann@example.com", "first_name": "Anne"},
                         {"email": "bob@example.com", "city": "York"})
    upload = ingest_file(client, "people.jsonl", content, on_duplicate="update")
    assert (upload.rows_updated, upload.rows_inserted) == (1, 1)
    ann = record("ann@example.com")
    assert (ann.first_name, ann.city) == ("Anne", "Leeds")
    assert record("bob@example.com").city == "York"


def as_workbook(rows):
    return workbook(("People", rows))


def as_json_lines(rows):
    header, *lines = rows
    return json_lines(*(dict(zip(header, line)) for line in lines))


@pytest.mark.parametrize("name, make, first_line", [("people.xlsx", as_workbook, 2), ("people.jsonl", as_json_lines, 1)])
def test_a_work_horse_killed_mid_file_resumes_and_stores_each_row_once(client, small_chunks, start_process,
                                                                       name, make, first_line):
    content, expected = people_csv(30_000)
    response = post_file(client, name, make(list(csv.reader(io.StringIO(content.decode())))))
    upload_id = int(response.location.rsplit("/", 1)[1])
    start_process(scheduler_process)
    worker = start_process(worker_process)
    wait_until(lambda: checkpoint(upload_id) >= 6_000, timeout=120, message="checkpoint 6000")
    worker.kill()
    assert db.session.get(Upload, upload_id).status == "running"
    start_process(worker_process)
    lines = assert_resumed_exactly(upload_id, 30_000, expected, invalid=600)
    # people_csv's record n (from 0) is on line n + 2 of its CSV file: its 8th is the first invalid one.
    assert min(lines) == 7 + first_line
