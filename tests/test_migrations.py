"""Migrations, not create_all, are the source of truth for the schema."""
import psycopg
import pytest
from flask_migrate import downgrade, upgrade

from webapp import create_app
from webapp.config import sqlalchemy_url

TABLES = {"operators", "uploads", "upload_pieces", "records", "records_shared", "record_emails", "row_errors",
          "api_tokens", "upload_checkpoints"}


@pytest.fixture
def empty_database(migrated):
    postgres, _ = migrated
    admin_url = postgres.url
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS intake_migrations")
        connection.execute("CREATE DATABASE intake_migrations")
    url = admin_url.rsplit("/", 1)[0] + "/intake_migrations"
    yield url
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute("DROP DATABASE intake_migrations WITH (FORCE)")


def tables(url):
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {name for (name,) in rows} - {"alembic_version"}


def test_upgrade_builds_the_schema_and_downgrade_removes_it(empty_database):
    app = create_app({"SQLALCHEMY_DATABASE_URI": sqlalchemy_url(empty_database)})
    with app.app_context():
        upgrade()
        assert tables(empty_database) == TABLES
        downgrade(revision="base")
        assert tables(empty_database) == set()
        upgrade()
        assert tables(empty_database) == TABLES


def test_email_uniqueness_is_enforced_by_the_database(empty_database):
    app = create_app({"SQLALCHEMY_DATABASE_URI": sqlalchemy_url(empty_database)})
    with app.app_context():
        upgrade()
    with psycopg.connect(empty_database) as connection:
        connection.execute("INSERT INTO records (email, email_norm) VALUES ('A@x.org', 'a@x.org')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            connection.execute("INSERT INTO records (email, email_norm) VALUES ('a@X.org', 'a@x.org')")


def test_records_stored_before_partitioning_are_carried_over(empty_database):
    app = create_app({"SQLALCHEMY_DATABASE_URI": sqlalchemy_url(empty_database)})
    with app.app_context():
        upgrade(revision="0004")
    with psycopg.connect(empty_database) as connection:
        connection.execute("INSERT INTO records (email, email_norm, city) "
                           "SELECT 'P' || n || '@x.org', 'p' || n || '@x.org', 'Oslo' FROM generate_series(1, 100) n")
    with app.app_context():
        upgrade()
    with psycopg.connect(empty_database) as connection:
        assert connection.execute("SELECT count(*), max(id) FROM records WHERE segment = 0").fetchone() == (100, 100)
        assert connection.execute("SELECT count(*) FROM record_emails").fetchone()[0] == 100
        new_id = connection.execute("INSERT INTO records (email, email_norm) VALUES ('new@x.org', 'new@x.org') "
                                    "RETURNING id").fetchone()[0]
        assert new_id == 101
        connection.commit()
        with pytest.raises(psycopg.errors.UniqueViolation):
            connection.execute("INSERT INTO records (email, email_norm) VALUES ('p7@X.org', 'p7@x.org')")
    with app.app_context():
        downgrade(revision="0004")
    with psycopg.connect(empty_database) as connection:
        assert connection.execute("SELECT count(*) FROM records").fetchone()[0] == 101
