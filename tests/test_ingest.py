"""Files through the real form, a real RQ worker and PostgreSQL: the bad-input list."""
import csv
import io
import re

import pytest

from tests.ingest_helpers import finished, ingest, post_files, row_errors, stored_emails, upload_file
from webapp.extensions import db
from webapp.models import Record

pytestmark = pytest.mark.usefixtures("worker")


def record(email_norm):
    return db.session.scalar(db.select(Record).filter_by(email_norm=email_norm))


def test_a_clean_file_becomes_records_with_its_extra_columns(client):
    upload = ingest(client, "people.csv", b"E-Mail,First Name,Surname,Phone,Company,Town,Country,Shoe size\n"
                                          b"ann@example.com,Ann,Lee,+44 1,Acme,Leeds,UK,38\n"
                                          b"bob@example.com,Bob,,,,,,\n")
    assert (upload.status, upload.lines_read, upload.rows_inserted) == ("completed", 2, 2)
    ann = record("ann@example.com")
    assert (ann.first_name, ann.last_name, ann.phone, ann.company, ann.city, ann.country) == \
        ("Ann", "Lee", "+44 1", "Acme", "Leeds", "UK")
    assert ann.extra == {"Shoe size": "38"} and ann.upload_id == upload.id and ann.source_line == 2
    assert record("bob@example.com").last_name is None


def test_header_only_completes_with_nothing_to_do(client):
    upload = ingest(client, "empty.csv", b"email,name\n")
    assert (upload.status, upload.lines_read) == ("completed", 0)
    assert "no data lines" in client.get(f"/uploads/{upload.id}").get_data(as_text=True)


def test_latin1_file_keeps_its_accents_and_says_how_it_was_read(client):
    upload = ingest(client, "latin.csv", "email,first_name\njose@example.com,José Müller\n".encode("cp1252"))
    assert record("jose@example.com").first_name == "José Müller"
    assert "read as Windows-1252" in client.get(f"/uploads/{upload.id}").get_data(as_text=True)


def test_utf8_bom_and_crlf(client):
    upload = ingest(client, "bom.csv", "\ufeffemail,city\r\nzoe@example.com,Zürich\r\n".encode("utf-8"))
    assert upload.rows_inserted == 1
    assert record("zoe@example.com").city == "Zürich"


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters_are_sniffed(client, delimiter):
    content = f"email{delimiter}company\na@example.com{delimiter}A, B and C\n".encode()
    ingest(client, "d.csv", content)
    assert record("a@example.com").company == "A, B and C"


def test_quoted_newlines_quotes_and_delimiters(client):
    upload = ingest(client, "q.csv", b'email,company,notes\n'
                                     b'a@example.com,"Smith, ""Jr"" & Co","line one\nline two"\n'
                                     b'b@example.com,Plain,x\n')
    assert upload.rows_inserted == 2
    stored = record("a@example.com")
    assert stored.company == 'Smith, "Jr" & Co' and stored.extra == {"notes": "line one\nline two"}
    assert record("b@example.com").source_line == 4


def test_ragged_rows_are_reported_and_the_rest_goes_on(client):
    upload = ingest(client, "r.csv", b"email,a,b\nx@example.com,1\ny@example.com,1,2\nz@example.com,1,2,3\n"
                                     b"t@example.com,1,2,\n")
    assert row_errors(upload.id) == [
        (2, None, "line 2 has 2 fields but the header has 3"),
        (4, None, "line 4 has 4 fields but the header has 3")]
    assert stored_emails() == ["t@example.com", "y@example.com"]
    assert (upload.rows_invalid, upload.rows_inserted) == (2, 2)


def test_a_5mb_field_is_rejected_not_stored(client):
    content = b"email,notes\nbig@example.com," + b"x" * (5 * 1024 * 1024) + b"\nok@example.com,fine\n"
    upload = ingest(client, "big.csv", content)
    assert row_errors(upload.id) == [(2, "notes", "longer than 1000 characters (5,242,880)")]
    assert stored_emails() == ["ok@example.com"]


