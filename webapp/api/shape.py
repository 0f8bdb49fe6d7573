"""Checks the shape of API request bodies; a problem names its JSON path."""
from werkzeug.exceptions import RequestEntityTooLarge

ON_DUPLICATE = ("skip", "update", "reject")
VALUE_TYPES = (str, int, float, type(None))


class ShapeError(ValueError):
    def __init__(self, path, message):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _record(record, path):
    """A record as {name: text}; numbers become text, null becomes empty."""
    if not isinstance(record, dict):
        raise ShapeError(path, "must be an object of field names and values")
    if all(type(value) is str for value in record.values()):
        return record  # already text; JSON object keys always are
    values = {}
    for name, value in record.items():
        if isinstance(value, bool) or not isinstance(value, VALUE_TYPES):
            raise ShapeError(f"{path}.{name}", "must be a string, a number or null")
        values[str(name)] = "" if value is None else str(value)
    return values


def _records(body, limit):
    records = body.get("records")
    if not isinstance(records, list) or not records:
        raise ShapeError("$.records", "must be a non-empty array of records")
    if len(records) > limit:
        raise RequestEntityTooLarge(f"at most {limit:,} records per request, got {len(records):,}")
    return [_record(record, f"$.records[{index}]") for index, record in enumerate(records)]


def _object(body):
    if not isinstance(body, dict):
        raise ShapeError("$", "must be a JSON object")
    return body


def ingest_request(body, limit):
    """(records, on_duplicate, validate_only) of POST /api/ingest."""
    body = _object(body)
    unknown = set(body) - {"records", "on_duplicate", "validate_only"}
    if unknown:
        raise ShapeError(f"$.{sorted(unknown)[0]}", "is not a known field")
    on_duplicate = body.get("on_duplicate", "skip")
    if on_duplicate not in ON_DUPLICATE:
        raise ShapeError("$.on_duplicate", f"must be one of {', '.join(ON_DUPLICATE)}")
    validate_only = body.get("validate_only", False)
    if not isinstance(validate_only, bool):
        raise ShapeError("$.validate_only", "must be true or false")
    return _records(body, limit), on_duplicate, validate_only


def records_request(body, limit):
    """The records of POST /api/records: one record, or {"records": [...]}."""
    body = _object(body)
    if "records" in body:
        return _records(body, limit)
    return [_record(body, "$")]
