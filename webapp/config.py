"""Settings, read from environment variables (documented in the README)."""
import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message says which and how to fix it."""


DEFAULTS = {
    "INTAKE_ENV": "production",
    "DATABASE_URL": "postgresql://intake@127.0.0.1:5432/intake",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "MAX_UPLOAD_MB": "512",
    "INGEST_CHUNK_ROWS": "10000",
    "INGEST_RETRIES": "5",
    # About 50,000 lines: from here on an upload loads bare and builds its indexes once (bench/README.md).
    "OWN_PARTITION_MIN_BYTES": str(5 * 1024 * 1024),
    # The records list met its targets at 5 partitions and missed them on searches at 50.
    "OWN_PARTITIONS_KEPT": "5",
    "REAPER_SECONDS": "60",
    "BUFFER_FLUSH_SECONDS": "2",
    "BUFFER_FLUSH_ROWS": "5000",
    "LOG_FORMAT": "text",
    "RAW_RETENTION_DAYS": "30",
    "ARCHIVE_AFTER_DAYS": "0",
    "ARCHIVE_DIR": str(ROOT / "var" / "archive"),
    "PUBLIC_URL": "http://127.0.0.1:8000",
    "SMTP_PORT": "25",
    "SMTP_FROM": "intake@localhost",
    "SMTP_STARTTLS": "false",
}
# Settings that are off until set.
OPTIONAL = ("METRICS_TOKEN", "ALERT_EMAIL", "SMTP_HOST", "SMTP_USER", "SMTP_PASSWORD")

ENVIRONMENTS = ("production", "development", "test")


def _integer(name, raw, minimum=1):
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        least = "greater than 0" if minimum == 1 else f"{minimum} or more"
        raise ConfigError(f"{name} must be {least}, got {value}")
    return value


def _boolean(name, raw):
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _choice(name, raw, choices):
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def sqlalchemy_url(database_url):
    """SQLAlchemy wants the driver named: postgresql://… becomes postgresql+psycopg://…"""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix):]
    if database_url.startswith("postgresql+psycopg://"):
        return database_url
    raise ConfigError(f"DATABASE_URL must be a postgresql:// URL, got {database_url!r}")


def load_config(environ=os.environ):
    """Build the Flask config from `environ`; raises ConfigError with a clear message."""
    raw = {name: environ.get(name, default) for name, default in DEFAULTS.items()}
    env = _choice("INTAKE_ENV", raw["INTAKE_ENV"], ENVIRONMENTS)
    secret_key = environ.get("SECRET_KEY")
    if not secret_key:
        if env == "production":
            raise ConfigError("SECRET_KEY is not set. Set it to a long random string "
                              "(e.g. python3 -c 'import secrets; print(secrets.token_hex(32))').")
        secret_key = secrets.token_hex(32)
    max_upload_mb = _integer("MAX_UPLOAD_MB", raw["MAX_UPLOAD_MB"])
    return {
        "INTAKE_ENV": env,
        "SECRET_KEY": secret_key,
        "DATABASE_URL": raw["DATABASE_URL"],
        "SQLALCHEMY_DATABASE_URI": sqlalchemy_url(raw["DATABASE_URL"]),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": raw["REDIS_URL"],
        "MAX_UPLOAD_MB": max_upload_mb,
        "MAX_CONTENT_LENGTH": max_upload_mb * 1024 * 1024,
        "INGEST_CHUNK_ROWS": _integer("INGEST_CHUNK_ROWS", raw["INGEST_CHUNK_ROWS"]),
        "INGEST_RETRIES": _integer("INGEST_RETRIES", raw["INGEST_RETRIES"]),
        "OWN_PARTITION_MIN_BYTES": _integer("OWN_PARTITION_MIN_BYTES", raw["OWN_PARTITION_MIN_BYTES"]),
        "OWN_PARTITIONS_KEPT": _integer("OWN_PARTITIONS_KEPT", raw["OWN_PARTITIONS_KEPT"], minimum=0),
        "REAPER_SECONDS": _integer("REAPER_SECONDS", raw["REAPER_SECONDS"]),
        "BUFFER_FLUSH_SECONDS": _integer("BUFFER_FLUSH_SECONDS", raw["BUFFER_FLUSH_SECONDS"]),
        "BUFFER_FLUSH_ROWS": _integer("BUFFER_FLUSH_ROWS", raw["BUFFER_FLUSH_ROWS"]),
        "RAW_RETENTION_DAYS": _integer("RAW_RETENTION_DAYS", raw["RAW_RETENTION_DAYS"]),
        # 0: uploads are never archived.
        "ARCHIVE_AFTER_DAYS": _integer("ARCHIVE_AFTER_DAYS", raw["ARCHIVE_AFTER_DAYS"] or "0", minimum=0),
        "ARCHIVE_DIR": raw["ARCHIVE_DIR"] or DEFAULTS["ARCHIVE_DIR"],
        "PUBLIC_URL": raw["PUBLIC_URL"].rstrip("/"),
        "SMTP_PORT": _integer("SMTP_PORT", raw["SMTP_PORT"]),
        "SMTP_FROM": raw["SMTP_FROM"],
        "SMTP_STARTTLS": _boolean("SMTP_STARTTLS", raw["SMTP_STARTTLS"]),
        **{name: environ.get(name) or None for name in OPTIONAL},
        "LOG_FORMAT": _choice("LOG_FORMAT", raw["LOG_FORMAT"], ("text", "json")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SOCK_SERVER_OPTIONS": {"ping_interval": 25},
    }