def test_nul_bytes_are_a_row_error(client):
    upload = ingest(client, "nul.csv", b"email,name\nnul@example.com,A\x00B\nok@example.com,AB\n")
    assert row_errors(upload.id) == [(2, "name", "contains a control character (such as NUL)")]
    assert stored_emails() == ["ok@example.com"]


def test_an_unterminated_quote_at_the_end_fails_the_upload_with_the_line(client):
    upload = ingest(client, "u.csv", b'email,name\na@example.com,A\nb@example.com,"B\nc@example.com,C\n')
    assert upload.status == "failed"
    assert upload.failure_reason == ("file is not valid CSV: unterminated quote starting at line 3; "
                                     "the lines before it were stored")
    assert stored_emails() == ["a@example.com"]


def test_emails_differing_only_in_case_are_duplicates(client):
    upload = ingest(client, "c.csv", b"email\nAnn@Example.com\nann@example.COM\n ANN@EXAMPLE.COM \n")
    assert stored_emails() == ["Ann@Example.com"]
    assert (upload.rows_inserted, upload.duplicates_in_file) == (1, 2)
    assert [reason for _, _, reason in row_errors(upload.id)] == ["duplicate of line 2 in this file"] * 2


def test_invalid_emails_are_reported_one_by_one(client):
    upload = ingest(client, "e.csv", "email\nplain\na@b\n@example.com\nok@example.com\nδοκιμή@παράδειγμα.δοκιμή\n"
                    "\n".encode())
    assert [line for line, _, _ in row_errors(upload.id)] == [2, 3, 4]
    assert row_errors(upload.id)[0] == (2, "email", "'plain' is not a valid email address")
    assert stored_emails() == ["ok@example.com", "δοκιμή@παράδειγμα.δοκιμή"]


def test_formula_values_are_stored_as_given_and_neutralised_in_the_report(client):
    upload = ingest(client, "f.csv", b'email,first_name,last_name,company\n'
                                     b'f@example.com,=HYPERLINK("http://x"),+1,@SUM(A1)\n'
                                     b'bad-email,=1+1,-2,x\n')
    stored = record("f@example.com")
    assert (stored.first_name, stored.last_name, stored.company) == ('=HYPERLINK("http://x")', "+1", "@SUM(A1)")
    report = client.get(f"/uploads/{upload.id}/errors.csv")
    assert report.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(report.get_data(as_text=True))))
    assert rows == [["line", "column", "reason", "raw_line", "kind"],
                    ["3", "email", "'bad-email' is not a valid email address", "bad-email,=1+1,-2,x\n", "invalid"]]


def test_the_report_and_the_page_tell_invalid_lines_from_duplicates(client):
    ingest(client, "first.csv", b"email\nkept@example.com\n")
    upload = ingest(client, "second.csv", b"email,city\nnew@example.com,\nplain,\nNEW@example.com,\n"
                                          b"kept@example.com,\nok@example.com,\x01\n")
    assert (upload.rows_invalid, upload.duplicates) == (2, 2)
    report = client.get(f"/uploads/{upload.id}/errors.csv").get_data(as_text=True)
    assert [(line, kind) for line, *_, kind in csv.reader(io.StringIO(report))] == [
        ("line", "kind"), ("3", "invalid"), ("4", "duplicate"), ("5", "duplicate"), ("6", "invalid")]
    page = client.get(f"/uploads/{upload.id}").get_data(as_text=True)
    assert re.findall(r'<span class="kind kind-(\w+)">(\w+)</span>', page) == [
        ("invalid", "invalid"), ("duplicate", "duplicate"), ("duplicate", "duplicate"), ("invalid", "invalid")]


def test_the_error_report_neutralises_formula_starts(client):
    upload = ingest(client, "g.csv", b"email,x\n=cmd|' /C calc'!A0,1\n")
    rows = list(csv.reader(io.StringIO(client.get(f"/uploads/{upload.id}/errors.csv").get_data(as_text=True))))
    assert rows[1][3].startswith("'=cmd")


