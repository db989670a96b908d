"""Alembic environment: run by :func:`hygiene.store.migrate` with an open connection.

Developers create a revision with::

    PYTHONPATH=. python -c "from hygiene.store.engine import make_engine, revision; \
      revision(make_engine('/tmp/gen.db'), 'message')"

(see docs/store.md, "Schema changes").
"""

from __future__ import annotations

from alembic import context

from hygiene.store.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through hygiene.store.migrate
    raise RuntimeError("run migrations through hygiene.store.migrate(engine)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE on SQLite
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
