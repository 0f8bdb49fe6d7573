"""Uploading CSV files and following what became of them."""
from webapp.uploads.views import blueprint

__all__ = ["blueprint"]
