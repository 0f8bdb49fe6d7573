"""Live progress in a real browser: an upload page, the uploads list and the
dashboard follow a real ingest (real PostgreSQL, Redis and RQ worker) to its
end without a reload, over the socket and, when the socket is blocked, by polling."""
import json
import re

import pytest

from tests.browser import browser, live_server, logged_in_page  # noqa: F401 (fixtures)
from tests.conftest import worker_process
from tests.ingest_helpers import finished, upload_file
from webapp.extensions import db
from webapp.models import Record, RowError

pytestmark = pytest.mark.browser

ROWS = 60_000
CHUNK_ROWS = "2000"
TIMEOUT = 60_000  # ms, for anything that waits on the worker

# Runs in the page before its own scripts, on every load: counts socket opens and
# keeps every distinct state the watched parts of the page went through.
RECORDER = """
window.__live = {opened: 0, states: []};
document.addEventListener("htmx:wsOpen", function () { window.__live.opened += 1; });
function liveText(selector) {
  var element = document.querySelector(selector);
  return element ? element.textContent.replace(/\\s+/g, " ").trim() : null;
}
function liveRecord() {
  var bar = document.querySelector("main section[id$='-progress'] progress");
  var status = document.querySelector("main section[id$='-progress'] .status");
  var state = JSON.stringify({
    lines: liveText("[data-counter=lines]"), percent: bar ? bar.value : null,
    status: status ? status.textContent : null, rows: liveText("main tbody"),
    active: liveText("#dashboard-active"), today: liveText("#dashboard-today")});
  var states = window.__live.states;
  if (states[states.length - 1] !== state) states.push(state);
}
document.addEventListener("DOMContentLoaded", function () {
  liveRecord();
  new MutationObserver(liveRecord).observe(document.body, {childList: true, subtree: true, characterData: true});
});
"""


def contacts_csv(rows=ROWS):
    """A CSV of `rows` data lines with some invalid lines and some repeated emails
    (in other letter case, with spaces around); returns (bytes, expected counts)."""
    lines, seen = ["email,first_name,city"], set()
    expected = {"inserted": 0, "duplicates": 0, "invalid": 0}
    for number in range(rows):
        if number % 101 == 100:
            lines.append(f"not-an-email-{number},Bad,Nowhere")
            expected["invalid"] += 1
            continue
        email = f"  LIVE{number - 25}@Example.COM " if number % 40 == 39 else f"live{number}@example.com"
        lines.append(f"{email},Name {number},Graz")
        key = email.strip().lower()
        expected["duplicates" if key in seen else "inserted"] += 1
        seen.add(key)
    assert expected["duplicates"] > 1000 and expected["invalid"] > 500
    return ("\n".join(lines) + "\n").encode(), expected


def count(text):
    return int(text.replace(",", ""))


def states(page):
    """Every distinct state the recorder saw, oldest first."""
    return [json.loads(state) for state in page.evaluate("window.__live.states")]


def page_counters(page, upload_id):
    section = page.locator(f"#upload-{upload_id}-progress")
    return {name: count(section.locator(f"[data-counter={name}]").inner_text())
            for name in ("lines", "inserted", "updated", "duplicates", "invalid")}


def assert_counts_match_the_database(page, upload_id, expected):
    shown = page_counters(page, upload_id)
    upload = finished(upload_id)
    stored = db.session.scalar(db.select(db.func.count()).select_from(Record).filter_by(upload_id=upload_id))
    reported = db.session.scalar(db.select(db.func.count()).select_from(RowError).filter_by(upload_id=upload_id))
    assert upload.status == "completed"
    assert shown == {"lines": upload.lines_read, "inserted": upload.rows_inserted, "updated": upload.rows_updated,
                     "duplicates": upload.duplicates, "invalid": upload.rows_invalid}
    assert shown == {"lines": ROWS, "updated": 0, **expected}
    assert stored == shown["inserted"]
    assert reported == shown["duplicates"] + shown["invalid"]


def upload_through_the_form(page, content):
    """Choose the file on /uploads/new, submit, land on the upload page; returns its id."""
    page.goto("/uploads/new")
    page.set_input_files("input[type=file]",
                         files=[{"name": "contacts.csv", "mimeType": "text/csv", "buffer": content}])
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/uploads/\d+$"))
    upload_id = int(page.url.rsplit("/", 1)[1])
    page.evaluate("window.__marker = 1")  # gone if the page is ever reloaded
    return upload_id


