"""locks.heartbeat_at: the holder's last sign of life

Revision ID: 0007
Revises: 0006

On SQLite the row in ``locks`` is the lock. Its holder now refreshes ``heartbeat_at``
every minute while it works, and another run takes the lock over only when the holder's
process is gone (same host) or it has given no sign of life for the store's stale-lock
age; a long run is never taken over while it is alive. Rows written before this
revision (``heartbeat_at`` NULL) keep the old rule: taken over 12 hours after
``acquired_at``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.drop_column("heartbeat_at")
