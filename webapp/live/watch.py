"""What one page shows live, and its fragments rendered from PostgreSQL.

The fragments are the partials the page itself renders, marked for htmx's
out-of-band swap, so a page and its live update never disagree.
"""
from flask import abort, render_template

from webapp.dashboard import dashboard_context
from webapp.extensions import db
from webapp.models import Upload
from webapp.uploads.fragments import upload_fragments


class Watch:
    """One page's view: 'upload' (one upload), 'uploads' (rows of the list) or 'dashboard'."""

    def __init__(self, view, upload_ids):
        self.view = view
        self.upload_ids = upload_ids

    @classmethod
    def from_args(cls, args):
        view = args.get("view")
        if view == "upload":
            return cls(view, {args.get("id", type=int) or abort(400, "id is missing")})
        if view == "uploads":
            ids = args.get("ids", "")
            if not all(part.isdigit() for part in ids.split(",") if part):
                abort(400, "ids must be upload numbers separated by commas")
            return cls(view, {int(part) for part in ids.split(",") if part})
        if view == "dashboard":
            return cls(view, None)
        abort(400, "view must be upload, uploads or dashboard")

    def concerns(self, upload_id):
        return self.upload_ids is None or upload_id in self.upload_ids

    def render(self, upload_ids=None):
        """The fragments for `upload_ids` (all the page shows when None), fresh from PostgreSQL."""
        if self.view == "dashboard":
            return render_template("dashboard/_live.html", oob=True, **dashboard_context())
        wanted = self.upload_ids if upload_ids is None else self.upload_ids & set(upload_ids)
        uploads = db.session.scalars(db.select(Upload).where(Upload.id.in_(wanted))).all()
        if self.view == "upload":
            return "".join(upload_fragments(upload) for upload in uploads)
        return "".join(render_template("uploads/_upload_row.html", upload=upload, oob=True)
                       for upload in uploads)
