"""Text no request may carry, refused with a 400 before any view sees it.

PostgreSQL text cannot hold NUL, a lone surrogate cannot be encoded as UTF-8,
and no value Intake takes comes anywhere near MAX_TEXT_LENGTH; each would
otherwise fail deep inside a query as a 500. Query parameters, form fields and
file names are checked for every request; the API checks its JSON bodies with
json_body_problem.
"""
import re
from collections import deque

from flask import abort, request

# Well above the longest field a record keeps (validation.MAX_FIELD_LENGTH), so
# the forms still explain that limit themselves, and below the 4,300 digits
# Python's int() accepts.
MAX_TEXT_LENGTH = 4000
LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
LONG_STRING = re.compile(rb'"[^"]{%d}' % (MAX_TEXT_LENGTH + 1))


def text_problem(text):
    """Why `text` cannot be taken from a request, or None."""
    if len(text) > MAX_TEXT_LENGTH:
        return f"is longer than {MAX_TEXT_LENGTH:,} characters"
    if "\x00" in text:
        return "contains a NUL character"
    if LONE_SURROGATE.search(text):
        return "contains a lone surrogate, which is not valid Unicode"
    return None


def named_problem(what, pairs):
    """The first problem in (name, text) pairs, as a sentence naming the `what` that carried it."""
    for name, text in pairs:
        if problem := text_problem(name):
            return f"The name of a {what} {problem}."
        if problem := text_problem(text):
            return f"The {what} '{name}' {problem}."
    return None


def file_name_problem(files):
    for name, file in files.items(multi=True):
        if problem := text_problem(file.filename or ""):
            return f"The name of the file sent as '{name}' {problem}."
    return None


def json_problem(document):
    """The first problem in the strings of a decoded JSON document, named by its JSON path.

    Walked without recursion: the document may nest as deep as the decoder allows.
    """
    pending = deque([("$", document)])
    while pending:
        path, value = pending.popleft()
        if isinstance(value, str) and (problem := text_problem(value)):
            return f"{path} {problem}."
        if isinstance(value, dict):
            for name, item in value.items():
                if problem := text_problem(name):
                    return f"A field name in {path} {problem}."
                pending.append((f"{path}.{name}", item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    return None


def may_carry_unusable_text(body):
    """False when no string of this UTF-8 JSON text can hold NUL or be longer than MAX_TEXT_LENGTH.

    JSON writes NUL only as the escape \\u0000, every string opens with a quote,
    and no string has more characters than bytes up to its closing quote.
    Escaped quotes are blanked so that they do not cut a string short (blanking
    can only make the answer more cautious). Lone surrogates are left to the
    parser, which refuses them (webapp/json_provider.py).
    """
    if b"\\u0000" in body:
        return True
    if b'\\"' in body:
        body = body.replace(b'\\"', b"..")
    return LONG_STRING.search(body) is not None


def json_body_problem(body, document):
    """json_problem of the `document` decoded from `body`, walked only when its text leaves doubt:
    a batch of 1,000 records has some 15,000 strings, and walking them cost more than parsing."""
    return json_problem(document) if may_carry_unusable_text(body) else None


def refuse_unusable_text():
    problem = named_problem("query parameter", request.args.items(multi=True))
    if not request.is_json:  # a JSON body is the API's to check, with json_body_problem
        problem = (problem or named_problem("form field", request.form.items(multi=True))
                   or file_name_problem(request.files))
    if problem:
        abort(400, problem)


def register(app):
    app.before_request(refuse_unusable_text)
