"""Drop ix_records_upload_id: ix_records_upload_created (upload_id, created_at,
id) starts with the same column and answers every look-up by upload, and each
index on records makes COPY slower (bench/README.md, "CSV ingest").

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_records_upload_id", table_name="records")


def downgrade():
    op.create_index("ix_records_upload_id", "records", ["upload_id"])
