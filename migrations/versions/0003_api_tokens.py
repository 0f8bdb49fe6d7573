"""API tokens, where API uploads came from, and per-operator session tokens.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False, unique=True),
        sa.Column("operator_id", sa.Integer(), sa.ForeignKey("operators.id", ondelete="CASCADE")),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.add_column("uploads", sa.Column("source_name", sa.String()))
    op.add_column("uploads", sa.Column("expected_lines", sa.BigInteger()))
    # Changing it logs out every session of the operator (logout does).
    op.add_column("operators", sa.Column("session_token", sa.String(), nullable=False,
                                         server_default=sa.text("md5(random()::text)")))


def downgrade():
    op.drop_column("operators", "session_token")
    op.drop_column("uploads", "expected_lines")
    op.drop_column("uploads", "source_name")
    op.drop_table("api_tokens")
