"""The parts of the upload page that live updates replace."""
from flask import render_template

from webapp.extensions import db
from webapp.models import RowError

ERRORS_SHOWN = 20


def first_row_errors(upload):
    return db.session.scalars(db.select(RowError).filter_by(upload_id=upload.id)
                              .order_by(RowError.line, RowError.id).limit(ERRORS_SHOWN)).all()


def upload_fragments(upload):
    """Progress and rejected lines of one upload, for htmx's out-of-band swap."""
    return "".join(upload_fragment_list(upload))


def upload_fragment_list(upload):
    return [render_template("uploads/_progress.html", upload=upload, oob=True),
            render_template("uploads/_row_errors.html", upload=upload, row_errors=first_row_errors(upload),
                            oob=True)]
