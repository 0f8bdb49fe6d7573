"""The JSON API: batch ingest with job status, buffered single records."""
from flask import Blueprint, abort, current_app, g, jsonify, request, url_for

from webapp.api import buffer
from webapp.api.auth import authenticate
from webapp.api.batches import store_batch
from webapp.api.shape import ShapeError, ingest_request, records_request
from webapp.extensions import db
from webapp.models import RowError, Upload, UploadStatus
from webapp.queueing import enqueue_ingest
from webapp.rejections import KINDS, ROW_ERROR_KIND
from webapp.request_text import json_body_problem

blueprint = Blueprint("api", __name__, url_prefix="/api")

MAX_BATCH = 1000
MAX_BUFFERED = 100
ERRORS_PAGE = 100
MAX_LINE = 2**62  # row_errors.line is a bigint


@blueprint.before_request
def require_token():
    authenticate()


@blueprint.errorhandler(ShapeError)
def wrong_shape(error):
    return jsonify(error="wrong shape", path=error.path, message=error.message), 422


def json_body():
    if not request.is_json:
        abort(400, "send the body as JSON, with Content-Type: application/json")
    text = request.get_data(cache=False)
    try:
        body = current_app.json.loads(text)
    except ValueError as error:
        abort(400, f"the body is not valid JSON: {error}")
    problem = json_body_problem(text, body)
    if problem:
        abort(400, problem)
    return body


@blueprint.post("/ingest")
def ingest():
    records, on_duplicate, validate_only = ingest_request(json_body(), MAX_BATCH)
    upload_id = store_batch(records, g.caller, on_duplicate, validate_only)
    enqueue_ingest(upload_id, in_process=True)
    return jsonify(job_id=upload_id, status=UploadStatus.QUEUED,
                   status_url=url_for("api.job", job_id=upload_id, _external=True)), 202


def get_job(job_id):
    upload = db.session.get(Upload, job_id)
    if upload is None or upload.source != "api":
        abort(404, f"there is no API job {job_id}")
    return upload


@blueprint.get("/jobs/<id:job_id>")
def job(job_id):
    upload = get_job(job_id)
    return jsonify(
        id=upload.id, status=upload.status, progress=upload.percent,
        counts={"received": upload.expected_lines, "inserted": upload.rows_inserted,
                "updated": upload.rows_updated, "duplicate": upload.duplicates, "invalid": upload.rows_invalid},
        errors_url=url_for("api.job_errors", job_id=upload.id, _external=True),
        created_at=upload.created_at.isoformat(),
        finished_at=upload.finished_at.isoformat() if upload.finished_at else None,
        failure_reason=upload.failure_reason)


def requested_kind():
    """The kind of row error ?kind= asks for; None for every kind."""
    kind = request.args.get("kind")
    if kind is not None and kind not in KINDS:
        abort(400, f"kind must be {' or '.join(KINDS)}, not {kind!r}")
    return kind


@blueprint.get("/jobs/<id:job_id>/errors")
def job_errors(job_id):
    """Row errors by record index (0-based), ERRORS_PAGE at a time; `next` pages on."""
    upload = get_job(job_id)
    kind = requested_kind()
    after = min(request.args.get("after", -1, type=int), MAX_LINE)
    query = (db.select(RowError.line, RowError.column_name, RowError.reason, ROW_ERROR_KIND.label("kind"))
             .where(RowError.upload_id == upload.id, RowError.line > after + 1)
             .order_by(RowError.line).limit(ERRORS_PAGE + 1))
    if kind:
        query = query.where(ROW_ERROR_KIND == kind)
    rows = db.session.execute(query).all()
    errors = [{"index": row.line - 1, "kind": row.kind, "field": row.column_name, "reason": row.reason}
              for row in rows[:ERRORS_PAGE]]
    more = len(rows) > ERRORS_PAGE
    next_url = url_for("api.job_errors", job_id=upload.id, after=errors[-1]["index"], kind=kind, _external=True) \
        if more else None
    return jsonify(errors=errors, next=next_url)


@blueprint.post("/records")
def buffered_records():
    records = records_request(json_body(), MAX_BUFFERED)
    buffer.accept(records, g.caller)
    return jsonify(accepted=len(records)), 202
