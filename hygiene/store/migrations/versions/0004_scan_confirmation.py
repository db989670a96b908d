"""proposals.confirmed_by/_at and repository_scans: which scan confirmed a proposal, and
whether the latest scan of its repository was complete

Revision ID: 0004
Revises: 0003

Plain ``ADD COLUMN`` (no batch mode): on SQLite a batch migration recreates the table,
and the decision triggers of 0003 that name ``proposals`` must not see it disappear.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("proposals", sa.Column("confirmed_by", sa.String(length=64), nullable=True))
    op.add_column("proposals", sa.Column("confirmed_at", sa.DateTime(), nullable=True))
    op.create_table(
        "repository_scans",
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("repository", sa.String(length=256), nullable=False),
        sa.Column("last_scan_run", sa.String(length=64), nullable=False),
        sa.Column("last_scan_at", sa.DateTime(), nullable=False),
        sa.Column("last_complete_at", sa.DateTime(), nullable=True),
        sa.Column("last_incomplete_run", sa.String(length=64), nullable=True),
        sa.Column("last_incomplete_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("account", "region", "repository"),
    )


def downgrade() -> None:
    op.drop_table("repository_scans")
    op.drop_column("proposals", "confirmed_at")  # ALTER TABLE DROP COLUMN (SQLite ≥ 3.35)
    op.drop_column("proposals", "confirmed_by")
