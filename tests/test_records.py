"""The records area: list, search, sort, filters, keyset pages, forms, delete, export."""
import csv
import html
import io
import json
import re
import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import psycopg
import pytest

from tests.conftest import csrf_token, log_in, wait_until
from webapp.extensions import db
from webapp.models import Record, Upload
from webapp.records import listing
from webapp.records.query import BadQuery, decode_cursor, encode_cursor, parse_query
from webapp.validation import normalize_email

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)


def add_records(*rows):
    """Insert records given as dicts (email required); returns them, ids assigned."""
    records = [Record(email_norm=normalize_email(row["email"]), extra={}, **row) for row in rows]
    db.session.add_all(records)
    db.session.commit()
    return records


def add_upload(filename="people.csv"):
    upload = Upload(filename=filename, size_bytes=10, status="completed")
    db.session.add(upload)
    db.session.commit()
    return upload


def listed_ids(page):
    return [int(record_id) for record_id in re.findall(r'<tr id="record-(\d+)"', page)]


def link(page, rel):
    found = re.search(rf'rel="{rel}" href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def get_page(client, url, query=None, **headers):
    response = client.get(url, query_string=query, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


# Listing, search and filters

def test_list_shows_records_newest_first_with_an_exact_count(client):
    add_records({"email": "old@example.com", "first_name": "Old", "created_at": T0},
                {"email": "new@example.com", "first_name": "New", "company": "Acme",
                 "created_at": T0 + timedelta(days=1)})
    page = get_page(client, "/records")
    assert "<h1>Records</h1>" in page and "2 records" in page
    assert page.index("new@example.com") < page.index("old@example.com")
    assert "Acme" in page


def test_an_htmx_request_gets_only_the_results(client):
    add_records({"email": "a@example.com"})
    response = client.get("/records?q=a", headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert "<html" not in fragment and "a@example.com" in fragment
    assert "HX-Request" in response.headers["Vary"]
    restored = client.get("/records?q=a", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restored.get_data(as_text=True)


@pytest.fixture
def people(app):
    return add_records(
        {"email": "Alice.Smith@example.com", "first_name": "Alice", "last_name": "Smith",
         "company": "Acme Corporation"},
        {"email": "bob@example.org", "first_name": "Bob", "last_name": "Jones", "company": "Initech"},
        {"email": "carol@acme.test", "first_name": "Carol", "last_name": "Smithers", "company": None},
        {"email": "dave_100%@example.net", "first_name": "Dave", "last_name": None, "company": "Globex"},
    )


@pytest.mark.parametrize("term, expected", [
    ("alice.smith@ex", ["Alice.Smith@example.com"]),   # email prefix, any case
    ("ALICE", ["Alice.Smith@example.com"]),
    ("bob@", ["bob@example.org"]),
    ("SMI", ["Alice.Smith@example.com", "carol@acme.test"]),    # the start of a last name
    ("acme", ["Alice.Smith@example.com"]),                      # company; carol's domain is no prefix
    ("acme corp", ["Alice.Smith@example.com"]),                 # the start of a company name
    ("alice smi", ["Alice.Smith@example.com"]),                 # the start of the full name
    ("carol jones", []),
    ("mith", []),                                               # the middle of a word is not searched
    ("globex", ["dave_100%@example.net"]),
    ("dave_100%", ["dave_100%@example.net"]),
    ("_", []),                                                 # LIKE wildcards are taken literally
    ("%", []),
    ("nobody", []),
])
def test_search_matches_email_prefix_names_and_company(client, people, term, expected):
    page = get_page(client, "/records", {"q": term, "sort": "email"})
    by_id = {record.id: record.email for record in people}
    assert [by_id[record_id] for record_id in listed_ids(page)] == sorted(expected, key=str.lower)


def test_filters_by_upload_country_and_created_dates(client):
    upload = add_upload()
    first, second, third = add_records(
        {"email": "a@example.com", "country": "DE", "upload_id": upload.id, "source_line": 2,
         "created_at": datetime(2026, 3, 1, 23, 59, tzinfo=timezone.utc)},
        {"email": "b@example.com", "country": "FR", "upload_id": upload.id, "source_line": 3,
         "created_at": datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)},
        {"email": "c@example.com", "country": "DE", "created_at": datetime(2026, 3, 3, tzinfo=timezone.utc)},
    )
    assert listed_ids(get_page(client, f"/records?upload={upload.id}")) == [second.id, first.id]
    assert listed_ids(get_page(client, "/records?country=DE")) == [third.id, first.id]
    assert listed_ids(get_page(client, "/records?country=de")) == [third.id, first.id]
    assert listed_ids(get_page(client, "/records?created_from=2026-03-02")) == [third.id, second.id]
    assert listed_ids(get_page(client, "/records?created_to=2026-03-01")) == [first.id]
    assert listed_ids(get_page(client, "/records?created_from=2026-03-02&created_to=2026-03-02")) == [second.id]
    assert listed_ids(get_page(client, f"/records?upload={upload.id}&country=DE")) == [first.id]


def test_a_large_count_is_refined_by_a_request_of_its_own(client):
    db.session.execute(db.text(
        "INSERT INTO records (email, email_norm) "
        "SELECT 'r' || n || '@example.com', 'r' || n || '@example.com' FROM generate_series(1, 100001) AS n"))
    db.session.commit()
    db.session.execute(db.text("ANALYZE records"))
    db.session.commit()
    page = get_page(client, "/records")
    assert re.search(r'<p class="count" hx-get="/records/count\?sort=created&amp;dir=desc" hx-trigger="load"', page)
    assert re.search(r">about [\d,]+ records<", page)
    assert re.search(r">about [\d,]+ records<", get_page(client, "/records/count"))
    assert get_page(client, "/records/count?q=r1").strip() == '<p class="count">11,113 records</p>'
    # Far fewer matches than COLLECT_SEARCH_BELOW: the page collects them all and counts them exactly.
    assert '<p class="count">1,113 records</p>' in get_page(client, "/records?q=r10")
    assert "1 record<" in get_page(client, "/records?q=r77777@")
    assert client.get("/records/count?sort=nonsense").status_code == 400


# Sorting and keyset pagination

SORT_KEYS = {
    "email": lambda record: record.email_norm,
    "first_name": lambda record: f"{record.first_name or ''} {record.last_name or ''}".lower(),
    "last_name": lambda record: (record.last_name or "").lower(),
    "company": lambda record: (record.company or "").lower(),
    "city": lambda record: (record.city or "").lower(),
    "country": lambda record: (record.country or "").lower(),
    "upload": lambda record: record.upload_id or 0,
    "created": lambda record: record.created_at,
}


def seed_ties(count):
    """`count` records whose sort columns repeat a few values (in any case, and NULLs) many times."""
    uploads = [add_upload("one.csv").id, add_upload("two.csv").id, None]
    names = ["Ann", "bea", None, "ANN"]
    rows = [{"email": f"Person{n:04}@example.com", "first_name": names[n % 4], "last_name": names[n % 3],
             "company": ["Acme", None][n % 2], "city": ["Oslo", "rome", "", None][n % 4],
             "country": ["NO", "IT"][n % 2], "upload_id": uploads[n % 3],
             "created_at": T0 + timedelta(hours=n % 4)} for n in range(count)]
    add_records(*rows)
    return db.session.scalars(db.select(Record)).all()  # loaded again in one query, not one per record


@pytest.fixture
def many_ties(app):
    return seed_ties(57)


def walk(client, url, rel):
    """Follow `rel` links from `url` as htmx does; returns the ids of each page and its URL."""
    pages, urls = [], []
    while url:
        page = get_page(client, url, **{"HX-Request": "true"})
        pages.append(listed_ids(page))
        urls.append(url)
        url = link(page, rel)
    return pages, urls


# A search with few matches is sorted from the collected matches, everything else by PostgreSQL's choice.
@pytest.mark.parametrize("count, search, size, page_sizes", [
    (57, "", 25, [25, 25, 7]), (57, "person", 25, [25, 25, 7]), (1010, "", 200, [200] * 5 + [10])])
@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("sort", list(SORT_KEYS))
def test_pages_never_skip_or_repeat_a_row_across_ties(client, sort, direction, count, search, size, page_sizes):
    records = seed_ties(count)
    expected = [record.id for record in sorted(
        records, key=lambda record: (SORT_KEYS[sort](record), record.id), reverse=direction == "desc")]
    forward, urls = walk(client, f"/records?q={search}&sort={sort}&dir={direction}&size={size}", "next")
    assert [len(page) for page in forward] == page_sizes
    assert sum(forward, []) == expected
    backward, _ = walk(client, urls[-1], "prev")
    assert backward == forward[::-1]


# A search expected to match many records is looked for within a stretch of the sort order the
# statistics give, and in another way when fewer than a page match there.
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_pages_of_a_search_bounded_by_statistics_never_skip_or_repeat(client, monkeypatch, direction):
    monkeypatch.setattr(listing, "BOUND_SEARCH_ABOVE", 0)
    monkeypatch.setattr(listing, "BOUND_SPARE", 1)
    records = seed_ties(1010)  # four creation times, a quarter of the records each
    db.session.execute(db.text("ANALYZE records"))
    db.session.commit()
    bounded, fetch_bounded_page = [], listing.fetch_bounded_page

    def recorded(*args):
        bounded.append(fetch_bounded_page(*args))
        return bounded[-1]

    monkeypatch.setattr(listing, "fetch_bounded_page", recorded)
    expected = [record.id for record in sorted(
        records, key=lambda record: (record.created_at, record.id), reverse=direction == "desc")]
    forward, urls = walk(client, f"/records?q=person&sort=created&dir={direction}&size=25", "next")
    assert sum(forward, []) == expected
    backward, _ = walk(client, urls[-1], "prev")
    assert backward == forward[::-1]
    assert any(page is not None for page in bounded) and any(page is None for page in bounded)


@pytest.mark.parametrize("start, descending, share, bound", [
    (None, True, 0.1, 3), (None, True, 0.3, 2), (None, True, 0.6, None),
    (3, True, 0.1, 2), (3, True, 0.3, 2), (3, True, 0.45, 1), (1, True, 0.1, 1), (1, True, 0.2, None),
    (None, False, 0.1, 1), (None, False, 0.2, 2), (None, False, 0.4, 3),
    (3, False, 0.2, 4), (3, False, 0.3, None), (2, False, 0.1, 2), (2, False, 0.3, 3)])
def test_the_bound_of_a_stretch_covers_the_share_asked_for(start, descending, share, bound):
    shares = [(1, 1, 0.125), (2, 2, 0.125), (2, 3, 0.25), (3, 4, 0.25)]  # two common values, two buckets
    assert listing.sort_bound(shares, start, descending, share) == bound


def test_previous_from_a_short_second_page_gives_a_full_first_page(client, many_ties):
    first = get_page(client, "/records?size=50")
    second = get_page(client, link(first, "next"))
    assert len(listed_ids(second)) == 7
    assert listed_ids(get_page(client, link(second, "prev"))) == listed_ids(first)
    assert link(first, "prev") is None


def test_page_size_can_be_chosen(client, many_ties):
    assert len(listed_ids(get_page(client, "/records?size=25"))) == 25
    assert len(listed_ids(get_page(client, "/records?size=100"))) == 57
    assert client.get("/records?size=30").status_code == 400


def test_sort_headers_flip_the_direction(client, many_ties):
    page = get_page(client, "/records?sort=last_name&dir=asc")
    assert 'aria-sort="ascending"' in page
    assert "sort=last_name&amp;dir=desc" in page


# Refused query strings

@pytest.mark.parametrize("query", ["sort=password_hash", "sort=id;DROP TABLE records", "dir=sideways",
                                   "upload=2147483648",
                                   "size=0", "upload=abc", "upload=-1", "created_from=yesterday",
                                   "after=x&before=y"])
def test_unknown_or_malformed_arguments_are_400(client, query):
    response = client.get(f"/records?{query}")
    assert response.status_code == 400
    assert "<h1>Bad request</h1>" in response.get_data(as_text=True)


def token(value):
    return encode_cursor(*value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("cursor", [
    "not-a-cursor!", "e30", "W10", "WyJhIl0",                      # not base64 / {} / [] / ["a"]
    ("Ann", 5),                                                  # a name where a time belongs
    ("2026-03-01T09:30:00", 5),                                  # a time without zone
    ("2026-03-01T09:30:00+00:00", "5"), ("2026-03-01T09:30:00+00:00", -5),
    ("2026-03-01T09:30:00+00:00", 2**70),
])
def test_a_malformed_cursor_is_400(client, cursor):
    for name in ("after", "before"):
        response = client.get(f"/records?{name}={token(cursor)}")
        assert response.status_code == 400
        assert "page link is damaged" in response.get_data(as_text=True)


@pytest.mark.parametrize("sort, value", [("upload", 2**40), ("created", "2026-03-01T09:30:00+00:00")])
def test_cursors_with_large_numbers_find_nothing_rather_than_fail(client, many_ties, sort, value):
    for name in ("after", "before"):
        cursor = encode_cursor(value, 2**40)
        response = client.get(f"/records?sort={sort}&dir=asc&{name}={cursor}")
        assert response.status_code == 200


HOSTILE = ["' OR '1'='1", "1; DROP TABLE records; --", '") OR 1=1 --', "%' --", "\\", "<script>x</script>",
           "\x00", "a\x00b", "\ud800", "x" * 2**20, "1" * 2**20]
PARAMETERS = ["q", "sort", "dir", "upload", "country", "created_from", "created_to", "size", "after", "before"]


@pytest.mark.parametrize("parameter", PARAMETERS)
def test_injection_looking_input_is_refused_or_finds_nothing(client, people, parameter):
    for value in HOSTILE:
        # A lone surrogate goes as its bytes (%ED%A0%80), as a browser would send it.
        query = urlencode({parameter: value, "bom": "1"}, errors="surrogatepass")
        for path in ("/records", "/records/count", "/records/export.csv"):
            response = client.get(path, query_string=query)
            body = response.get_data(as_text=True)
            assert response.status_code in (200, 400), body
            if response.status_code == 200 and path == "/records":
                assert listed_ids(body) == []
            if response.status_code == 200 and path.endswith(".csv"):
                assert len(body.splitlines()) == 1
    assert db.session.scalar(db.select(db.func.count(Record.id))) == len(people)


def test_parse_query_reads_defaults_and_round_trips_cursors():
    query = parse_query({})
    assert (query.sort, query.direction, query.size, query.after) == ("created", "desc", 50, None)
    assert parse_query({"sort": "city"}).direction == "asc"
    moment = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=timezone.utc)
    assert decode_cursor(encode_cursor(moment, 7), datetime) == (moment, 7)
    assert decode_cursor(encode_cursor("Zoë «quoted»", 9), str) == ("Zoë «quoted»", 9)
    with pytest.raises(BadQuery):
        decode_cursor(encode_cursor("Zoë", 9), int)
    query = parse_query({"q": " smith ", "created_to": "2026-03-02", "upload": "3"})
    assert query.link_args(after="abc") == {"q": "smith", "upload": 3, "created_to": "2026-03-02",
                                            "sort": "created", "dir": "desc", "size": 50, "after": "abc"}


# Detail page

def test_detail_page_shows_every_field_where_it_came_from_and_who_changed_it(client, operator):
    upload = add_upload("crm-export.csv")
    record, = add_records({"email": "Zoe@Example.com", "first_name": "Zoë", "last_name": "Ng", "phone": "+44 1",
                           "company": "Acme", "city": "Leeds", "country": "GB", "upload_id": upload.id,
                           "source_line": 42, "updated_by": operator.id})
    record.extra = {"Loyalty tier": "gold", "notes": "likes <b>tea</b>"}
    db.session.commit()
    page = get_page(client, f"/records/{record.id}")
    for text in ["Zoe@Example.com", "Zoë", "+44 1", "Leeds", "GB", "Loyalty tier", "gold",
                 "likes &lt;b&gt;tea&lt;/b&gt;", "crm-export.csv", "line 42", "by op@example.com"]:
        assert text in page
    for missing in ("/records/999999", f"/records/{2**63}", f"/records/{2**63}/edit", "/records/0/delete"):
        assert client.get(missing).status_code == 404
    assert client.get(f"/records/{2**40}").status_code == 404


# Forms and the email check

def check(client, email, record_id=None):
    return get_page(client, "/records/check-email", {"email": email, "record_id": record_id})


def test_the_email_check_finds_the_address_in_any_case(client):
    record, = add_records({"email": "Taken@Example.com"})
    assert "Already used by" in check(client, "taken@EXAMPLE.com")
    assert f'href="/records/{record.id}"' in check(client, "taken@example.com")
    assert check(client, "taken@example.com", record.id).strip() == ""
    assert check(client, "free@example.com").strip() == ""
    assert "not a valid email address" in check(client, "not-an-address")
    assert check(client, "").strip() == ""
    assert client.get(f"/records/check-email?email=a@b.org&record_id={2**63}").status_code == 400


def form_data(client, path, **values):
    data = {"email": "", "first_name": "", "last_name": "", "phone": "", "company": "", "city": "",
            "country": "", "csrf_token": csrf_token(client, path)}
    data.update(values)
    return data


def test_a_new_record_is_saved_with_its_author(client, operator):
    response = client.post("/records/new", data=form_data(client, "/records/new", email=" New@Example.com ",
                                                            first_name="Nia", city=""))
    assert response.status_code == 303
    record = db.session.scalar(db.select(Record))
    assert response.location == f"/records/{record.id}"
    assert (record.email, record.email_norm, record.first_name, record.city) == \
        ("New@Example.com", "new@example.com", "Nia", None)
    assert record.updated_by == operator.id and record.upload_id is None
    assert "Saved New@Example.com." in get_page(client, response.location)


def test_the_form_uses_the_shared_validation(client):
    response = client.post("/records/new", data=form_data(client, "/records/new", email="nope",
                                                            last_name="bad\x01name"))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "is not a valid email address" in page and "contains a control character" in page
    assert db.session.scalar(db.select(db.func.count(Record.id))) == 0


def test_saving_an_email_another_record_holds_is_a_form_error(client):
    holder, = add_records({"email": "someone@example.com"})
    response = client.post("/records/new", data=form_data(client, "/records/new", email="SOMEONE@example.com"))
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Already used by" in page and f'href="/records/{holder.id}"' in page


def test_an_edit_records_when_and_by_whom(client, operator):
    record, = add_records({"email": "edit@example.com", "first_name": "Ed",
                           "updated_at": datetime(2020, 1, 1, tzinfo=timezone.utc)})
    path = f"/records/{record.id}/edit"
    assert 'value="edit@example.com"' in get_page(client, path)
    response = client.post(path, data=form_data(client, path, email="edit@example.com", first_name="Edna"))
    assert response.status_code == 303
    db.session.refresh(record)
    assert record.first_name == "Edna" and record.updated_by == operator.id
    assert record.updated_at > datetime.now(timezone.utc) - timedelta(minutes=1)


def waiting_updates(url):
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                  "AND query LIKE 'UPDATE records%'").fetchone()[0]


def test_two_simultaneous_edits_to_the_same_email_one_wins_one_gets_a_form_error(app, operator):
    ids = [record.id for record in add_records({"email": "first@example.com"}, {"email": "second@example.com"})]
    results = {}

    def edit(record_id):
        client = app.test_client()
        log_in(client)
        path = f"/records/{record_id}/edit"
        data = form_data(client, path, email="Same@Example.com")
        response = client.post(path, data=data)
        results[record_id] = (response.status_code, response.get_data(as_text=True))

    url = app.config["DATABASE_URL"]
    with psycopg.connect(url) as blocker:
        # Both requests reach their UPDATE and wait there; released together, they race for the index.
        blocker.execute("LOCK TABLE records IN SHARE ROW EXCLUSIVE MODE")
        threads = [threading.Thread(target=edit, args=(record_id,)) for record_id in ids]
        for thread in threads:
            thread.start()
        wait_until(lambda: waiting_updates(url) == 2, timeout=30, message="both updates waiting")
    for thread in threads:
        thread.join()

    statuses = sorted(status for status, _ in results.values())
    assert statuses == [303, 409]
    loser_page = next(page for status, page in results.values() if status == 409)
    assert "Already used by" in loser_page
    holders = db.session.scalars(db.select(Record).filter_by(email_norm="same@example.com")).all()
    assert len(holders) == 1


# Delete

def test_delete_asks_first_then_deletes(client):
    keep, gone = (record.id for record in add_records({"email": "keep@example.com"}, {"email": "gone@example.com"}))
    page = get_page(client, f"/records/{gone}/delete")
    assert "Delete 1 record?" in page and "gone@example.com" in page
    assert db.session.get(Record, gone) is not None
    token = csrf_token(client, "/records")
    response = client.post("/records/delete", data={"ids": gone, "confirmed": "yes", "csrf_token": token})
    assert response.status_code == 303 and response.location == "/records"
    assert "Deleted 1 record." in get_page(client, "/records")
    db.session.expire_all()
    assert db.session.get(Record, gone) is None and db.session.get(Record, keep) is not None


def test_bulk_delete_confirms_the_selection_and_reports_the_count(client, many_ties):
    chosen = [record.id for record in many_ties[:3]]
    token = csrf_token(client, "/records")
    back = "/records?sort=email&dir=asc"
    page = client.post("/records/delete", data={"ids": chosen, "next": back, "csrf_token": token})
    assert page.status_code == 200 and "Delete 3 records?" in page.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Record.id))) == 57
    response = client.post("/records/delete", data={"ids": chosen, "next": back, "confirmed": "yes",
                                                    "csrf_token": token})
    assert response.status_code == 303 and response.location == back
    assert "Deleted 3 records." in get_page(client, back)
    assert db.session.scalar(db.select(db.func.count(Record.id))) == 54


