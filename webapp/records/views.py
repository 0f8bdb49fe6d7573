from dataclasses import replace
from datetime import datetime, timezone

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from psycopg.errors import UniqueViolation
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from webapp.auth.views import safe_next
from webapp.extensions import db
from webapp.models import Operator, Record, RecordEmail, Upload
from webapp.records.export import csv_chunks
from webapp.records.forms import RecordForm
from webapp.records.listing import count_records, list_records
from webapp.records.query import MAX_ID, PAGE_SIZES, BadQuery, loading_records, parse_query
from webapp.validation import email_problem, normalize_email

blueprint = Blueprint("records", __name__, url_prefix="/records")

EMAIL_INDEX = "record_emails_pkey"
MAX_BULK_DELETE = 1000


def list_query():
    try:
        query = parse_query(request.args)
    except BadQuery as error:
        abort(400, str(error))
    upload = db.session.get(Upload, query.upload) if query.upload else None
    return replace(query, records=loading_records(upload)) if upload and upload.loading_alone else query


def wants_fragment():
    """htmx asks for the rows only, except when restoring a page it has no copy of."""
    return request.headers.get("HX-Request") == "true" and "HX-History-Restore-Request" not in request.headers


@blueprint.get("")
def index():
    query = list_query()
    page, count = list_records(db.session, query)
    template = "records/_results.html" if wants_fragment() else "records/index.html"
    response = Response(render_template(template, query=query, page=page, count=count, page_sizes=PAGE_SIZES))
    response.vary.add("HX-Request")
    return response


@blueprint.get("/count")
def exact_count():
    """The exact number of matching records (up to a limit), which the list loads after its rows."""
    count = count_records(db.session, list_query())
    return render_template("records/_count.html", count=count, refine=False)


@blueprint.get("/export.csv")
def export():
    query = list_query()
    bom = request.args.get("bom", "0")
    if bom not in ("0", "1"):
        abort(400, "bom must be 0 or 1.")
    filename = f"records-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.csv"
    return Response(csv_chunks(db.engine, query, bom=bom == "1"), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def get_record(record_id):
    if record_id > MAX_ID:  # beyond a bigint: no such record, and no database error either
        abort(404)
    return db.session.get(Record, record_id) or abort(404)


def record_holding(email, other_than=None):
    """The record whose normalized email is `email`'s, other than record `other_than`."""
    statement = (select(Record).join(RecordEmail, (RecordEmail.record_id == Record.id)
                                     & (RecordEmail.segment == Record.segment))
                 .where(RecordEmail.email_norm == normalize_email(email)))
    if other_than is not None:
        statement = statement.where(Record.id != other_than)
    return db.session.scalar(statement)


@blueprint.get("/check-email")
def check_email():
    """The message under the email field, asked for as the operator types."""
    email = request.args.get("email", "")
    record_id = request.args.get("record_id", type=int)
    if record_id is not None and not 0 < record_id <= MAX_ID:
        abort(400, "record_id is not a record number.")
    problem = email_problem(email) if email.strip() else None
    holder = None if problem or not email.strip() else record_holding(email, other_than=record_id)
    return render_template("records/_email_check.html", problem=problem, holder=holder)


@blueprint.get("/<int:record_id>")
def show(record_id):
    record = get_record(record_id)
    upload = db.session.get(Upload, record.upload_id) if record.upload_id else None
    updated_by = db.session.get(Operator, record.updated_by) if record.updated_by else None
    return render_template("records/show.html", record=record, upload=upload, updated_by=updated_by)


def is_email_taken(error):
    return isinstance(error.orig, UniqueViolation) and error.orig.diag.constraint_name == EMAIL_INDEX


def save(record, form):
    """Store the form on `record`; False when another record holds the email.

    The unique index decides, not a look-up before writing: two operators may
    save the same email at the same moment.
    """
    form.fill(record)
    record.updated_at = func.now()
    record.updated_by = current_user.id
    db.session.add(record)
    try:
        db.session.commit()
    except IntegrityError as error:
        db.session.rollback()
        if not is_email_taken(error):
            raise
        return False
    return True


def render_form(form, record, status=200):
    holder = None
    if status == 409:
        holder = record_holding(form.email.data, other_than=record.id if record else None)
    problem = "This email was just taken by another record." if status == 409 and not holder else None
    return render_template("records/form.html", form=form, record=record, holder=holder,
                           problem=problem), status


def save_and_show(record, form):
    if not form.validate_on_submit():
        return render_form(form, record if record.id else None, 400 if form.is_submitted() else 200)
    if not save(record, form):
        return render_form(form, record if record.id else None, 409)
    flash(f"Saved {record.email}.", "info")
    return redirect(url_for("records.show", record_id=record.id), code=303)


@blueprint.route("/new", methods=["GET", "POST"])
def new():
    return save_and_show(Record(extra={}), RecordForm())


@blueprint.route("/<int:record_id>/edit", methods=["GET", "POST"])
def edit(record_id):
    record = get_record(record_id)
    return save_and_show(record, RecordForm(obj=record))


@blueprint.get("/<int:record_id>/delete")
def confirm_delete(record_id):
    record = get_record(record_id)
    return render_template("records/confirm_delete.html", records=[record],
                           next=url_for("records.index"))


def selected_ids():
    raw = request.form.getlist("ids")
    if len(raw) > MAX_BULK_DELETE:
        abort(400, f"Delete at most {MAX_BULK_DELETE} records at once.")
    if not all(value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ID for value in raw):
        abort(400, "The selection is not a list of record numbers.")
    return sorted({int(value) for value in raw})


@blueprint.post("/delete")
def delete_selected():
    """Deletes after a confirmation step: the first POST shows what will go."""
    ids = selected_ids()
    next_page = safe_next(request.form.get("next") or url_for("records.index"))
    if not ids:
        flash("Select the records to delete first.", "error")
        return redirect(next_page, code=303)
    if request.form.get("confirmed") != "yes":
        records = db.session.scalars(select(Record).where(Record.id.in_(ids)).order_by(Record.id)).all()
        return render_template("records/confirm_delete.html", records=records, next=next_page)
    deleted = db.session.execute(delete(Record).where(Record.id.in_(ids))).rowcount
    db.session.commit()
    flash(f"Deleted {deleted} record{'' if deleted == 1 else 's'}.", "info")
    return redirect(next_page, code=303)
