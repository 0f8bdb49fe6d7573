"""The top navigation: an area shows up once its blueprint is registered."""
from flask import current_app

AREAS = [
    ("dashboard.index", "Dashboard"),
    ("uploads.index", "Uploads"),
    ("records.index", "Records"),
    ("monitor.workers", "Workers"),
    ("tokens.index", "API tokens"),
]


def nav_links():
    return [(endpoint, label) for endpoint, label in AREAS if endpoint in current_app.view_functions]


def area_enabled(endpoint):
    return endpoint in current_app.view_functions


def register(app):
    app.context_processor(lambda: {"nav_links": nav_links, "area_enabled": area_enabled})