def test_script_in_a_name_is_stored_as_given_and_shown_escaped(client):
    upload = ingest(client, "x.csv", b"email,first_name\nx@example.com,<script>alert(1)</script>\n"
                                     b"not-an-email,<script>alert(2)</script>\n")
    assert record("x@example.com").first_name == "<script>alert(1)</script>"
    page = client.get(f"/uploads/{upload.id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page and "<script>alert(2)" not in page


def test_the_same_file_twice_skip_then_update(client):
    content = b"email,city\na@example.com,Oslo\nb@example.com,Rome\n"
    first = ingest(client, "one.csv", content)
    again = ingest(client, "one.csv", content)
    assert (first.rows_inserted, again.rows_inserted, again.duplicates_existing) == (2, 0, 2)
    assert row_errors(again.id)[0][2].startswith("email is already stored (record #")
    updated = ingest(client, "one.csv", b"email,city\nA@example.com,Bergen\nb@example.com,Milan\n",
                     on_duplicate="update")
    assert (updated.rows_updated, updated.rows_inserted, updated.duplicates) == (2, 0, 0)
    assert record("a@example.com").city == "Bergen" and record("a@example.com").email == "A@example.com"
    assert record("b@example.com").upload_id == updated.id


def test_update_mode_only_overwrites_the_columns_the_file_has(client):
    ingest(client, "one.csv", b"email,city,company\na@example.com,Oslo,Acme\n")
    ingest(client, "two.csv", b"email,city\na@example.com,Rome\na@example.com,Paris\n", on_duplicate="update")
    stored = record("a@example.com")
    assert (stored.city, stored.company) == ("Rome", "Acme")


def test_reject_mode_stores_nothing_when_any_line_is_bad(client):
    ingest(client, "seed.csv", b"email\nold@example.com\n")
    upload = ingest(client, "r.csv", b"email\nnew@example.com\nold@example.com\n", on_duplicate="reject")
    assert upload.status == "failed"
    assert upload.failure_reason.startswith("rejected: 1 line(s) are invalid or duplicates (first: line 3")
    assert upload.failure_reason.endswith("nothing was stored")
    assert stored_emails() == ["old@example.com"]
    clean = ingest(client, "r2.csv", b"email\nnew@example.com\n", on_duplicate="reject")
    assert (clean.status, clean.rows_inserted) == ("completed", 1)
    assert stored_emails() == ["new@example.com", "old@example.com"]


def test_validate_only_reports_everything_and_stores_nothing(client):
    upload = ingest(client, "v.csv", b"email\na@example.com\nA@example.com\nbad\n", validate_only=True)
    assert (upload.status, upload.rows_inserted, upload.duplicates, upload.rows_invalid) == ("completed", 1, 1, 1)
    assert stored_emails() == []
    assert "Dry run" in client.get(f"/uploads/{upload.id}").get_data(as_text=True)


def test_several_files_in_one_submit_are_each_ingested(client):
    response = post_files(client, [("a.csv", b"email\na@example.com\n"), ("b.csv", b"email\nb@example.com\n")])
    assert response.status_code == 303
    from webapp.models import Upload
    for upload_id in db.session.scalars(db.select(Upload.id)):
        assert finished(upload_id).status == "completed"
    assert stored_emails() == ["a@example.com", "b@example.com"]


def test_the_uploads_list_shows_newest_first(client):
    first = upload_file(client, "first.csv", b"email\na@example.com\n")
    second = upload_file(client, "second.csv", b"email\nb@example.com\n")
    finished(first), finished(second)
    page = client.get("/uploads").get_data(as_text=True)
    assert page.index("second.csv") < page.index("first.csv")
    assert "second.csv" not in client.get("/uploads?status=failed").get_data(as_text=True)
    assert client.get("/uploads?status=nonsense").status_code == 400
