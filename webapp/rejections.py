"""Why a line was rejected: its reason kind ("invalid email", "too long", …),
and the coarse kind ("invalid" or "duplicate") that the API reports.

row_errors has no column for either: the reason texts are written by
webapp/validation.py (email_problem, value_problem), jobs/rows.py (field counts,
CSV errors, lines too large) and jobs/chunk_writer.py (duplicates), so the kind
is read from the reason. REASON_KIND is the only place that does it; the
coarse kind is derived from it, and the API, the report and the upload page
all select them.
"""
from dataclasses import dataclass

from sqlalchemy import and_, case, or_

from webapp.models import RowError

KINDS = ("invalid", "duplicate")


@dataclass(frozen=True)
class ReasonKind:
    name: str       # as it appears in links: ?kind=invalid_email
    label: str      # as the operator reads it
    coarse: str     # one of KINDS
    condition: object = None  # SQL over RowError; None for the kind of every reason no other kind claims


def _starts(*starts):
    return or_(*(RowError.reason.startswith(start, autoescape=True) for start in starts))


_EMAIL = RowError.column_name == "email"
_WHOLE_LINE = RowError.column_name.is_(None)

# The first kind whose condition holds is the line's kind.
REASON_KINDS = (
    # "duplicate of line 7 in this file", "duplicate of record 7 in this batch". No invalid
    # email's reason starts so: it quotes the address first.
    ReasonKind("duplicate_in_file", "duplicate within the file", "duplicate", and_(_EMAIL, _starts("duplicate of "))),
    # "email is already stored (record #42); kept the stored record"
    ReasonKind("already_stored", "already stored", "duplicate",
               and_(_EMAIL, _starts("email is already stored (record #"))),
    ReasonKind("missing_email", "missing email", "invalid", and_(_EMAIL, RowError.reason == "email is missing")),
    ReasonKind("invalid_email", "invalid email", "invalid",
               and_(_EMAIL, RowError.reason.endswith(" is not a valid email address", autoescape=True))),
    ReasonKind("control_characters", "control characters", "invalid",
               RowError.reason == "contains a control character (such as NUL)"),
    # A value, an email or its part before @; or a whole line too large to parse.
    ReasonKind("too_long", "too long", "invalid",
               or_(_starts("longer than ", "email is longer than ", "the part before @ is longer than "),
                   and_(_WHOLE_LINE, _starts("the line is larger than ")))),
    # "line 7 has 4 fields but the header has 3" (or "record 7" in an API batch)
    ReasonKind("wrong_field_count", "wrong number of fields", "invalid",
               and_(_WHOLE_LINE, RowError.reason.regexp_match(r"^(line|record) \d+ has [\d,]+ fields but the header"))),
    ReasonKind("not_csv", "not valid CSV", "invalid", and_(_WHOLE_LINE, _starts("not valid CSV: "))),
    ReasonKind("other", "other", "invalid"),
)
REASON_KINDS_BY_NAME = {kind.name: kind for kind in REASON_KINDS}

REASON_KIND = case(*((kind.condition, kind.name) for kind in REASON_KINDS if kind.condition is not None),
                   else_=REASON_KINDS[-1].name)

ROW_ERROR_KIND = case(
    (REASON_KIND.in_([kind.name for kind in REASON_KINDS if kind.coarse == "duplicate"]), "duplicate"),
    else_="invalid")
