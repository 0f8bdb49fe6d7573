"""Intake: a Flask dashboard for bulk data intake."""
from pathlib import Path

from flask import Flask

from webapp.config import load_config
from webapp.extensions import csrf, db, login_manager, migrate, sock

ROOT = Path(__file__).resolve().parent.parent


def create_app(config=None):
    """Build the app from the environment; `config` overrides single settings (tests)."""
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.config.update(load_config())
    app.config.update(config or {})

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    sock.init_app(app)
    login_manager.init_app(app)

    from webapp import auth, cli, dashboard, errors, formatting, health, live, navigation, security, uploads
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(dashboard.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(uploads.blueprint)
    app.register_blueprint(live.blueprint)
    errors.register(app)
    navigation.register(app)
    formatting.register(app)
    security.register(app)
    cli.register(app)
    # After the blueprints: an anonymous request is sent to log in before its CSRF token is checked.
    csrf.init_app(app)
    return app
