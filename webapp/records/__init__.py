"""Records: browse, search, edit, delete and export the stored records."""
from webapp.records.views import blueprint

__all__ = ["blueprint"]
