"""Indexes for the records list: sort, search, filters and keyset pagination.

Each sort key is indexed together with id, so that any page, however deep, is
an index range scan. Text keys ignore case and use byte order ("C"), so the
same index answers the prefix searches (LIKE 'abc%') on any database
collation; NULL is indexed as '' (or 0), the way the list sorts it.
webapp/records/query.py writes exactly these expressions. Building them locks
writes to records: about 35 s for 5 million rows on 2 cores (bench/README.md).

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FULL_NAME = "coalesce(first_name, '') || ' ' || coalesce(last_name, '')"
SORT_INDEXES = {
    "ix_records_email_sort": 'email_norm COLLATE "C"',
    "ix_records_name_sort": f'lower({FULL_NAME}) COLLATE "C"',
    "ix_records_last_name_sort": "lower(coalesce(last_name, '')) COLLATE \"C\"",
    "ix_records_company_sort": "lower(coalesce(company, '')) COLLATE \"C\"",
    "ix_records_city_sort": "lower(coalesce(city, '')) COLLATE \"C\"",
    "ix_records_country_sort": "lower(coalesce(country, '')) COLLATE \"C\"",
    "ix_records_upload_sort": "coalesce(upload_id, 0)",
    "ix_records_created_sort": "created_at",
}
# An index-only scan needs the column itself, not only an expression of it:
# with it, counting the records of a country reads the index alone.
INCLUDED = {"ix_records_country_sort": ["country"]}

# A search is a prefix of the email or of one of these. Whether PostgreSQL walks
# the sort index or collects the matches first depends on how many it expects;
# with the default statistics it expects 1% of the rows for any rare prefix
# (50,000 of 5 million for one matching 300). Finer statistics bring that
# down to 0.1%.
SEARCHED_EXPRESSIONS = ("ix_records_name_sort", "ix_records_last_name_sort", "ix_records_company_sort")
SEARCH_STATISTICS = 1000


def upgrade():
    for name, expression in SORT_INDEXES.items():
        op.create_index(name, "records", [sa.text(expression), "id"], postgresql_include=INCLUDED.get(name, []))
    # The records of one upload, newest first: the upload page links to that list.
    op.create_index("ix_records_upload_created", "records", ["upload_id", "created_at", "id"])
    for name in SEARCHED_EXPRESSIONS:
        op.execute(f"ALTER INDEX {name} ALTER COLUMN 1 SET STATISTICS {SEARCH_STATISTICS}")
    op.execute(f"ALTER TABLE records ALTER COLUMN email_norm SET STATISTICS {SEARCH_STATISTICS}")


def downgrade():
    op.execute("ALTER TABLE records ALTER COLUMN email_norm SET STATISTICS -1")
    op.drop_index("ix_records_upload_created", table_name="records")
    for name in reversed(SORT_INDEXES):
        op.drop_index(name, table_name="records")
