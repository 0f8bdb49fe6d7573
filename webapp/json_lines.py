"""What Intake accepts as JSON Lines (.jsonl): one JSON object per line, UTF-8.

Each object's keys are its columns, matched to the fields by the same names as
a CSV header; any other key is an extra column. Values are strings, numbers or
null (empty), as in a record sent to the JSON API. The first object stands for
the header: the form refuses a file whose first object has no email, and an
'update' run overwrites the fields that object names.
"""
import json

from webapp.csv_contract import NotACsvFile, checked_header, split_fields
from webapp.request_text import json_problem


class NotAnObject(ValueError):
    """A line that is not a usable JSON object; `column` names the key at fault, if one is."""

    def __init__(self, reason, column=None):
        super().__init__(reason)
        self.column = column


def json_object(text):
    """The object a line holds; raises NotAnObject."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise NotAnObject(f"not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise NotAnObject(f"not a JSON object but {type_name(document)}")
    return document


def parse_line(text):
    """(fields, extra columns) of one line, as text; raises NotAnObject."""
    document = json_object(text)
    if problem := json_problem(document):
        raise NotAnObject(problem)
    return split_fields(text_values(document))


def text_values(document):
    """{key: text} of an object: numbers become text, null empty (the JSON API's rule for a record)."""
    values = {}
    for name, value in document.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float, type(None))):
            raise NotAnObject(f"must be a string, a number or null, not {type_name(value)}", column=name)
        values[name] = "" if value is None else str(value)
    return values


def type_name(document):
    return {dict: "an object", list: "an array", str: "a string", bool: "true or false",
            type(None): "null"}.get(type(document), "a number")


def first_object_header(text):
    """The Header that the first non-blank line of `text` stands for; raises NotACsvFile."""
    line = next((line for line in text.splitlines() if line.strip()), "")
    try:
        document = json_object(line)
    except NotAnObject as error:
        raise NotACsvFile(f"the first line is {error}") from None
    return checked_header([str(name) for name in document], column="key", where="in the first object")
