"""Jobs the tests enqueue by name on a real worker."""
from webapp.extensions import db
from webapp.models import Operator


def count_operators():
    """Needs the Flask app context: the database session is bound to it."""
    return db.session.scalar(db.select(db.func.count(Operator.id)))
