"""Archived uploads (cold storage) on the command line:

    flask --app wsgi archive list
    flask --app wsgi archive restore FILE

Restoring checks every file of the archive against its manifest first and
refuses a damaged one. Then, in one transaction, it inserts the upload (under
its old number when that is free), its records (under their old numbers when
free) and its row errors. A record whose email is stored again meanwhile is
not restored, the stored one is kept: the command says how many and which.
The archive files stay where they are.
"""
import gzip
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click
import psycopg
from flask import current_app
from flask.cli import AppGroup
from psycopg import errors, sql
from psycopg.types.json import Json

from webapp.archive import (BLOCK, MANIFEST_SUFFIX, TABLES, ArchiveDamaged, manifest_path, part_path, read_manifest,
                            unquoted)
from webapp.models import Record, RowError, Upload

cli = AppGroup("archive", help="Archived uploads (cold storage): list and restore.")
# How many of the records left out the command names.
NAMED = 20
MODELS = {"records": Record, "row_errors": RowError}


class CannotRestore(Exception):
    """The archive cannot be restored as it is; the message says why and what to do."""


@dataclass
class Restored:
    upload_id: int
    archived_id: int
    finished_at: datetime
    records: int = 0
    row_errors: int = 0
    skipped: int = 0
    skipped_emails: list = field(default_factory=list)   # (email, number of the stored record), the first NAMED


def restore(path):
    """Restore the archive `path` belongs to; returns a Restored. Raises ArchiveDamaged or CannotRestore."""
    path = manifest_path(path)
    manifest = read_manifest(path)
    for part, description in manifest["files"].items():
        unknown = set(description["columns"]) - set(MODELS[part].__table__.columns.keys())
        if unknown:
            raise CannotRestore(f"the archive's {part} have columns this database has not: {sorted(unknown)}")
    with psycopg.connect(current_app.config["DATABASE_URL"]) as connection:   # one transaction
        upload_id, finished_at = _insert_upload(connection, manifest["upload"])
        restored = Restored(upload_id, manifest["upload"]["id"], finished_at)
        records = _staged(connection, path, manifest["files"]["records"], "records")
        restored.skipped_emails = connection.execute(sql.SQL(
            "SELECT archived.email, stored.record_id FROM ({}) AS archived JOIN record_emails AS stored "
            "USING (email_norm) "
            "ORDER BY archived.source_line, archived.id LIMIT {}").format(records, sql.Literal(NAMED))).fetchall()
        restored.records = _insert_rows(connection, "records", records, manifest, upload_id)
        # What was not inserted is what _insert_rows leaves out: the records whose email is stored.
        restored.skipped = manifest["files"]["records"]["rows"] - restored.records
        row_errors = _staged(connection, path, manifest["files"]["row_errors"], "row_errors")
        restored.row_errors = _insert_rows(connection, "row_errors", row_errors, manifest, upload_id)
        for table in ("uploads", "records", "row_errors"):
            _sequence_past_largest_id(connection, table)
    return restored


def _insert_upload(connection, upload):
    """Inserts the archived upload row; returns its number (the old one when that is free) and finished_at."""
    upload = dict(upload)
    same = connection.execute("SELECT filename = %s AND created_at = %s::timestamptz FROM uploads WHERE id = %s",
                              (upload["filename"], upload["created_at"], upload["id"])).fetchone()
    if same and same[0]:
        raise CannotRestore(f"upload {upload['id']} ({upload['filename']}) is in the database already: "
                            "it was restored before")
    if same:
        del upload["id"]   # another upload has its number now: it gets a new one
    if upload["operator_id"] is not None and not connection.execute(
            "SELECT 1 FROM operators WHERE id = %s", (upload["operator_id"],)).fetchone():
        upload["operator_id"] = None   # the operator was removed, as their uploads' are then
    columns = [name for name in upload if name in Upload.__table__.columns]
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    return connection.execute(sql.SQL(
        "INSERT INTO uploads ({0}) SELECT {0} FROM json_populate_record(NULL::uploads, %s) RETURNING id, finished_at"
    ).format(names), (Json(upload),)).fetchone()


def _staged(connection, path, description, part):
    """Copies the archive file into a temporary table; returns a query of its rows as they were stored."""
    table, columns = TABLES[part][0], description["columns"]
    staging = sql.Identifier(f"archived_{table}")
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    connection.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
        staging, names, sql.Identifier(table)))
    with connection.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, HEADER)").format(
            staging, names)) as copy, gzip.open(part_path(path, description), "rb") as packed:
        while block := packed.read(BLOCK):
            copy.write(block)
    return sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(unquoted(name) if name in description["quoted"] else sql.Identifier(name)
                           for name in columns), staging)


