"""Hostile record values are shown as text in a real browser and never run."""
from urllib.parse import quote

import pytest

from tests.browser import browser, live_server, logged_in_page  # noqa: F401 (fixtures)
from webapp.extensions import db
from webapp.models import Record

pytestmark = pytest.mark.browser

SCRIPT = "<script>window.__xss=1</script>"
HOSTILE = {
    "first_name": SCRIPT,
    "last_name": '<img src=x onerror="window.__xss=2">',
    "company": '"><svg onload="window.__xss=3">',
    "city": "{{ 7*7 }} {% raw %}",
    "country": "</td></tr></table><script>window.__xss=4</script>",
    "phone": "javascript:window.__xss=5",
}
HOSTILE_EXTRA = {"<b>column</b>": "<script>window.__xss=6</script>"}


@pytest.fixture
def hostile_record(app):
    record = Record(email="xss@example.com", email_norm="xss@example.com", extra=HOSTILE_EXTRA, **HOSTILE)
    db.session.add(record)
    db.session.commit()
    return record.id


@pytest.fixture
def page(logged_in_page):
    """The logged-in page; any alert/confirm/prompt is recorded and dismissed."""
    logged_in_page.dialogs = []
    logged_in_page.on("dialog", lambda dialog: (logged_in_page.dialogs.append(dialog.message), dialog.dismiss()))
    return logged_in_page


def assert_nothing_ran(page):
    assert page.evaluate("window.__xss") is None
    assert page.dialogs == []


def test_the_list_shows_hostile_values_as_text(page, hostile_record):
    page.goto("/records")
    row = page.locator(f"#record-{hostile_record}")
    for value in HOSTILE.values():
        if value != HOSTILE["phone"]:  # the phone is not a list column
            assert value in row.inner_text()
    assert page.locator("main script").count() == 0
    assert_nothing_ran(page)


def test_live_search_swaps_in_hostile_values_as_text(page, hostile_record):
    page.goto("/records")
    with page.expect_response(lambda response: "q=" in response.url):
        page.fill("#q", "<script>")
    row = page.locator(f"#record-{hostile_record}")
    row.wait_for()
    assert SCRIPT in row.inner_text()
    assert "q=%3Cscript%3E" in page.url
    assert_nothing_ran(page)


def test_a_hostile_search_term_stays_in_the_search_box(page, hostile_record):
    term = '"><script>window.__xss=7</script>'
    page.goto("/records?q=" + quote(term))
    assert page.input_value("#q") == term
    assert_nothing_ran(page)


def test_the_detail_and_edit_pages_show_hostile_values_as_text(page, hostile_record):
    page.goto(f"/records/{hostile_record}")
    text = page.inner_text("main")
    for value in [*HOSTILE.values(), *HOSTILE_EXTRA, *HOSTILE_EXTRA.values()]:
        assert value in text
    assert_nothing_ran(page)
    page.goto(f"/records/{hostile_record}/edit")
    assert page.input_value("#first_name") == SCRIPT
    assert page.input_value("#company") == HOSTILE["company"]
    assert_nothing_ran(page)


def test_the_exact_count_arrives_after_the_rows(page, hostile_record):
    db.session.execute(db.text(
        "INSERT INTO records (email, email_norm) "
        "SELECT 'r' || n || '@example.com', 'r' || n || '@example.com' FROM generate_series(1, 1500) AS n"))
    db.session.commit()
    page.goto("/records?size=25")
    page.get_by_text("1,501 records", exact=True).wait_for()
    assert page.url.endswith("/records?size=25")
    assert_nothing_ran(page)