@pytest.mark.parametrize("ids", [["abc"], ["1 OR 1=1"], [str(2**64)], ["1"] * 1001])
def test_bulk_delete_refuses_a_bad_selection(client, ids):
    token = csrf_token(client, "/records")
    assert client.post("/records/delete", data={"ids": ids, "csrf_token": token}).status_code == 400


def test_bulk_delete_of_nothing_says_what_to_do(client):
    token = csrf_token(client, "/records")
    response = client.post("/records/delete", data={"next": "/records?sort=email", "csrf_token": token})
    assert response.status_code == 303 and response.location == "/records?sort=email"
    assert "Select the records to delete first." in get_page(client, response.location)


def test_delete_needs_the_csrf_token(client):
    record, = add_records({"email": "x@example.com"})
    response = client.post("/records/delete", data={"ids": record.id, "confirmed": "yes"})
    assert response.status_code == 400
    assert db.session.get(Record, record.id) is not None


@pytest.mark.parametrize("method, path", [("GET", "/records"), ("GET", "/records/1"),
                                          ("GET", "/records/export.csv"), ("GET", "/records/check-email"),
                                          ("POST", "/records/delete"), ("POST", "/records/new")])
def test_anonymous_visitors_are_sent_to_log_in(app, method, path):
    response = app.test_client().open(path, method=method)
    assert response.status_code == 302 and response.location.startswith("/login")


