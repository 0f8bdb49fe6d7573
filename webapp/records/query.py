"""Which records a list request asks for: search, filters, sort and a keyset
page, read from the query string and turned into SQL (listing.py runs it).

The same query drives the list page and the CSV export, so the export is
exactly the view the operator is looking at.
"""
import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import BigInteger, Column, MetaData, Table, func, literal, literal_column, or_, select, tuple_
from sqlalchemy.orm import aliased

from webapp.models import Record, Upload

PAGE_SIZES = (25, 50, 100, 200)
MAX_TEXT_ARGUMENT = 200
MAX_ID = 2**63 - 1         # records.id is a bigint
MAX_UPLOAD_ID = 2**31 - 1  # uploads.id is an integer

# The sort keys are written exactly as the indexes of migration 0002, so that
# PostgreSQL walks an index instead of sorting. Text sorts ignore case, in
# byte order ("C"), so the same index answers prefix searches (LIKE 'abc%')
# whatever the database's collation; NULL sorts as '' (or 0); ties are broken
# by id. Constants are inlined, never bound: with a bound '' the expression
# would not be the index's in a prepared statement.
EMPTY = literal_column("''")
SPACE = literal_column("' '")
NO_UPLOAD = literal_column("0")


def text_key(text):
    return func.lower(text).collate("C")


def full_name(records):
    """The first name sorts and is searched together with the last name: "ann smi" finds Ann Smith."""
    return func.coalesce(records.first_name, EMPTY).concat(SPACE).concat(func.coalesce(records.last_name, EMPTY))


@dataclass(frozen=True)
class SortColumn:
    key: Callable      # the sort expression over `records`: the table, or the matches collected from it
    cursor_type: type  # what the sort value in a cursor must be: str, int or datetime


SORTS = {
    "email": SortColumn(lambda records: records.email_norm.collate("C"), str),  # lower case, never NULL
    "first_name": SortColumn(lambda records: text_key(full_name(records)), str),
    "last_name": SortColumn(lambda records: text_key(func.coalesce(records.last_name, EMPTY)), str),
    "company": SortColumn(lambda records: text_key(func.coalesce(records.company, EMPTY)), str),
    "city": SortColumn(lambda records: text_key(func.coalesce(records.city, EMPTY)), str),
    "country": SortColumn(lambda records: text_key(func.coalesce(records.country, EMPTY)), str),
    "upload": SortColumn(lambda records: func.coalesce(records.upload_id, NO_UPLOAD), int),
    "created": SortColumn(lambda records: records.created_at, datetime),
}
DIRECTIONS = ("asc", "desc")
SEARCHED = ("email", "first_name", "last_name", "company")


class BadQuery(ValueError):
    """The query string cannot be understood; the message says which part and why."""


@dataclass(frozen=True)
class RecordQuery:
    q: str = ""
    upload: int | None = None
    country: str = ""
    created_from: date | None = None
    created_to: date | None = None
    sort: str = "created"
    direction: str = "desc"
    size: int = 50
    after: tuple | None = None   # (sort value, id) of the last row of the previous page
    before: tuple | None = None  # (sort value, id) of the first row of the page after the wanted one
    records: object = Record     # where to look: records, or an upload's own table while it loads

    @property
    def is_filtered(self):
        return bool(self.q or self.upload or self.country or self.created_from or self.created_to)

    def link_args(self, **changes):
        """Query-string arguments for a link to this list (first page) with `changes`."""
        args = {"q": self.q, "upload": self.upload, "country": self.country,
                "created_from": self.created_from and self.created_from.isoformat(),
                "created_to": self.created_to and self.created_to.isoformat(),
                "sort": self.sort, "dir": self.direction, "size": self.size}
        args.update(changes)
        return {name: value for name, value in args.items() if value not in (None, "")}

    def sort_link_args(self, column):
        """Arguments for a column heading: sort by it, or flip the direction if it is the sort."""
        if column == self.sort:
            direction = "asc" if self.direction == "desc" else "desc"
        else:
            direction = default_direction(column)
        return self.link_args(sort=column, dir=direction)

    def first_page(self):
        return replace(self, after=None, before=None)


def default_direction(sort):
    """Newest first for the creation time, A to Z for everything else."""
    return "desc" if sort == "created" else "asc"


# Reading the query string

def parse_query(args):
    """A RecordQuery from request arguments; raises BadQuery for anything it cannot use."""
    sort = args.get("sort") or "created"
    if sort not in SORTS:
        raise BadQuery(f"Records cannot be sorted by {sort!r}. Choose one of: {', '.join(SORTS)}.")
    direction = args.get("dir") or default_direction(sort)
    if direction not in DIRECTIONS:
        raise BadQuery("The sort direction must be asc or desc.")
    if args.get("after") and args.get("before"):
        raise BadQuery("A page link cannot go both forward and back.")
    cursor_type = SORTS[sort].cursor_type
    return RecordQuery(
        q=_text(args, "q"),
        upload=_upload_id(args),
        country=_text(args, "country"),
        created_from=_date(args, "created_from"),
        created_to=_date(args, "created_to"),
        sort=sort,
        direction=direction,
        size=_page_size(args),
        after=_cursor(args, "after", cursor_type),
        before=_cursor(args, "before", cursor_type),
    )


def _text(args, name):
    value = (args.get(name) or "").strip()
    if len(value) > MAX_TEXT_ARGUMENT:
        raise BadQuery(f"{name} is longer than {MAX_TEXT_ARGUMENT} characters.")
    return value


