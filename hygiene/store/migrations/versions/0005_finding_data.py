"""findings.data no longer repeats the row's columns

Revision ID: 0005
Revises: 0004

A finding row kept all of ``Finding.to_json()`` in ``data``, the columns (code, rule,
severity, fix_safety, account, region, repository, namespace, image_digest, bytes,
message) included. From this revision ``data`` holds only the rest (fix, tags, details,
message_template, message_params) and the store puts a finding back together on read
(``hygiene.store.findingrows``). Upgrade strips those keys from the rows already stored,
in SQL (SQLite ``json_remove``; PostgreSQL ``json_each``, which keeps the remaining keys
in order); downgrade writes the columns back into ``data``. No table changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the columns as they were when this revision was written (not imported: a migration
# keeps meaning what it meant)
COLUMNS = (
    "code", "rule", "severity", "fix_safety", "account", "region", "repository",
    "namespace", "image_digest", "bytes", "message",
)  # fmt: skip
ORDER = (
    "code", "rule", "severity", "account", "region", "repository", "namespace", "message",
    "fix", "fix_safety", "image_digest", "tags", "bytes", "details", "message_template",
    "message_params",
)  # fmt: skip


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        listed = ", ".join(f"'{name}'" for name in COLUMNS)
        op.execute(
            "UPDATE findings SET data = COALESCE("
            f"(SELECT json_object_agg(key, value) FROM json_each(data) WHERE key NOT IN ({listed})),"
            " '{}'::json) WHERE json_typeof(data) = 'object'"
        )
    else:
        paths = ", ".join(f"'$.{name}'" for name in COLUMNS)
        op.execute(
            f"UPDATE findings SET data = json_remove(data, {paths}) "
            "WHERE json_type(data) = 'object'"
        )


def downgrade() -> None:
    findings = sa.table(
        "findings",
        sa.column("id", sa.Integer()),
        *(sa.column(name) for name in COLUMNS),
        sa.column("data", sa.JSON()),
    )
    bind = op.get_bind()
    last = -1
    while True:
        rows = bind.execute(
            sa.select(findings).where(findings.c.id > last).order_by(findings.c.id).limit(10_000)
        ).all()
        if not rows:
            return
        updates = []
        for row in rows:
            merged = {name: getattr(row, name) for name in COLUMNS}
            merged.update(row.data or {})
            full = {k: merged.pop(k) for k in ORDER if k in merged}
            full.update(merged)
            updates.append({"key": row.id, "full": full})
        bind.execute(
            findings.update()
            .where(findings.c.id == sa.bindparam("key"))
            .values(data=sa.bindparam("full", type_=sa.JSON())),
            updates,
        )
        last = rows[-1].id
