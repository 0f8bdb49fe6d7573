"""Response headers and cookie settings every page gets."""
from flask import request
from flask.sessions import SecureCookieSessionInterface

# Scripts and styles come only from static/ (no inline code), so a stored
# <script> can never run even if escaping were forgotten somewhere.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
])

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def carries_bearer_token(request):
    return request.headers.get("Authorization", "")[:7].lower() == "bearer "


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is marked Secure whenever the request came over HTTPS.

    A request that carries a bearer token (the API's) gets an empty session that
    is never saved: verifying and re-signing the cookie cost a tenth of such a
    request's time, for nothing it uses.
    """

    def open_session(self, app, request):
        if carries_bearer_token(request):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if not carries_bearer_token(request):
            super().save_session(app, session, response)

    def get_cookie_secure(self, app):
        return super().get_cookie_secure(app) or request.is_secure


def add_headers(response):
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def register(app):
    app.session_interface = SessionInterface()
    app.after_request(add_headers)