# Export

def read_csv(response):
    return list(csv.reader(io.StringIO(response.get_data().decode("utf-8"), newline="")))


def test_the_export_is_the_filtered_and_sorted_view_streamed(client, many_ties):
    url = "/records/export.csv?sort=last_name&dir=desc&country=IT"
    response = client.get(url)
    assert response.status_code == 200 and response.is_streamed
    assert response.content_type == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="records-')
    header, *rows = read_csv(response)
    assert header == ["email", "first_name", "last_name", "phone", "company", "city", "country",
                      "extra", "id", "upload_id", "source_line", "created_at", "updated_at"]
    pages, _ = walk(client, "/records?sort=last_name&dir=desc&country=IT&size=25", "next")
    listed = sum(pages, [])
    assert [int(row[header.index("id")]) for row in rows] == listed and len(listed) == 28


def test_the_export_has_the_extra_columns_as_json_and_a_bom_on_request(client):
    record, = add_records({"email": "zoë@example.com", "first_name": "Zoë"})
    record.extra = {"tier": "gold", "note": "äö"}
    db.session.commit()
    plain = client.get("/records/export.csv").get_data()
    assert plain.startswith(b"email,first_name")
    with_bom = client.get("/records/export.csv?bom=1").get_data()
    assert with_bom.startswith("\ufeff".encode()) and with_bom[3:] == plain
    header, row = read_csv(client.get("/records/export.csv"))
    assert row[header.index("first_name")] == "Zoë"
    assert json.loads(row[header.index("extra")]) == {"tier": "gold", "note": "äö"}
    assert client.get("/records/export.csv?bom=yes").status_code == 400


def test_the_export_neutralises_spreadsheet_formulas(client):
    add_records({"email": "f@example.com", "first_name": "=HYPERLINK(\"http://evil\")", "last_name": "+1",
                 "company": "-2", "city": "@SUM(A1)", "country": "\tTAB", "phone": "\rCR"})
    header, row = read_csv(client.get("/records/export.csv"))
    cells = dict(zip(header, row))
    assert cells["first_name"] == "'=HYPERLINK(\"http://evil\")"
    assert [cells[name] for name in ("last_name", "company", "city", "country", "phone")] == \
        ["'+1", "'-2", "'@SUM(A1)", "'\tTAB", "'\rCR"]
    assert cells["email"] == "f@example.com"


def test_the_export_of_nothing_is_just_the_header(client):
    assert read_csv(client.get("/records/export.csv?q=nobody"))[0][0] == "email"
    assert len(read_csv(client.get("/records/export.csv?q=nobody"))) == 1
