"""JSON through orjson for every request body and response of the app.

orjson parses a 1,000-record API batch about four times faster than the
standard library (bench/README.md, "JSON API"), and it refuses what Intake
could not store anyway: lone surrogates and text that is not UTF-8. The output
is what Flask's own provider writes (sorted keys, the same types); datetimes
and dataclasses still go through Flask's conversion, so dates keep Flask's
format.
"""
import orjson
from flask.json.provider import DefaultJSONProvider

OPTIONS = (orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
           | orjson.OPT_PASSTHROUGH_DATACLASS)


class OrjsonProvider(DefaultJSONProvider):
    def _encode(self, obj, indent=False):
        return orjson.dumps(obj, default=self.default, option=OPTIONS | (orjson.OPT_INDENT_2 if indent else 0))

    def dumps(self, obj, **kwargs):
        return self._encode(obj, indent=bool(kwargs.get("indent"))).decode()

    def loads(self, s, **kwargs):
        return orjson.loads(s)

    def response(self, *args, **kwargs):
        obj = self._prepare_response_obj(args, kwargs)
        indent = (self.compact is None and self._app.debug) or self.compact is False
        return self._app.response_class(self._encode(obj, indent) + b"\n", mimetype=self.mimetype)


def register(app):
    app.json = OrjsonProvider(app)
