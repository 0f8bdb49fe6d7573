"""The parts of the upload page that live updates replace."""
from flask import render_template

from webapp.extensions import db
from webapp.models import RowError
from webapp.rejections import ROW_ERROR_KIND

ERRORS_SHOWN = 20


def row_errors_query(upload):
    """The upload's row errors with their kind, in line order."""
    return (db.select(RowError.line, RowError.column_name, RowError.reason, RowError.raw_line,
                      ROW_ERROR_KIND.label("kind"))
            .where(RowError.upload_id == upload.id).order_by(RowError.line, RowError.id))


def first_row_errors(upload):
    return db.session.execute(row_errors_query(upload).limit(ERRORS_SHOWN)).all()


def upload_fragments(upload):
    """Progress and rejected lines of one upload, for htmx's out-of-band swap."""
    return "".join(upload_fragment_list(upload))


def upload_fragment_list(upload):
    return [render_template("uploads/_progress.html", upload=upload, oob=True),
            render_template("uploads/_row_errors.html", upload=upload, row_errors=first_row_errors(upload),
                            oob=True)]