def assert_not_reloaded(page):
    assert page.evaluate("window.__marker") == 1


@pytest.fixture
def page(logged_in_page, monkeypatch):
    # Small chunks, so a file goes through many visible steps.
    monkeypatch.setenv("INGEST_CHUNK_ROWS", CHUNK_ROWS)
    logged_in_page.add_init_script(RECORDER)
    return logged_in_page


def test_the_upload_page_follows_the_ingest_over_the_socket(page, start_process):
    content, expected = contacts_csv()
    upload_id = upload_through_the_form(page, content)
    assert page.locator(f"#upload-{upload_id}-progress .status-queued").is_visible()
    page.wait_for_function("window.__live.opened > 0")
    start_process(worker_process)

    page.wait_for_selector(f"#upload-{upload_id}-progress .status-completed", timeout=TIMEOUT)

    seen = states(page)
    lines = {count(state["lines"]) for state in seen if state["lines"]}
    percents = {state["percent"] for state in seen}
    assert len({value for value in lines if 0 < value < ROWS}) >= 2, seen
    assert len({value for value in percents if 0 < value < 100}) >= 2, seen
    assert "running" in {state["status"] for state in seen}
    assert page.locator(f"#upload-{upload_id}-progress progress").get_attribute("value") == "100"
    assert page.locator("#live-paused").is_hidden()
    assert_counts_match_the_database(page, upload_id, expected)
    assert_not_reloaded(page)
    assert page.evaluate("window.__live.opened") == 1


def test_with_the_socket_blocked_the_page_polls_and_says_so(page, start_process):
    # 1006 is what a browser reports when the socket cannot be opened at all.
    page.route_web_socket("**/ws*", lambda socket: socket.close(code=1006))
    content, expected = contacts_csv()
    upload_id = upload_through_the_form(page, content)
    paused = page.locator("#live-paused")
    paused.wait_for(state="visible", timeout=TIMEOUT)
    assert paused.inner_text() == "Live updates paused — refreshing every 2 s."
    start_process(worker_process)

    page.wait_for_selector(f"#upload-{upload_id}-progress .status-completed", timeout=TIMEOUT)

    assert paused.is_visible()
    assert page.evaluate("window.__live.opened") == 0
    assert_counts_match_the_database(page, upload_id, expected)
    assert_not_reloaded(page)


def test_a_socket_the_server_refuses_also_falls_back_to_polling(page):
    # What the page sees when /ws refuses its Origin (close code 1008, policy violation).
    page.route_web_socket("**/ws*", lambda socket: socket.close(code=1008, reason="cross-site WebSocket refused"))
    page.goto("/")
    page.locator("#live-paused").wait_for(state="visible", timeout=5_000)


def open_watching(page, path):
    page.goto(path)
    page.evaluate("window.__marker = 1")
    page.wait_for_function("window.__live.opened > 0")


def test_the_dashboard_follows_a_running_upload(page, client, start_process):
    content, expected = contacts_csv()
    upload_id = upload_file(client, "contacts.csv", content)
    open_watching(page, "/")
    active = page.locator("#dashboard-active")
    assert active.locator(".status-queued").is_visible()
    start_process(worker_process)

    active.get_by_text("Nothing is being ingested right now.").wait_for(timeout=TIMEOUT)

    shown = [state["active"] for state in states(page)]
    assert any("contacts.csv running" in text for text in shown), shown
    assert finished(upload_id).status == "completed"
    today = " ".join(page.locator("#dashboard-today").inner_text().split())
    assert f"{expected['inserted']:,} rows inserted today" in today
    assert f"{expected['duplicates'] + expected['invalid']:,} rows rejected today" in today
    assert_not_reloaded(page)


def test_the_uploads_list_follows_a_running_upload(page, client, start_process):
    content, expected = contacts_csv()
    upload_id = upload_file(client, "contacts.csv", content)
    open_watching(page, "/uploads")
    row = page.locator(f"#upload-row-{upload_id}")
    assert row.locator(".status-queued").is_visible()
    start_process(worker_process)
    assert finished(upload_id).status == "completed"

    row.locator(".status-completed").wait_for(timeout=10_000)

    cells = row.locator("td").all_inner_texts()
    assert cells[2:7] == ["100%", f"{ROWS:,}", f"{expected['inserted']:,}", f"{expected['duplicates']:,}",
                          f"{expected['invalid']:,}"]
    shown = [state["rows"] for state in states(page)]
    assert any("contacts.csv running" in text for text in shown), shown
    assert_not_reloaded(page)
