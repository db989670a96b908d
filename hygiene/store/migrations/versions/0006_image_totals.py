"""findings: image findings stored as totals per rule and repository

Revision ID: 0006
Revises: 0005

A run stored one row per finding: ~900,000 rows a night at a million images, most of
them image findings, and nothing in the job reads them back. From this revision the
image findings of a run are stored as totals: one row per (run, code, rule, severity,
fix_safety, account, region, repository, namespace) with ``images`` (how many image
findings) and ``bytes`` (their sum); no digest, ``message`` and ``data`` NULL. Findings
that name no image (repository and namespace findings) stay one row each, ``images``
NULL. The per-image detail is in the scan document and the CSV exports.

Upgrade, in SQL on SQLite and PostgreSQL: adds ``images``; inserts the totals of the
rows already stored that name an image (``image_digest`` set), in the order of each
total's first row; deletes those rows; drops ``image_digest``; lets ``message`` and
``data`` be NULL and clears them on the totals. SQLite rebuilds the table once, after
the per-image rows are gone.

Downgrade cannot bring the per-image rows back (their digests, tags and messages were
not kept). It deletes the totals (a row of the older schema is one finding: a total
left there would read as a single finding), keeps every finding that names no image,
adds ``image_digest`` back (NULL) and makes ``message`` and ``data`` required again.
The runs' summaries, which keep the findings per rule, are untouched.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# what the image findings of one total share (as when this revision was written)
GROUP = "run_id, code, rule, severity, fix_safety, account, region, repository, namespace"


def upgrade() -> None:
    op.add_column("findings", sa.Column("images", sa.Integer(), nullable=True))
    empty = "'{}'::json" if op.get_bind().dialect.name == "postgresql" else "'{}'"
    # NULL namespaces group together (GROUP BY treats NULLs as equal); placeholders for
    # message and data until they may be NULL (SQLite rebuilds the table for that, so
    # after the per-image rows are gone)
    op.execute(
        f"INSERT INTO findings ({GROUP}, images, bytes, message, data, image_digest) "
        f"SELECT {GROUP}, COUNT(*), SUM(bytes), '', {empty}, NULL FROM findings "
        f"WHERE image_digest IS NOT NULL GROUP BY {GROUP} ORDER BY MIN(id)"
    )
    op.execute("DELETE FROM findings WHERE image_digest IS NOT NULL")
    with op.batch_alter_table("findings") as batch:
        batch.drop_column("image_digest")
        batch.alter_column("message", existing_type=sa.Text(), nullable=True)
        batch.alter_column("data", existing_type=sa.JSON(), nullable=True)
    op.execute("UPDATE findings SET message = NULL, data = NULL WHERE images IS NOT NULL")


def downgrade() -> None:
    op.execute("DELETE FROM findings WHERE images IS NOT NULL")
    with op.batch_alter_table("findings") as batch:
        batch.add_column(sa.Column("image_digest", sa.String(length=80), nullable=True))
        batch.alter_column("message", existing_type=sa.Text(), nullable=False)
        batch.alter_column("data", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("images")