def _upload_id(args):
    raw = args.get("upload")
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= MAX_UPLOAD_ID:
        raise BadQuery(f"{raw!r} is not an upload number.")
    return int(raw)


def _date(args, name):
    raw = args.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadQuery(f"{raw!r} is not a date (use YYYY-MM-DD).") from None


def _page_size(args):
    raw = args.get("size") or "50"
    if raw not in {str(size) for size in PAGE_SIZES}:
        raise BadQuery(f"The page size must be one of {', '.join(map(str, PAGE_SIZES))}.")
    return int(raw)


# Cursors: opaque tokens holding the sort value and id of a row

def encode_cursor(value, record_id):
    if isinstance(value, datetime):
        value = value.isoformat()
    text = json.dumps([value, record_id], ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(token, cursor_type):
    """(sort value, id) from a token; raises BadQuery when it was not made by encode_cursor."""
    try:
        text = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        value, record_id = json.loads(text)
        if type(record_id) is not int or not 0 < record_id <= MAX_ID:
            raise ValueError("bad id")
        return _cursor_value(value, cursor_type), record_id
    except (ValueError, TypeError, binascii.Error):
        raise BadQuery("This page link is damaged or belongs to another sort order; "
                       "go back to the first page.") from None


def _cursor_value(value, cursor_type):
    if cursor_type is datetime:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("time without zone")
        return moment
    if type(value) is not cursor_type or (cursor_type is int and not 0 <= value <= MAX_ID):
        raise ValueError("wrong type")
    return value


def _cursor(args, name, cursor_type):
    token = args.get(name)
    return decode_cursor(token, cursor_type) if token else None


# Turning the query into SQL

def escape_like(text):
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def prefix_pattern(term):
    return escape_like(term.lower()) + "%"


def search_condition(term, records=Record):
    """The email, full name, last name or company starts with `term`, in any case.
    Each test is a range scan of that column's sort index."""
    return or_(*(SORTS[name].key(records).like(prefix_pattern(term)) for name in SEARCHED))


def email_prefix_condition(term, records=Record):
    return SORTS["email"].key(records).like(prefix_pattern(term))


def loading_records(upload):
    """The records of an upload still loading into its own table, which `records` shows once it is attached."""
    table = Table(upload.own_table, MetaData(), *(Column(column.name, column.type)
                                                  for column in Record.__table__.columns))
    return aliased(Record, table, name="Record", adapt_on_names=True)


def start_of_day(day):
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def conditions(query):
    """The WHERE clauses for the search and filters of `query`."""
    found, records = [], query.records
    if query.q:
        found.append(search_condition(query.q, records))
    if query.upload is not None:
        found.append(records.upload_id == query.upload)
    if query.country:
        # Compared like the sort key, so the country index serves it (and case does not matter).
        found.append(SORTS["country"].key(records) == query.country.lower())
    if query.created_from:
        found.append(records.created_at >= start_of_day(query.created_from))
    if query.created_to:
        found.append(records.created_at < start_of_day(query.created_to + timedelta(days=1)))
    return found


def sort_order(query, backward=False, records=Record):
    """ORDER BY for the list; `backward` reverses it (to fetch the rows before a cursor)."""
    key = SORTS[query.sort].key(records)
    if (query.direction == "desc") != backward:
        return [key.desc(), records.id.desc()]
    return [key.asc(), records.id.asc()]


def keyset_condition(query, backward, records=Record):
    """Rows strictly after the cursor in the order being fetched."""
    cursor = query.before if backward else query.after
    if cursor is None:
        return None
    row_key = tuple_(SORTS[query.sort].key(records), records.id)
    value, record_id = cursor
    value_type = BigInteger if isinstance(value, int) else None  # ints as bigint: no overflow error
    cursor_key = tuple_(literal(value, value_type), literal(record_id, BigInteger))
    return row_key < cursor_key if scan_is_descending(query, backward) else row_key > cursor_key


def scan_is_descending(query, backward=False):
    return (query.direction == "desc") != backward


def page_statement(query, backward=False, collect_first=False, bound=None):
    """One page of rows plus one, to know whether there is more.

    With `collect_first` the matching rows are fetched whole before they are
    sorted (a MATERIALIZED CTE), so that PostgreSQL cannot choose to walk a
    sort index looking for them; each row then also says how many matched.

    With a `bound` (a sort value) only rows up to it in the order being
    fetched are looked at: PostgreSQL then reads just the matches in that
    stretch of the sort index (a BitmapAnd). The rows found are the right
    ones whenever there are more than a page of them (listing.py checks).
    """
    columns = []
    if collect_first:
        matches = select(query.records).where(*conditions(query)).cte("matches").prefix_with("MATERIALIZED")
        records, filters = aliased(Record, matches, name="Record"), []
        columns.append(select(func.count()).select_from(matches).scalar_subquery().label("matches"))
    else:
        records, filters = query.records, conditions(query)
    sort_key = SORTS[query.sort].key(records)
    statement = (select(records, Upload.filename.label("upload_filename"), sort_key.label("sort_key"), *columns)
                 .outerjoin(Upload, records.upload_id == Upload.id)
                 .where(*filters))
    keyset = keyset_condition(query, backward, records)
    if keyset is not None:
        statement = statement.where(keyset)
    if bound is not None:
        statement = statement.where(sort_key >= bound if scan_is_descending(query, backward) else sort_key <= bound)
    return statement.order_by(*sort_order(query, backward, records)).limit(query.size + 1)
