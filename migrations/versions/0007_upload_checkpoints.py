"""Each chunk an ingest job saves leaves a checkpoint row: when, how many lines,
and when the run that saved it began, so the upload page can draw the job's
throughput and show where a worker stopped and another resumed.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "upload_checkpoints",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("upload_id", sa.Integer(), sa.ForeignKey("uploads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("run_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"),
                  nullable=False),
        sa.Column("lines", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_upload_checkpoints_upload", "upload_checkpoints", ["upload_id", "id"])


def downgrade():
    op.drop_table("upload_checkpoints")
