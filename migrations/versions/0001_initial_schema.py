"""Initial schema: operators, uploads with their raw bytes, records, row errors.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "operators",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=sa.text("now()"), nullable=False),
    )
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("filename", sa.String(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("operator_id", sa.Integer(), sa.ForeignKey("operators.id", ondelete="SET NULL")),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("created_at", TIMESTAMP, server_default=sa.text("now()"), nullable=False),
        sa.Column("on_duplicate", sa.String(), nullable=False),
        sa.Column("validate_only", sa.Boolean(), nullable=False),
        sa.Column("encoding", sa.String(), nullable=False),
        sa.Column("delimiter", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False, index=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("lines_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_inserted", sa.BigInteger(), nullable=False),
        sa.Column("rows_updated", sa.BigInteger(), nullable=False),
        sa.Column("duplicates_in_file", sa.BigInteger(), nullable=False),
        sa.Column("duplicates_existing", sa.BigInteger(), nullable=False),
        sa.Column("rows_invalid", sa.BigInteger(), nullable=False),
        sa.Column("bytes_processed", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_records", sa.BigInteger(), nullable=False),
        sa.Column("started_at", TIMESTAMP),
        sa.Column("finished_at", TIMESTAMP),
        sa.Column("heartbeat_at", TIMESTAMP),
        sa.Column("failure_reason", sa.String()),
        sa.Column("raw_deleted_at", TIMESTAMP),
    )
    op.create_table(
        "upload_pieces",
        sa.Column("upload_id", sa.Integer(), sa.ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "records",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("email_norm", sa.String(), nullable=False, unique=True),
        sa.Column("first_name", sa.String()),
        sa.Column("last_name", sa.String()),
        sa.Column("phone", sa.String()),
        sa.Column("company", sa.String()),
        sa.Column("city", sa.String()),
        sa.Column("country", sa.String()),
        sa.Column("extra", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("upload_id", sa.Integer(), sa.ForeignKey("uploads.id", ondelete="SET NULL")),
        sa.Column("source_line", sa.Integer()),
        sa.Column("created_at", TIMESTAMP, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TIMESTAMP, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.Integer(), sa.ForeignKey("operators.id", ondelete="SET NULL")),
    )
    op.create_index("ix_records_upload_id", "records", ["upload_id"])
    op.create_table(
        "row_errors",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("upload_id", sa.Integer(), sa.ForeignKey("uploads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("column_name", sa.String()),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("raw_line", sa.String()),
    )
    op.create_index("ix_row_errors_upload_line", "row_errors", ["upload_id", "line"])


def downgrade():
    op.drop_table("row_errors")
    op.drop_table("records")
    op.drop_table("upload_pieces")
    op.drop_table("uploads")
    op.drop_table("operators")
