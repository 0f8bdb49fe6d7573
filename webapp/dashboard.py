"""The home page: what is happening now and where to go next."""
from flask import Blueprint, render_template

from webapp.extensions import db
from webapp.models import Record, Upload

blueprint = Blueprint("dashboard", __name__)


@blueprint.route("/")
def index():
    upload_count = db.session.scalar(db.select(db.func.count(Upload.id)))
    record_count = db.session.scalar(db.select(db.func.count(Record.id)))
    return render_template("dashboard.html", upload_count=upload_count, record_count=record_count)
