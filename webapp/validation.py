"""What a valid record is. The CSV job, the record form and the JSON API all
ask this module; no other place decides."""
import re
import unicodedata

FIELDS = ("email", "first_name", "last_name", "phone", "company", "city", "country")
MAX_FIELD_LENGTH = 1000
MAX_EMAIL_LENGTH = 254
MAX_LOCAL_LENGTH = 64

# Local part: the characters RFC 5322 allows unquoted, plus any non-ASCII
# letter (RFC 6531); dots only between characters. Domain: labels of letters
# (any script), digits and inner hyphens; the last label is not all digits.
_LOCAL = r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
EMAIL = re.compile(rf"{_LOCAL}@(?:{_LABEL}\.)+(?!\d+$){_LABEL}")
# RE2 (the regex engine of pyarrow.compute, for the bulk checks of
# jobs/vector_rows.py) has neither Unicode \w nor lookahead, so the rule is
# restated for ASCII and the Latin letters of BULK_LETTERS: for an address of
# those characters only, EMAIL matches exactly when EMAIL_RE2 matches and
# DIGITS_LAST_LABEL_RE2 does not, and the address is its own NFC form. (U+0130
# is left out: it lower-cases to two characters.)
BULK_LETTERS = "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u012f\u0131-\u024f"
_BULK_WORD = "A-Za-z0-9_" + BULK_LETTERS
_LOCAL_RE2 = _LOCAL.replace(r"\w", _BULK_WORD)
_LABEL_RE2 = _LABEL.replace(r"[^\W_]", f"[A-Za-z0-9{BULK_LETTERS}]").replace(r"\w", _BULK_WORD)
EMAIL_RE2 = rf"^{_LOCAL_RE2}@(?:{_LABEL_RE2}\.)+{_LABEL_RE2}$"
DIGITS_LAST_LABEL_RE2 = r"\.[0-9]+$"
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
    if "@" in address and len(address.rsplit("@", 1)[0]) > MAX_LOCAL_LENGTH:
        return f"the part before @ is longer than {MAX_LOCAL_LENGTH} characters"
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
