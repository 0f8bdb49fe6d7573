"""Operator login: every page but the login page and the health check needs it."""
from webapp.auth.views import blueprint

__all__ = ["blueprint"]
