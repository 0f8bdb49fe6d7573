"""An operator's view of an upload with bad lines, in a real browser: the notice,
the reasons with their counts, a kind's lines paged to the last one, the
throughput chart drawn live, all of it readable at 1280 px and on a phone."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser import browser, live_server, logged_in_page  # noqa: F401 (fixtures)
from tests.conftest import worker_process
from tests.ingest_helpers import finished
from webapp.extensions import db
from webapp.models import UploadCheckpoint

pytestmark = pytest.mark.browser

TIMEOUT = 60_000  # ms, for anything that waits on the worker
INVALID = 130     # three pages of the list and a bit
WIDTHS = (1280, 390)


def bad_lines_csv():
    """Good lines with invalid emails, duplicates and short lines among them; (bytes, {label: count})."""
    lines = ["email,first_name,city"]
    for number in range(1_000):
        lines.append(f"user{number}@example.com,Ann,Graz")
        if number % 7 == 0 and number < 7 * INVALID:
            lines.append(f"not-an-email-{number},Bad,Graz")
        if number % 50 == 0:
            lines.append(f"USER{number}@example.com,Again,Graz")
        if number % 100 == 0:
            lines.append(f"short{number}@example.com")
    expected = {"invalid email": INVALID, "duplicate within the file": 20, "wrong number of fields": 10}
    return ("\n".join(lines) + "\n").encode(), expected


def shown_summary(page):
    items = page.locator("ul.reasons li")
    return {item.locator(".bar-label").inner_text(): int(item.locator(".bar-count").inner_text().replace(",", ""))
            for item in items.all()}


def assert_fits(page, width, path):
    page.set_viewport_size({"width": width, "height": 900})
    page.screenshot(path=path, full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{overflow} px wider than the {width} px window"


@pytest.fixture
def page(logged_in_page, monkeypatch):
    monkeypatch.setenv("INGEST_CHUNK_ROWS", "100")  # a checkpoint every 100 lines: several points on the chart
    return logged_in_page


def test_an_operator_reads_the_report_of_a_file_with_bad_lines(page, start_process, tmp_path):
    content, expected = bad_lines_csv()
    page.goto("/uploads/new")
    page.set_input_files("input[type=file]", files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": content}])
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/uploads/\d+$"))
    upload_id = int(page.url.rsplit("/", 1)[1])
    notice = page.get_by_text("bad.csv is queued")
    assert notice.is_visible()
    start_process(worker_process)

    page.locator(f"#upload-{upload_id}-progress .status-completed").wait_for(timeout=TIMEOUT)
    assert "queued" not in page.locator("main").inner_text()
    page.locator("tr[id^=rejected-]").first.wait_for(timeout=10_000)  # the list followed the job
    points = page.locator(f"#upload-{upload_id}-throughput circle.checkpoint")
    checkpoints = db.session.scalar(db.select(db.func.count()).select_from(UploadCheckpoint)
                                    .filter_by(upload_id=upload_id))
    assert checkpoints >= 10
    expect(points).to_have_count(checkpoints)
    assert shown_summary(page) == expected
    upload = finished(upload_id)
    assert sum(expected.values()) == upload.duplicates + upload.rows_invalid

    page.get_by_role("link", name="invalid email").click()
    page.wait_for_url(re.compile(r"kind=invalid_email"))
    load_more = page.get_by_role("link", name="Load more rejected lines")
    rows = page.locator("tr[id^=rejected-]")
    while load_more.count():
        shown = rows.count()
        load_more.click()
        rows.nth(shown).wait_for()
    page.get_by_text("That is the last rejected line that matches.").wait_for()
    assert rows.count() == INVALID
    assert "not-an-email-903" in rows.last.inner_text()
    assert page.evaluate("window.location.search") == "?kind=invalid_email"  # paged without leaving the page

    for width in WIDTHS:
        assert_fits(page, width, tmp_path / f"upload-{width}.png")
    page.goto("/")
    page.locator("#dashboard-reasons li").first.wait_for()
    for width in WIDTHS:
        assert_fits(page, width, tmp_path / f"dashboard-{width}.png")
