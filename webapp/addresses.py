"""Pages answer at addresses without a trailing slash (/uploads). The slashed
form, which older links and bookmarks use, is redirected there with a 308,
which makes a browser repeat a POST as a POST."""
from urllib.parse import urlencode

from flask import redirect, request, url_for


def redirect_slashed_prefix(blueprint, endpoint):
    """Send the blueprint's prefix with a trailing slash to its view `endpoint`, query string kept."""
    def to_unslashed():
        query = urlencode(list(request.args.items(multi=True)))
        return redirect(url_for(f".{endpoint}") + (f"?{query}" if query else ""), code=308)

    blueprint.add_url_rule("/", f"{endpoint}_slashed", to_unslashed, methods=["GET", "POST"])
