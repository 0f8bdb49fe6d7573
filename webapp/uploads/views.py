import csv
import io

from flask import (Blueprint, Response, abort, flash, make_response, redirect, render_template, request,
                   stream_with_context, url_for)
from flask_login import current_user
from redis.exceptions import RedisError

from webapp.addresses import redirect_slashed_prefix
from webapp.events import publish_change
from webapp.extensions import db
from webapp.models import Upload, UploadStatus, utcnow
from webapp.queueing import enqueue_ingest
from webapp.records.query import BadQuery
from webapp.records.views import wants_fragment
from webapp.spreadsheet import safe_cell
from webapp.uploads.forms import UploadForm
from webapp.uploads.fragments import upload_fragments
from webapp.uploads.rejected import parse_filter, reason_summary, rejected_lines_query, rejected_page
from webapp.uploads.reopen import reopen
from webapp.uploads.storage import FileRefused, store_upload
from webapp.uploads.throughput import throughput_chart

blueprint = Blueprint("uploads", __name__, url_prefix="/uploads")
redirect_slashed_prefix(blueprint, "index")

PAGE_SIZE = 50


@blueprint.get("")
def index():
    status = request.args.get("status")
    if status and status not in UploadStatus.ACTIVE + UploadStatus.FINISHED:
        abort(400, f"Unknown status {status!r}.")
    query = db.select(Upload).order_by(Upload.id.desc()).limit(PAGE_SIZE + 1)
    if status:
        query = query.filter_by(status=status)
    before = request.args.get("before", type=int)
    if before:
        query = query.where(Upload.id < before)
    uploads = db.session.scalars(query).all()
    next_before = uploads[PAGE_SIZE - 1].id if len(uploads) > PAGE_SIZE else None
    return render_template("uploads/index.html", uploads=uploads[:PAGE_SIZE], status=status,
                           next_before=next_before)


@blueprint.route("/new", methods=["GET", "POST"])
def new():
    form = UploadForm()
    if not form.validate_on_submit():
        return render_template("uploads/new.html", form=form)
    files = form.chosen_files()
    if not files:
        form.files.errors.append("Choose at least one CSV file.")
        return render_template("uploads/new.html", form=form), 400
    uploads, refused = [], []
    for file in files:
        try:
            uploads.append(store_upload(file, current_user.id, form.on_duplicate.data, form.validate_only.data))
        except FileRefused as error:
            db.session.rollback()
            refused.append(f"{file.filename}: {error}")
    queue_uploads(uploads)
    if refused:
        form.files.errors.extend(refused)
        return render_template("uploads/new.html", form=form), 400
    if len(uploads) == 1:
        return redirect(url_for("uploads.show", upload_id=uploads[0].id), code=303)
    flash(f"Received {len(uploads)} files; each one's status below follows its job.", "info")
    return redirect(url_for("uploads.index"), code=303)


def queue_uploads(uploads):
    """Enqueue each upload's job. Whether it is queued is for the upload's status to say, which
    live updates keep true; a notice saying so would still say it after the job is done."""
    for upload in uploads:
        try:
            enqueue_ingest(upload.id)
        except RedisError:
            flash(f"{upload.filename} is stored but the job queue is unreachable; "
                  "it will start as soon as the queue is back.", "error")


def get_upload(upload_id):
    return db.session.get(Upload, upload_id) or abort(404)


def rejected_filter():
    try:
        return parse_filter(request.args)
    except BadQuery as error:
        abort(400, str(error))


@blueprint.get("/<id:upload_id>")
def show(upload_id):
    """The upload's page; for htmx, only the next rows of its rejected lines."""
    upload = get_upload(upload_id)
    page = rejected_page(upload, rejected_filter())
    if wants_fragment():
        response = make_response(render_template("uploads/_rejected_rows.html", upload=upload, page=page))
    else:
        response = make_response(render_template("uploads/show.html", upload=upload, page=page,
                                                 summary=reason_summary(upload), chart=throughput_chart(upload)))
    response.vary.add("HX-Request")
    return response


@blueprint.post("/<id:upload_id>/cancel")
def cancel(upload_id):
    """A queued upload stops at once; a running one after the chunk it is writing."""
    upload = get_upload(upload_id)
    if upload.can_cancel:
        upload.cancel_requested = True
        if upload.status == UploadStatus.QUEUED:
            upload.status = UploadStatus.CANCELLED
            upload.finished_at = utcnow()
        db.session.commit()
        publish_change(upload.id, upload.status)
    return after_action(upload)


@blueprint.post("/<id:upload_id>/retry")
def retry(upload_id):
    """Queue a failed or cancelled upload again; it resumes from its checkpoint."""
    upload = get_upload(upload_id)
    if reopen(upload):
        queue_uploads([upload])
    return after_action(upload)


def after_action(upload):
    if request.headers.get("HX-Request"):
        return upload_fragments(upload)
    return redirect(url_for("uploads.show", upload_id=upload.id), code=303)


@blueprint.get("/<id:upload_id>/errors.csv")
def errors_csv(upload_id):
    upload = get_upload(upload_id)
    query = rejected_lines_query(upload, rejected_filter()).execution_options(yield_per=2000)

    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["line", "column", "reason", "raw_line", "kind"])
        for row in db.session.execute(query):
            writer.writerow([row.line, *map(safe_cell, (row.column_name, row.reason, row.raw_line)), row.kind])
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    filename = f"upload-{upload.id}-errors.csv"
    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
