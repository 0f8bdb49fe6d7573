import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from webapp import create_app
from webapp.config import ConfigError, load_config


def test_defaults_are_sensible():
    config = load_config({"SECRET_KEY": "s"})
    assert config["MAX_UPLOAD_MB"] == 512
    assert config["MAX_CONTENT_LENGTH"] == 512 * 1024 * 1024
    assert config["INGEST_CHUNK_ROWS"] > 0
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")


def test_production_without_secret_key_is_a_clear_error():
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        load_config({})


def test_development_makes_up_a_secret_key():
    assert load_config({"INTAKE_ENV": "development"})["SECRET_KEY"]


@pytest.mark.parametrize("name, value, message", [
    ("MAX_UPLOAD_MB", "lots", "MAX_UPLOAD_MB must be a whole number"),
    ("INGEST_CHUNK_ROWS", "0", "INGEST_CHUNK_ROWS must be greater than 0"),
    ("DATABASE_URL", "mysql://x/y", "DATABASE_URL must be a postgresql:// URL"),
    ("INTAKE_ENV", "staging", "INTAKE_ENV must be one of"),
])
def test_malformed_settings_name_the_setting(name, value, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"SECRET_KEY": "s", name: value})


def test_app_factory_reads_the_environment_and_takes_overrides(monkeypatch, migrated):
    monkeypatch.setenv("MAX_UPLOAD_MB", "3")
    app = create_app({"TESTING": True})
    assert app.testing
    assert app.config["MAX_CONTENT_LENGTH"] == 3 * 1024 * 1024


def test_starting_in_production_without_secret_key_fails_with_the_reason():
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "INTAKE_ENV")}
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=environment,
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
