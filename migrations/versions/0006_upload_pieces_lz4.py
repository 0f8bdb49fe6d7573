"""Compress uploaded files with lz4 instead of pglz.

Storing a 102 MB file took PostgreSQL 3.2 s with pglz and 0.85 s with lz4,
for about the same size on disk (41 and 37 MB; bench/README.md, "The
request"). Pieces stored before keep their compression; both read back.

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("ALTER TABLE upload_pieces ALTER COLUMN data SET COMPRESSION lz4")


def downgrade():
    op.execute("ALTER TABLE upload_pieces ALTER COLUMN data SET COMPRESSION pglz")
