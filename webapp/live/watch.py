"""What one page shows live, and its fragments rendered from PostgreSQL.

The fragments are the partials the page itself renders, marked for htmx's
out-of-band swap, so a page and its live update never disagree.
"""
from flask import abort, render_template

from webapp.dashboard import dashboard_context
from webapp.extensions import db
from webapp.models import Upload
from webapp.uploads.fragments import upload_fragment_list


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

    @property
    def key(self):
        """Pages with the same key show the same fragments."""
        return self.view, frozenset(self.upload_ids or ())

    def concerns(self, upload_id):
        return self.upload_ids is None or upload_id in self.upload_ids

    def render(self):
        """Every fragment the page shows, fresh from PostgreSQL."""
        return "".join(self.fragments())

    def fragments(self):
        """The same, one swappable element each, so that a socket can leave out those its page shows already."""
        if self.view == "dashboard":
            return (render_template("dashboard/_live.html", oob=True, **dashboard_context()),)
        uploads = db.session.scalars(db.select(Upload).where(Upload.id.in_(self.upload_ids))
                                     .order_by(Upload.id)).all()
        if self.view == "upload":
            return tuple(fragment for upload in uploads for fragment in upload_fragment_list(upload))
        return tuple(render_template("uploads/_upload_row.html", upload=upload, oob=True) for upload in uploads)
