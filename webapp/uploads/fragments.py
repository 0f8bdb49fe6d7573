"""The parts of the upload page that live updates replace."""
from flask import render_template

from webapp.uploads.rejected import reason_summary
from webapp.uploads.throughput import throughput_chart


def upload_fragments(upload):
    """Progress, throughput and the reasons lines were rejected for, for htmx's out-of-band swap."""
    return "".join(upload_fragment_list(upload))


def upload_fragment_list(upload):
    return [render_template("uploads/_progress.html", upload=upload, oob=True),
            render_template("uploads/_throughput.html", upload=upload, chart=throughput_chart(upload), oob=True),
            render_template("uploads/_reasons.html", upload=upload, summary=reason_summary(upload), oob=True)]
