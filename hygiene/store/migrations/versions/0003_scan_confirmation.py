"""proposals.confirmed_by/_at and repository_scans: which scan confirmed a proposal, and
whether the latest scan of its repository was complete

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("proposals") as batch:
        batch.add_column(sa.Column("confirmed_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("confirmed_at", sa.DateTime(), nullable=True))
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
    with op.batch_alter_table("proposals") as batch:
        batch.drop_column("confirmed_at")
        batch.drop_column("confirmed_by")
