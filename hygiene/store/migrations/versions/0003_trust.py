"""trust: decisions bound to content, the pinned trust policy, decisions applied by a trigger

Revision ID: 0003
Revises: 0002

- ``approvals`` (the decision history) gains ``content_hash`` (what was decided on),
  ``source`` (``sts`` or ``demo:<id>``) and ``db_user`` (the database login that wrote
  the row: set by the trigger on PostgreSQL, whatever the writer sends).
- ``trust_pins``: the trust policy each scheduled run pinned (append-only).
- A trigger makes an inserted decision take effect: it checks that the proposal is still
  open, sets its state, decider and reason, and appends the audit row. A person who may
  only insert decisions (cron/postgres/grants.sql) never needs to write ``proposals`` or
  ``audit``. On PostgreSQL the function runs as its owner (SECURITY DEFINER).

SQLite drops a table's triggers when a batch migration recreates it: a later revision
that alters ``approvals`` with ``batch_alter_table`` must create the trigger again (the
store tests fail if it is missing).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "('proposed', 'approved', 'rejected')"

SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER hygiene_decision_check BEFORE INSERT ON approvals
    BEGIN
        SELECT RAISE(ABORT, 'hygiene: a decision is approved or rejected')
         WHERE NEW.decision NOT IN ('approved', 'rejected');
        SELECT RAISE(ABORT, 'hygiene: a rejection needs a reason')
         WHERE NEW.decision = 'rejected' AND trim(coalesce(NEW.reason, '')) = '';
        SELECT RAISE(ABORT, 'hygiene: unknown proposal')
         WHERE NOT EXISTS (SELECT 1 FROM proposals WHERE id = NEW.proposal_id);
        SELECT RAISE(ABORT, 'hygiene: the proposal is no longer open')
         WHERE (SELECT state FROM proposals WHERE id = NEW.proposal_id) NOT IN {OPEN};
    END
    """,
    """
    CREATE TRIGGER hygiene_decision_apply AFTER INSERT ON approvals
    BEGIN
        UPDATE proposals
           SET state = NEW.decision, decided_at = NEW.at, decided_by = NEW.approver,
               reason = NEW.reason
         WHERE id = NEW.proposal_id;
        INSERT INTO audit (at, proposal_id, actor, action, account, region, repository,
                           outcome, detail, dry_run, data)
        SELECT NEW.at, NEW.proposal_id, NEW.approver,
               CASE NEW.decision WHEN 'approved' THEN 'approve' ELSE 'reject' END,
               account, region, repository, NEW.decision, coalesce(NEW.reason, ''), 0, '{}'
          FROM proposals WHERE id = NEW.proposal_id;
    END
    """,
]

POSTGRES_FUNCTION = """
CREATE FUNCTION hygiene_record_decision() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
DECLARE
    target_row proposals%ROWTYPE;
BEGIN
    NEW.db_user := session_user;
    IF NEW.decision NOT IN ('approved', 'rejected') THEN
        RAISE EXCEPTION 'hygiene: a decision is approved or rejected, not %', NEW.decision;
    END IF;
    IF NEW.decision = 'rejected' AND trim(coalesce(NEW.reason, '')) = '' THEN
        RAISE EXCEPTION 'hygiene: a rejection needs a reason';
    END IF;
    SELECT * INTO target_row FROM proposals WHERE id = NEW.proposal_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hygiene: unknown proposal %', NEW.proposal_id;
    END IF;
    IF target_row.state NOT IN {open} THEN
        RAISE EXCEPTION 'hygiene: the proposal is no longer open (%)', target_row.state;
    END IF;
    UPDATE proposals
       SET state = NEW.decision, decided_at = NEW.at, decided_by = NEW.approver,
           reason = NEW.reason
     WHERE id = NEW.proposal_id;
    INSERT INTO audit (at, proposal_id, actor, action, account, region, repository,
                       outcome, detail, dry_run, data)
    VALUES (NEW.at, NEW.proposal_id, NEW.approver,
            CASE NEW.decision WHEN 'approved' THEN 'approve' ELSE 'reject' END,
            target_row.account, target_row.region, target_row.repository, NEW.decision,
            coalesce(NEW.reason, ''), false, '{{}}'::json);
    RETURN NEW;
END
$$
"""


def upgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("content_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("source", sa.String(80), nullable=True))
        batch.add_column(sa.Column("db_user", sa.String(128), nullable=True))
    op.create_table(
        "trust_pins",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        schema = bind.execute(sa.text("SELECT current_schema()")).scalar_one()
        op.execute(POSTGRES_FUNCTION.format(schema=f'"{schema}"', open=OPEN))
        op.execute(
            "CREATE TRIGGER hygiene_decision BEFORE INSERT ON approvals "
            "FOR EACH ROW EXECUTE FUNCTION hygiene_record_decision()"
        )
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS hygiene_decision ON approvals")
        op.execute("DROP FUNCTION IF EXISTS hygiene_record_decision()")
    else:
        op.execute("DROP TRIGGER IF EXISTS hygiene_decision_check")
        op.execute("DROP TRIGGER IF EXISTS hygiene_decision_apply")
    op.drop_table("trust_pins")
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("db_user")
        batch.drop_column("source")
        batch.drop_column("content_hash")
