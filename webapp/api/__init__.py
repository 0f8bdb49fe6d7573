"""The JSON API for machines; see /api/docs."""
from webapp.api.openapi import docs_blueprint
from webapp.api.views import blueprint

__all__ = ["blueprint", "docs_blueprint"]
