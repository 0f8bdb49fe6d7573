"""Jobs the tests enqueue by name on a real worker."""
from jobs.ingest import ingest_upload
from webapp.extensions import db
from webapp.models import Operator
from webapp.queueing import redis_connection


def count_operators():
    """Needs the Flask app context: the database session is bound to it."""
    return db.session.scalar(db.select(db.func.count(Operator.id)))


def fail(message):
    """A job that always fails, as a broken job would."""
    raise RuntimeError(message)


BROKEN = "tests:ingest-broken"


def ingest_unless_broken(upload_id):
    """The real ingest job, except that it fails while the BROKEN key is set in Redis."""
    if redis_connection().exists(BROKEN):
        raise RuntimeError("the database went away")
    return ingest_upload(upload_id)
