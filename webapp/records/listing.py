"""Running a RecordQuery for the list page: one page of rows and how many
records match, at a cost that stays bounded however many records there are."""
from dataclasses import dataclass

from sqlalchemy import func, select, text

from webapp.records.query import (conditions, email_prefix_condition, encode_cursor, page_statement,
                                  scan_is_descending)

# Counting matching records reads each of them, so the page counts only a few
# and asks for the exact number in a request of its own (_count.html).
QUICK_COUNT_LIMIT = 1_000
EXACT_COUNT_LIMIT = 100_000
ESTIMATE_ONLY_ABOVE = 1_000_000
# A search expected to match no more records than this is sorted from its
# matches: reading them costs about what walking the sort index would cost at
# this number (bench/README.md). The bar must stay above the lowest estimate
# PostgreSQL makes for a prefix, which with the statistics of migration 0002
# is a thousandth of the table, so it grows with the table.
COLLECT_SEARCH_BELOW = 10_000
LOWEST_PREFIX_ESTIMATE = 1 / 1000
# Collecting reads one table page per match, wherever it lies; cold, that is
# too slow long before 10,000 matches (bench/README.md). A search expected to
# match more than BOUND_SEARCH_ABOVE is first tried within a stretch of the
# sort order that should hold BOUND_SPARE pages of matches, found from the
# column's statistics, so that only those matches are read. Only sorts by
# plain columns have statistics in their own order.
BOUND_SEARCH_ABOVE = 2_000
BOUND_SPARE = 4
NARROW_SHARE = 0.5  # a stretch of more than this share of the table is not worth bounding by
SORT_STATISTICS = {"created": ("records", "created_at", "timestamptz")}
# How many table pages PostgreSQL asks for at once in a bitmap scan (a search
# or count that collects its matches). PostgreSQL 15's default of 1 reads them
# one by one; SSDs and cloud disks serve many reads at once (bench/README.md).
READ_AHEAD_PAGES = 32


@dataclass
class Page:
    rows: list
    next_cursor: str | None
    previous_cursor: str | None


@dataclass
class Count:
    number: int
    exact: bool

    @property
    def label(self):
        noun = "record" if self.number == 1 and self.exact else "records"
        if self.exact:
            return f"{self.number:,} {noun}"
        return f"about {round_to_two_digits(self.number):,} {noun}"

    @property
    def can_refine(self):
        """Counting up to EXACT_COUNT_LIMIT might make this exact."""
        return not self.exact and self.number <= ESTIMATE_ONLY_ABOVE


def round_to_two_digits(number):
    return round(number, -max(len(str(number)) - 2, 0))


def plan_with_values(session):
    """Have PostgreSQL plan each statement of this transaction for its values.

    psycopg prepares a statement it has run five times, and PostgreSQL may then
    reuse one plan for any values; for LIKE 'prefix%' that plan cannot use an
    index and reads every row.
    """
    session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    session.execute(text(f"SET LOCAL effective_io_concurrency = {READ_AHEAD_PAGES}"))


def table_rows(session):
    """The number of records as of the last ANALYZE (cheap, never counted)."""
    return session.scalar(text("SELECT reltuples FROM pg_class WHERE oid = 'records'::regclass"))


def planner_estimate(session, statement):
    """How many rows PostgreSQL expects `statement` to return (EXPLAIN, no execution)."""
    compiled = statement.compile(dialect=session.get_bind().dialect)
    plan = session.connection().exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled),
                                                compiled.params).scalar()
    return int(plan[0]["Plan"]["Plan Rows"])


def bounded_count(session, matching, limit):
    """How many rows `matching` selects, counting no further than limit + 1."""
    return session.scalar(select(func.count()).select_from(matching.limit(limit + 1).subquery()))


def list_records(session, query):
    """(Page, Count) for the list page. Filters are left to PostgreSQL, which
    estimates them well; counting stops after QUICK_COUNT_LIMIT rows."""
    plan_with_values(session)
    matching = select(query.records.id).where(*conditions(query))
    if query.q:
        return _search_page(session, query, matching)
    counted = bounded_count(session, matching, QUICK_COUNT_LIMIT)
    if counted <= QUICK_COUNT_LIMIT:
        return fetch_page(session, query), Count(counted, exact=True)
    estimate = planner_estimate(session, matching)
    return fetch_page(session, query), Count(max(estimate, counted), exact=False)


def _search_page(session, query, matching):
    """A search expected to match few records is sorted from its collected
    matches, which also gives the exact count. Left to choose, PostgreSQL may
    expect more matches than a rare search has and walk the sort index through
    millions of rows looking for them; for many matches that walk is the quick
    way, and it is left to choose. In between, and before either when the sort
    allows, the page is looked for near its place in the sort order."""
    estimate = planner_estimate(session, matching)
    at_least = max(estimate, email_matches(session, query)) if query.sort in SORT_STATISTICS else estimate
    if at_least > BOUND_SEARCH_ABOVE:
        page = fetch_bounded_page(session, query, at_least)
        if page is not None:
            return page, Count(at_least, exact=False)
    if estimate > max(COLLECT_SEARCH_BELOW, 2 * LOWEST_PREFIX_ESTIMATE * table_rows(session)):
        return fetch_page(session, query), Count(estimate, exact=False)
    page = fetch_page(session, query, collect_first=True)
    if page.rows:
        return page, Count(page.rows[0].matches, exact=True)
    if query.after is None:
        return page, Count(0, exact=True)
    return page, count_records(session, query)  # past the last match: count them anew


