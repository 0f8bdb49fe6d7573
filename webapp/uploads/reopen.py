"""Putting a failed or cancelled upload back in the queue's hands. The retry
button and the requeue of a failed ingest job both go through here, so the
upload's status says the same as the job queue."""
from webapp.events import publish_change
from webapp.extensions import db
from webapp.models import UploadStatus


def reopen(upload):
    """Mark the upload queued again (committed) so its next ingest job resumes it
    from its checkpoint; False when it was not failed or cancelled."""
    if not upload.can_retry:
        return False
    upload.status = UploadStatus.QUEUED
    upload.cancel_requested = False
    upload.failure_reason = None
    upload.finished_at = None
    db.session.commit()
    publish_change(upload.id, upload.status)
    return True
