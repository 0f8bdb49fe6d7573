"""What a valid record is. The CSV job, the record form and the JSON API all
ask this module; no other place decides."""
import re
import unicodedata

FIELDS = ("email", "first_name", "last_name", "phone", "company", "city", "country")
MAX_FIELD_LENGTH = 1000
MAX_EMAIL_LENGTH = 254

# Local part: the characters RFC 5322 allows unquoted, plus any non-ASCII
# letter (RFC 6531); dots only between characters. Domain: labels of letters
# (any script), digits and inner hyphens; the last label is not all digits.
_LOCAL = r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
EMAIL = re.compile(rf"{_LOCAL}@(?:{_LABEL}\.)+(?!\d+$){_LABEL}")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize_email(email):
    """The form uniqueness is decided on: trimmed, composed (NFC) and lower-cased."""
    return unicodedata.normalize("NFC", email.strip()).lower()


def email_problem(email):
    """Why `email` is not a usable address, or None."""
    address = unicodedata.normalize("NFC", email.strip())
    if not address:
        return "email is missing"
    if len(address) > MAX_EMAIL_LENGTH:
        return f"email is longer than {MAX_EMAIL_LENGTH} characters"
    if "@" in address and len(address.rsplit("@", 1)[0]) > 64:
        return "the part before @ is longer than 64 characters"
    if not EMAIL.fullmatch(address):
        return f"{address!r} is not a valid email address"
    return None


def value_problem(value):
    """Why a field value cannot be stored, or None."""
    if len(value) > MAX_FIELD_LENGTH:
        return f"longer than {MAX_FIELD_LENGTH} characters ({len(value):,})"
    if CONTROL_CHARACTERS.search(value):
        return "contains a control character (such as NUL)"
    return None


def record_problems(values, source_text=None):
    """[(field, reason), …] for a record given as {field: value}; empty when valid.

    Unknown fields are allowed (they are kept as extra columns) and checked
    like any other value. `source_text`, the text the values were cut from
    (a line of a file), lets a short line without control characters skip
    the checks of each value: none of its values can break them.
    """
    problems = []
    if source_text is None or value_problem(source_text):
        problems = [(field, reason) for field, value in values.items() if (reason := value_problem(value or ""))]
    if not any(field == "email" for field, _ in problems):
        reason = email_problem(values.get("email") or "")
        if reason:
            problems.append(("email", reason))
    return problems