def _insert_rows(connection, part, staged, manifest, upload_id):
    """The archived rows of `part` (records or row_errors) under their old numbers when those are free,
    except the records whose email is stored meanwhile."""
    table, columns = TABLES[part][0], manifest["files"][part]["columns"]
    values = {name: sql.SQL("archived.{}").format(sql.Identifier(name)) for name in columns}
    values["upload_id"] = sql.Literal(upload_id)
    values["id"] = sql.SQL("CASE WHEN EXISTS (SELECT 1 FROM {0} WHERE {0}.id = archived.id) "
                           "THEN nextval(pg_get_serial_sequence({1}, 'id')) ELSE archived.id END").format(
        sql.Identifier(table), sql.Literal(table))
    condition = sql.SQL("true")
    if part == "records":
        values["updated_by"] = sql.SQL("(SELECT operators.id FROM operators "
                                       "WHERE operators.id = archived.updated_by)")
        condition = sql.SQL("NOT EXISTS (SELECT 1 FROM record_emails AS stored "
                            "WHERE stored.email_norm = archived.email_norm)")
        if "segment" in values:  # the upload's own partition may be gone: restored rows are shared ones
            values["segment"] = sql.Literal(0)
    return connection.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM ({}) AS archived WHERE {}").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(values[name] for name in columns), staged, condition)).rowcount


def _sequence_past_largest_id(connection, table):
    """New rows must not take a number restored here (the sequence is ahead already unless the
    database was rebuilt since the upload was archived)."""
    connection.execute(sql.SQL(
        "SELECT setval(pg_get_serial_sequence({0}, 'id'), "
        "greatest(max(id), nextval(pg_get_serial_sequence({0}, 'id')))) FROM {1}").format(
        sql.Literal(table), sql.Identifier(table)))


@cli.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def restore_command(file):
    """Bring back the archived upload FILE (its .manifest.json, or one of its .csv.gz files)."""
    try:
        restored = restore(file)
    except (ArchiveDamaged, CannotRestore) as error:
        raise click.ClickException(f"{error}. Nothing was restored.") from None
    except errors.UniqueViolation:
        raise click.ClickException("A record of the archive was stored by someone else while restoring. "
                                   "Nothing was restored; run the command again.") from None
    number = f"upload {restored.upload_id}"
    if restored.upload_id != restored.archived_id:
        number += f" (archived as upload {restored.archived_id}, a number another upload has now)"
    click.echo(f"Restored {number}: {restored.records} records, {restored.row_errors} row errors.")
    if restored.skipped:
        click.echo(f"{restored.skipped} archived records were left out because their email is stored now; "
                   "the stored records are kept and the archive still holds the old ones:")
        for email, record_id in restored.skipped_emails:
            click.echo(f"  {email}\t(stored as record #{record_id})")
        if restored.skipped > len(restored.skipped_emails):
            click.echo(f"  … and {restored.skipped - len(restored.skipped_emails)} more")
    click.echo(f"The archive files are kept in {manifest_path(file).parent}.")
    days = current_app.config["ARCHIVE_AFTER_DAYS"]
    if days and restored.finished_at < datetime.now(timezone.utc) - timedelta(days=days):
        click.echo(f"Note: it finished more than ARCHIVE_AFTER_DAYS={days} days ago, so the next archive run "
                   "archives it again; raise ARCHIVE_AFTER_DAYS (or set it to 0) to keep it.")


@cli.command("list")
def list_command():
    """List the archives in ARCHIVE_DIR, oldest upload first (without checking them)."""
    directory = Path(current_app.config["ARCHIVE_DIR"])
    manifests = sorted(directory.glob("*" + MANIFEST_SUFFIX)) if directory.is_dir() else []
    rows = []
    for path in manifests:
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            upload, files = manifest["upload"], manifest["files"]
            rows.append((upload["id"], f"{upload['id']}\t{upload['filename']}\t{upload['status']}\t"
                         f"{files['records']['rows']} records\t{files['row_errors']['rows']} row errors\t"
                         f"archived {manifest['archived_at']}\t{path.name}"))
        except (OSError, ValueError, KeyError, TypeError) as error:
            rows.append((0, f"?\t{path.name} cannot be read: {error}"))
    for _, line in sorted(rows, key=lambda row: row[0]):
        click.echo(line)
    if not rows:
        click.echo(f"No archives in {directory}.")
