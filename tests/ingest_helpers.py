"""Uploading through the real form and waiting for the real worker."""
import io

from tests.conftest import csrf_token, wait_until
from webapp.extensions import db
from webapp.models import Record, RowError, Upload, UploadStatus


def post_files(client, files, on_duplicate="skip", validate_only=False):
    """POST /uploads/new with [(name, bytes), …]; returns the response."""
    data = {"csrf_token": csrf_token(client, "/uploads/new"), "on_duplicate": on_duplicate,
            "files": [(io.BytesIO(content), name) for name, content in files]}
    if validate_only:
        data["validate_only"] = "y"
    return client.post("/uploads/new", data=data, content_type="multipart/form-data")


def emails_csv(prefix, count):
    """A CSV file of an email column only: <prefix>0@example.com, <prefix>1@example.com, …"""
    return b"email\n" + b"".join(b"%s%d@example.com\n" % (prefix.encode(), number) for number in range(count))


def upload_file(client, name, content, **options):
    """Upload one file; returns its upload id."""
    response = post_files(client, [(name, content)], **options)
    assert response.status_code == 303, response.get_data(as_text=True)
    return int(response.location.rsplit("/", 1)[1])


def finished(upload_id, timeout=120):
    """Wait until the upload reaches a final status; returns it, fresh from the database."""
    def final_upload():
        db.session.expire_all()
        upload = db.session.get(Upload, upload_id)
        return upload if upload.status in UploadStatus.FINISHED else None
    return wait_until(final_upload, timeout=timeout, interval=0.1, message=f"upload {upload_id} to finish")


def ingest(client, name, content, **options):
    return finished(upload_file(client, name, content, **options))


def stored_emails():
    return sorted(db.session.scalars(db.select(Record.email)))


def row_errors(upload_id):
    return db.session.execute(db.select(RowError.line, RowError.column_name, RowError.reason)
                              .filter_by(upload_id=upload_id).order_by(RowError.line)).all()
