"""Intake: a Flask dashboard for bulk data intake."""
from flask import Flask

from webapp import json_provider
from webapp.config import ROOT, load_config
from webapp.extensions import csrf, db, login_manager, sock


def create_app(config=None, migrations=True):
    """Build the app from the environment; `config` overrides single settings (tests).

    `migrations=False` leaves out `flask db` and Alembic: RQ workers never
    migrate, and Alembic would add 12 MB to every work horse.
    """
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    json_provider.register(app)
    app.config.update(load_config())
    app.config.update(config or {})

    db.init_app(app)
    if migrations:
        from flask_migrate import Migrate
        Migrate(app, db, directory=str(ROOT / "migrations"))
    sock.init_app(app)
    login_manager.init_app(app)

    from webapp import converters
    converters.register(app)  # before the blueprints, whose routes use it
    from webapp import (api, auth, cli, dashboard, errors, formatting, health, live, metrics, monitor, navigation,
                        records, request_text, security, tokens, uploads)
    from webapp.live import right_of_way
    for blueprint in (auth.blueprint, dashboard.blueprint, health.blueprint, uploads.blueprint, live.blueprint,
                      records.blueprint, tokens.blueprint, api.blueprint, api.docs_blueprint,
                      monitor.blueprint, metrics.blueprint):
        app.register_blueprint(blueprint)
    csrf.exempt(api.blueprint)  # bearer tokens, never sent by a browser on its own
    errors.register(app)
    navigation.register(app)
    formatting.register(app)
    security.register(app)
    request_text.register(app)
    cli.register(app)
    right_of_way.register(app)
    # After the blueprints: an anonymous request is sent to log in before its CSRF token is checked.
    csrf.init_app(app)
    return app
