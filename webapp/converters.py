"""URL converters: <id:name> matches only numbers a PostgreSQL integer key can
hold, so an out-of-range id is a 404 like any other unknown one."""
from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    def __init__(self, url_map):
        super().__init__(url_map, min=1, max=MAX_ID)


def register(app):
    app.url_map.converters["id"] = IdConverter
