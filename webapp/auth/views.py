from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from webapp.auth import throttle
from webapp.auth.forms import LoginForm
from webapp.extensions import db, login_manager
from webapp.models import Operator
from webapp.validation import normalize_email

blueprint = Blueprint("auth", __name__)

# Endpoints reachable without a login; everything else is refused. The API
# checks its own bearer tokens instead (webapp/api/auth.py).
PUBLIC_ENDPOINTS = {"auth.login", "health.health", "static"}
TOKEN_BLUEPRINTS = {"api", "metrics"}  # metrics: METRICS_TOKEN (webapp/metrics.py)

login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to continue."


@login_manager.user_loader
def load_operator(session_id):
    operator_id, _, session_token = session_id.partition(":")
    operator = db.session.get(Operator, int(operator_id)) if operator_id.isdigit() else None
    return operator if operator and operator.session_token == session_token else None


@blueprint.before_app_request
def require_login():
    if request.endpoint is None:
        return None  # no such address: a plain 404 tells nothing
    if request.endpoint in PUBLIC_ENDPOINTS or request.blueprint in TOKEN_BLUEPRINTS:
        return None
    if current_user.is_authenticated:
        return None
    if request.headers.get("Upgrade", "").lower() == "websocket":
        abort(401)  # a socket cannot follow a redirect to the login page
    return login_manager.unauthorized()


def safe_next(target):
    """Only follow a ?next= that stays on this site."""
    parts = urlsplit(target or "")
    if parts.scheme or parts.netloc or not (target or "").startswith("/"):
        return url_for("dashboard.index")
    return target


def start_new_session():
    """Drop everything the old session held, its CSRF token included."""
    session.clear()
    g.pop("csrf_token", None)


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form)
    email, address = normalize_email(form.email.data), request.remote_addr
    wait = throttle.seconds_blocked(email, address)
    if wait:
        flash(f"Too many failed attempts. Try again in {max(1, round(wait / 60))} minute(s).", "error")
        return render_template("auth/login.html", form=form), 429
    operator = db.session.scalar(db.select(Operator).filter_by(email=email))
    if operator and operator.check_password(form.password.data):
        throttle.clear(email)
        start_new_session()
        login_user(operator)
        return redirect(safe_next(request.args.get("next")), code=303)
    throttle.record_failure(email, address)
    flash("Wrong email or password.", "error")
    return render_template("auth/login.html", form=form), 401


@blueprint.post("/logout")
@login_required
def logout():
    current_user.end_sessions()
    db.session.commit()
    logout_user()
    start_new_session()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"), code=303)
