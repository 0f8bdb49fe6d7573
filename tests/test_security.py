"""The security baseline: headers, cookies, login throttling, refusals."""
import html
import io
from urllib.parse import urlencode

import pytest

from tests.conftest import PASSWORD, csrf_token, log_in
from webapp import create_app
from webapp.validation import FIELDS

# Text no request may carry: PostgreSQL text cannot hold NUL, a lone surrogate is
# not valid UTF-8 (a browser sends its bytes, %ED%A0%80), and no value is that long.
UNUSABLE = {"NUL": "a\x00b", "lone surrogate": "a\ud800b", "1 MB": "x" * 2**20}


def test_every_response_carries_the_security_headers(app, client):
    for path in ("/", "/login", "/uploads", "/api/health"):
        headers = client.get(path).headers
        policy = headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["X-Frame-Options"] == "DENY"


def test_pages_have_no_inline_scripts(client):
    for path in ("/", "/uploads", "/uploads/new"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>" not in page and " on" + "click=" not in page


def test_the_session_cookie_is_httponly_and_samesite_lax(app, operator):
    response = log_in(app.test_client())
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_the_session_cookie_is_secure_over_https(app, operator):
    client = app.test_client()
    token = csrf_token(client, "https://localhost/login")
    response = client.post("https://localhost/login", data={"email": operator.email, "password": PASSWORD,
                                                            "csrf_token": token},
                           headers={"Referer": "https://localhost/login"})
    assert response.status_code == 303
    assert "Secure" in response.headers["Set-Cookie"]


def test_logging_in_starts_a_new_session(app, operator):
    client = app.test_client()
    before = csrf_token(client, "/login")
    log_in(client)
    assert csrf_token(client, "/") != before


def test_five_failures_block_the_account_even_for_the_right_password(app, operator):
    client = app.test_client()
    for _ in range(5):
        assert log_in(client, password="wrong").status_code == 401
    response = log_in(client)
    assert response.status_code == 429
    assert "Too many failed attempts. Try again in 15 minute(s)." in response.get_data(as_text=True)
    other_process = create_app({"TESTING": True}).test_client()
    assert log_in(other_process).status_code == 429


def test_failures_from_one_address_block_other_accounts_too(app, operator):
    client = app.test_client()
    for number in range(5):
        log_in(client, email=f"guess{number}@example.com", password="x")
    assert log_in(client).status_code == 429


def encoded(fields):
    """Fields as a query string or urlencoded body; a lone surrogate goes as its bytes, like a browser's."""
    return urlencode(fields, doseq=True, errors="surrogatepass")


UNUSABLE_QUERIES = [encoded(fields) for value in UNUSABLE.values() for fields in
                    ({"status": value}, {"before": value}, {"view": value}, {"view": "upload", "id": value})]


@pytest.mark.parametrize("query", ["status=' OR 1=1 --", "status=completed;DROP TABLE records",
                                   "before=1 OR 1=1", "before=-1", "view=upload&id=1;DROP", *UNUSABLE_QUERIES])
def test_injection_attempts_in_query_parameters_are_refused_or_harmless(client, query):
    path = "/live/poll?" + query if query.startswith("view") else "/uploads?" + query
    response = client.get(path)
    assert response.status_code in (200, 400)
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize("value, message", [
    (UNUSABLE["NUL"], "The query parameter 'anything' contains a NUL character."),
    (UNUSABLE["1 MB"], "The query parameter 'anything' is longer than 4,000 characters."),
])
def test_unusable_text_in_any_query_parameter_is_a_clear_400(client, value, message):
    for path in ("/", "/uploads", "/records", "/records/export.csv", "/workers", "/login"):
        response = client.get(path, query_string={"anything": value})
        page = html.unescape(response.get_data(as_text=True))
        assert response.status_code == 400, path
        assert "<h1>Bad request</h1>" in page and message in page, path


# Every form with every one of its fields (the CSRF token aside).
FORMS = {"/login": ["email", "password"], "/records/new": list(FIELDS), "/settings/tokens": ["name"],
         "/uploads/new": ["on_duplicate", "validate_only"], "/records/delete": ["ids", "next", "confirmed"]}


@pytest.mark.parametrize("path, field", [(path, field) for path, fields in FORMS.items() for field in fields])
@pytest.mark.parametrize("kind", list(UNUSABLE))
def test_every_form_field_refuses_unusable_text_without_a_server_error(client, path, field, kind):
    form_page = "/records/new" if path == "/records/delete" else path
    body = encoded({"csrf_token": csrf_token(client, form_page), field: UNUSABLE[kind]})
    response = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
    page = html.unescape(response.get_data(as_text=True))
    if kind == "lone surrogate":  # its bytes are not UTF-8, so they stay percent-encoded: plain text
        assert response.status_code < 500, page
    else:
        assert response.status_code == 400, page
        assert f"The form field '{field}'" in page and "<h1>Bad request</h1>" in page


def test_a_file_name_with_a_nul_is_a_clear_400(client):
    data = {"csrf_token": csrf_token(client, "/uploads/new"), "on_duplicate": "skip",
            "files": [(io.BytesIO(b"email\na@example.com\n"), "people\x00.csv")]}
    response = client.post("/uploads/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "The name of the file sent as 'files' contains a NUL character." in \
        html.unescape(response.get_data(as_text=True))


def test_state_changes_need_post_and_a_csrf_token(client):
    assert client.get("/uploads/1/cancel").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200