def email_matches(session, query, limit=COLLECT_SEARCH_BELOW):
    """How many emails start with the search term, counting no further than limit + 1.

    PostgreSQL's estimate for an email prefix is poor (988 of 5 million for
    "olga.m", which 3,115 have), while counting them reads only the email
    index (an index-only scan): a lower bound for the matches of a search."""
    records = query.records
    return bounded_count(session, select(records.id).where(email_prefix_condition(query.q, records)), limit)


def count_records(session, query):
    """Exact up to EXACT_COUNT_LIMIT, else the planner's estimate, marked as such.

    Counting is skipped when the planner expects far more than that.
    """
    plan_with_values(session)
    matching = select(query.records.id).where(*conditions(query))
    estimate = planner_estimate(session, matching)
    if estimate > ESTIMATE_ONLY_ABOVE:
        return Count(estimate, exact=False)
    counted = bounded_count(session, matching, EXACT_COUNT_LIMIT)
    if counted <= EXACT_COUNT_LIMIT:
        return Count(counted, exact=True)
    return Count(max(estimate, counted), exact=False)


def _cursor_of(row):
    return encode_cursor(row.sort_key, row.Record.id)


def fetch_page(session, query, collect_first=False):
    """The page `query` points at, with cursors for the pages next to it."""
    backward = query.before is not None
    rows = session.execute(page_statement(query, backward=backward, collect_first=collect_first)).all()
    if backward and len(rows) <= query.size:
        # Nothing before these rows: this is the first page, and it should be a full one.
        return fetch_page(session, query.first_page(), collect_first)
    return page_of(rows, query, backward)


def page_of(rows, query, backward):
    """The Page of `rows` as fetched: in the order of the scan, one more than a page
    when the list goes on that way (always, backward)."""
    more = len(rows) > query.size
    rows = rows[:query.size]
    if backward:
        rows = rows[::-1]
        return Page(rows, next_cursor=_cursor_of(rows[-1]), previous_cursor=_cursor_of(rows[0]))
    return Page(rows, next_cursor=_cursor_of(rows[-1]) if more else None,
                previous_cursor=_cursor_of(rows[0]) if rows and query.after else None)


# Searching a stretch of the sort order

def sort_statistics(session, sort):
    """[(low, high, share of the rows)] for the sort key's values, from pg_stats:
    each common value on its own, then each histogram bucket; [] without statistics."""
    table, column, value_type = SORT_STATISTICS[sort]
    row = session.execute(text(
        f"SELECT null_frac, most_common_vals::text::{value_type}[], most_common_freqs, "
        f"histogram_bounds::text::{value_type}[] FROM pg_stats "
        "WHERE schemaname = current_schema() AND tablename = :table AND attname = :column"),
        {"table": table, "column": column}).first()
    if row is None:
        return []
    null_share, common, common_shares, bounds = row
    common, common_shares, bounds = common or [], common_shares or [], bounds or []
    shares = [(value, value, share) for value, share in zip(common, common_shares)]
    if len(bounds) > 1:
        bucket = (1 - null_share - sum(common_shares)) / (len(bounds) - 1)
        shares += [(low, high, bucket) for low, high in zip(bounds, bounds[1:])]
    return shares


def sort_bound(shares, start, descending, share):
    """A sort value such that the rows from `start` (None: the first row) to it,
    in the order being fetched, are at least `share` of the table by the
    statistics; None when the rest of the table is not that much, or when the
    stretch would be more than NARROW_SHARE of the table.

    Values straddling `start` are not counted, so the stretch errs on the long side."""
    if descending:
        ahead = sorted((item for item in shares if start is None or item[1] <= start), key=lambda item: item[1],
                       reverse=True)
    else:
        ahead = sorted((item for item in shares if start is None or item[0] >= start), key=lambda item: item[0])
    total = 0.0
    for low, high, item_share in ahead:
        total += item_share
        if total > NARROW_SHARE:
            return None
        if total >= share:
            return low if descending else high
    return None


def fetch_bounded_page(session, query, estimate):
    """The page `query` points at, looked for only among the rows near it in the
    sort order; None when fewer than a page match there (the statistics or the
    estimate were wrong, or the list ends there), and another way must be used."""
    if query.sort not in SORT_STATISTICS:
        return None
    backward = query.before is not None
    cursor = query.before if backward else query.after
    bound = sort_bound(sort_statistics(session, query.sort), cursor and cursor[0],
                       scan_is_descending(query, backward), BOUND_SPARE * (query.size + 1) / estimate)
    if bound is None:
        return None
    rows = session.execute(page_statement(query, backward=backward, bound=bound)).all()
    if len(rows) <= query.size:
        return None
    return page_of(rows, query, backward)
