import re

import pytest

from tests.conftest import PASSWORD, csrf_token, log_in

WRONG = "Wrong email or password."
WEBSOCKET_HANDSHAKE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                       "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def test_login_lands_on_the_dashboard(app, operator):
    client = app.test_client()
    response = log_in(client)
    assert response.status_code == 303 and response.location == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Dashboard" in page and "op@example.com" in page


@pytest.mark.parametrize("email, password", [
    ("op@example.com", "wrong password"),
    ("nobody@example.com", PASSWORD),
])
def test_wrong_password_and_unknown_email_get_the_same_message(app, operator, email, password):
    client = app.test_client()
    response = log_in(client, email, password)
    assert response.status_code == 401
    assert WRONG in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_email_is_matched_case_insensitively(app, operator):
    assert log_in(app.test_client(), "  OP@Example.com ").status_code == 303


def test_logout_ends_the_session(client):
    token = csrf_token(client, "/")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert client.get("/").status_code == 302


def test_next_only_follows_local_paths(app, operator):
    client = app.test_client()
    token = csrf_token(client, "/login")
    data = {"email": "op@example.com", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login?next=https://evil.example/", data=data).location == "/"


def _concrete(rule):
    return re.sub(r"<(?:\w+:)?(\w+)>", "1", rule.rule)


def test_every_page_redirects_to_login_when_logged_out(app):
    client = app.test_client()
    public = {"auth.login", "health.health", "static"}
    rules = [rule for rule in app.url_map.iter_rules()
             if rule.endpoint not in public and not rule.endpoint.startswith(("api.", "metrics."))]
    assert rules
    for rule in rules:
        method = "GET" if "GET" in rule.methods else sorted(rule.methods - {"OPTIONS", "HEAD"})[0]
        headers = WEBSOCKET_HANDSHAKE if rule.websocket else {}
        response = client.open(_concrete(rule), method=method, headers=headers)
        assert response.status_code in (302, 401), f"{rule} answered {response.status_code}"
        if response.status_code == 302:
            assert response.location.startswith("/login")


def test_every_api_route_refuses_a_client_without_a_token(app):
    client = app.test_client()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            method = sorted(rule.methods - {"OPTIONS", "HEAD"})[0]
            response = client.open(_concrete(rule), method=method)
            assert response.status_code == 401 and response.is_json, rule


def test_a_form_post_without_csrf_token_is_refused(app, operator):
    client = app.test_client()
    response = client.post("/login", data={"email": "op@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302
