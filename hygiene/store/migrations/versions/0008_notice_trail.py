"""the notice trail: each grace period's start in the audit log; a revival clears it

Revision ID: 0008
Revises: 0007

- ``Store.mark_notified`` now appends a ``grace-started`` audit row per proposal it marks
  (the moment the notice reached a person, the grace date, the run whose report it was),
  and apply trusts a proposal's ``notified_at`` / ``grace_until`` only when such a row
  backs it. The proposals notified before this revision get theirs here, written from
  their columns as they are now (``data.backfilled: true``, no run): the dates an older
  version recorded are taken as they stand.
- PostgreSQL: a trigger clears ``notified_at`` and ``grace_until`` when a finished
  proposal is proposed again (its new incarnation needs a new notice), so the logins that
  cron/postgres/grants.sql keeps from writing those two columns (operators) can still
  merge a plan that revives one. On SQLite the store's statement clears them itself.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINISHED = "('expired', 'applied', 'failed', 'skipped')"

POSTGRES_FUNCTION = f"""
CREATE FUNCTION hygiene_revival_clears_notice() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'proposed' AND OLD.state IN {FINISHED} THEN
        NEW.notified_at := NULL;
        NEW.grace_until := NULL;
    END IF;
    RETURN NEW;
END
$$
"""

BACKFILL = {
    "postgresql": """
        INSERT INTO audit (at, run_id, proposal_id, actor, action, account, region,
                           repository, outcome, detail, dry_run, data)
        SELECT notified_at, NULL, id, '', 'notify', account, region, repository,
               'grace-started', 'grace period started before the notice trail (migration 0008)',
               false,
               json_build_object('notified_at', notified_at, 'grace_until', grace_until,
                                 'backfilled', true)
          FROM proposals WHERE notified_at IS NOT NULL ORDER BY notified_at, id
    """,
    "sqlite": """
        INSERT INTO audit (at, run_id, proposal_id, actor, action, account, region,
                           repository, outcome, detail, dry_run, data)
        SELECT notified_at, NULL, id, '', 'notify', account, region, repository,
               'grace-started', 'grace period started before the notice trail (migration 0008)',
               0,
               json_object('notified_at', notified_at, 'grace_until', grace_until,
                           'backfilled', json('true'))
          FROM proposals WHERE notified_at IS NOT NULL ORDER BY notified_at, id
    """,
}


def upgrade() -> None:
    bind = op.get_bind()
    op.execute(BACKFILL["postgresql" if bind.dialect.name == "postgresql" else "sqlite"])
    if bind.dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        op.execute(
            "CREATE TRIGGER hygiene_revival BEFORE UPDATE ON proposals "
            "FOR EACH ROW EXECUTE FUNCTION hygiene_revival_clears_notice()"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS hygiene_revival ON proposals")
        op.execute("DROP FUNCTION IF EXISTS hygiene_revival_clears_notice()")
    # the audit rows stay (the log is append-only; an older version reads them as any row)
