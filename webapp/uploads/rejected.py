"""An upload's rejected lines as its page reports them: counted by reason kind
and by column, and listed in line order a keyset page at a time, filtered by
kind and column. The CSV download takes the same filter."""
from dataclasses import dataclass

from sqlalchemy import BigInteger, and_, literal, tuple_

from webapp.extensions import db
from webapp.models import RowError
from webapp.records.query import MAX_TEXT_ARGUMENT, BadQuery, decode_cursor, encode_cursor
from webapp.rejections import REASON_KIND, REASON_KINDS, REASON_KINDS_BY_NAME, ROW_ERROR_KIND

PAGE_SIZE = 50


@dataclass(frozen=True)
class RejectedFilter:
    kind: str | None = None     # a ReasonKind's name
    column: str | None = None   # a column the lines were rejected for
    after: tuple | None = None  # (line, id) of the last row shown

    def link_args(self, **changes):
        """Query-string arguments for the list with `changes` (from its first row unless `after` is given)."""
        args = {"kind": self.kind, "column": self.column, **changes}
        return {name: value for name, value in args.items() if value}

    @property
    def label(self):
        """What the filter keeps, in words: "invalid email, column email"; empty for every line."""
        parts = [REASON_KINDS_BY_NAME[self.kind].label] if self.kind else []
        if self.column:
            parts.append(f"column {self.column}")
        return ", ".join(parts)


def parse_filter(args):
    """A RejectedFilter from request arguments; raises BadQuery for anything it cannot use."""
    kind = args.get("kind") or None
    if kind and kind not in REASON_KINDS_BY_NAME:
        raise BadQuery(f"There is no kind of rejected line called {kind!r}. "
                       f"Choose one of: {', '.join(REASON_KINDS_BY_NAME)}.")
    column = args.get("column") or None
    if column and len(column) > MAX_TEXT_ARGUMENT:
        raise BadQuery(f"column is longer than {MAX_TEXT_ARGUMENT} characters.")
    after = decode_cursor(args["after"], int) if args.get("after") else None
    return RejectedFilter(kind, column, after)


def rejected_lines_query(upload, line_filter=RejectedFilter()):
    """The upload's rejected lines that pass the filter, with their kinds, in line order."""
    query = (db.select(RowError.id, RowError.line, RowError.column_name, RowError.reason, RowError.raw_line,
                       REASON_KIND.label("reason_kind"), ROW_ERROR_KIND.label("kind"))
             .where(RowError.upload_id == upload.id).order_by(RowError.line, RowError.id))
    if line_filter.kind:
        query = query.where(REASON_KIND == line_filter.kind)
    if line_filter.column:
        query = query.where(RowError.column_name == line_filter.column)
    if line_filter.after:
        line, row_id = line_filter.after
        after = tuple_(literal(line, BigInteger), literal(row_id, BigInteger))
        # The first test bounds the scan of the (upload_id, line) index; the second breaks ties.
        query = query.where(and_(RowError.line >= line, tuple_(RowError.line, RowError.id) > after))
    return query


@dataclass
class RejectedPage:
    rows: list
    line_filter: RejectedFilter
    more: bool      # rows beyond this page match already

    @property
    def next_cursor(self):
        """Where the rows after this page start; while an upload runs, they may yet come."""
        if self.rows:
            return encode_cursor(self.rows[-1].line, self.rows[-1].id)
        return encode_cursor(*self.line_filter.after) if self.line_filter.after else None


def rejected_page(upload, line_filter):
    rows = db.session.execute(rejected_lines_query(upload, line_filter).limit(PAGE_SIZE + 1)).all()
    return RejectedPage(rows[:PAGE_SIZE], line_filter, more=len(rows) > PAGE_SIZE)


@dataclass
class ReasonSummary:
    """How many lines were rejected, by reason kind and by column (a line counts once in each)."""
    by_kind: list       # [(ReasonKind, count)], most first
    by_column: list     # [(column, count)], most first; lines rejected as a whole have no column
    counts: dict        # {(kind name, column): count}

    @property
    def total(self):
        return sum(count for _, count in self.by_kind)

    def matching(self, line_filter):
        return sum(count for (kind, column), count in self.counts.items()
                   if line_filter.kind in (None, kind) and line_filter.column in (None, column))


def reason_summary(upload):
    rows = db.session.execute(
        db.select(REASON_KIND.label("reason_kind"), RowError.column_name, db.func.count())
        .where(RowError.upload_id == upload.id).group_by("reason_kind", RowError.column_name)).all()
    counts = {(kind, column): count for kind, column, count in rows}
    by_kind = [(kind, sum(count for (name, _), count in counts.items() if name == kind.name))
               for kind in REASON_KINDS]
    columns = {column for _, column in counts if column}
    by_column = [(column, sum(count for (_, name), count in counts.items() if name == column)) for column in columns]
    return ReasonSummary(sorted([item for item in by_kind if item[1]], key=lambda item: -item[1]),
                         sorted(by_column, key=lambda item: (-item[1], item[0])), counts)
