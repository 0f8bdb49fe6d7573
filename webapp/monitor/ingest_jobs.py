"""Ingest jobs are named after their upload (`ingest-<upload id>`); this is the way back."""
import re

from webapp.extensions import db
from webapp.models import Upload
from webapp.uploads.reopen import reopen

INGEST_JOB_ID = re.compile(r"ingest-(\d+)")


def upload_id_of(job_id):
    """The upload an ingest job works on; None for any other job."""
    match = INGEST_JOB_ID.fullmatch(job_id or "")
    return int(match.group(1)) if match else None


def reopen_upload_of(job_id):
    """Before a failed ingest job runs again: its upload goes back to queued,
    or the job would find it failed and stop at once."""
    upload_id = upload_id_of(job_id)
    upload = db.session.get(Upload, upload_id) if upload_id else None
    if upload is not None:
        reopen(upload)
