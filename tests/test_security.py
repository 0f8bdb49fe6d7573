"""The security baseline: headers, cookies, login throttling, refusals."""
import pytest

from tests.conftest import PASSWORD, csrf_token, log_in
from webapp import create_app


def test_every_response_carries_the_security_headers(app, client):
    for path in ("/", "/login", "/uploads/", "/api/health"):
        headers = client.get(path).headers
        policy = headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["X-Frame-Options"] == "DENY"


def test_pages_have_no_inline_scripts(client):
    for path in ("/", "/uploads/", "/uploads/new"):
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


@pytest.mark.parametrize("query", ["status=' OR 1=1 --", "status=completed;DROP TABLE records",
                                   "before=1 OR 1=1", "before=-1", "view=upload&id=1;DROP"])
def test_injection_attempts_in_query_parameters_are_refused_or_harmless(client, query):
    path = "/live/poll?" + query if query.startswith("view") else "/uploads/?" + query
    response = client.get(path)
    assert response.status_code in (200, 400)
    assert "Traceback" not in response.get_data(as_text=True)


def test_state_changes_need_post_and_a_csrf_token(client):
    assert client.get("/uploads/1/cancel").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200
