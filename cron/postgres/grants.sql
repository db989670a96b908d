-- registry-hygiene: PostgreSQL roles that narrow who may write what in the store.
--
-- Run it as the owner of the hygiene tables (the login the scheduled job uses: it
-- creates and migrates the schema), after the job has run once, and again after an
-- upgrade that adds tables:
--
--     psql -v ON_ERROR_STOP=1 -d hygiene -f cron/postgres/grants.sql
--
-- then give people's logins the group role they need, e.g.
--
--     CREATE ROLE alice LOGIN;  GRANT hygiene_approver, hygiene_operator TO alice;
--     CREATE ROLE joao  LOGIN;  GRANT hygiene_objector TO joao;
--
-- hygiene_reader    reads everything (proposals, audit, runs): hygiene proposals|audit|runs
-- hygiene_objector  + inserts rejections only: hygiene reject (a project's owners)
-- hygiene_approver  + inserts decisions (approve and reject): hygiene approve (admins)
-- hygiene_operator  + what a run writes (runs, findings and their retention, proposals'
--                   bookkeeping and confirmation, repository scans, audit, locks; not the
--                   trust pin, not when a grace period starts): hygiene apply / hygiene
--                   run by hand (admins)
--
-- Nobody but the owner may update or delete a decision or an audit row. A decision
-- takes effect through the trigger of migration 0003 (it runs as the owner): it checks
-- the proposal is open, sets its state and appends the audit row, and records the
-- database login that inserted it (approvals.db_user), whatever the writer sent.
-- docs/approvals.md ("Threat model") says what this does and does not protect.

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['hygiene_reader', 'hygiene_objector', 'hygiene_approver',
                                'hygiene_operator'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', name);
        END IF;
    END LOOP;
END
$$;

GRANT hygiene_reader TO hygiene_objector, hygiene_approver, hygiene_operator;

-- Nothing for anyone by default; the owner keeps every right.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO hygiene_reader;

-- Read everything (alembic_version too: opening the store checks the schema version).
GRANT SELECT ON ALL TABLES IN SCHEMA public TO hygiene_reader;

-- Decisions: only the columns a person may set; db_user and the effects are the trigger's.
GRANT INSERT (proposal_id, decision, approver, reason, at, content_hash, source)
    ON approvals TO hygiene_objector, hygiene_approver;
GRANT USAGE ON SEQUENCE approvals_id_seq TO hygiene_objector, hygiene_approver;

ALTER TABLE approvals ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS hygiene_read ON approvals;
CREATE POLICY hygiene_read ON approvals FOR SELECT USING (true);
DROP POLICY IF EXISTS hygiene_decide ON approvals;
CREATE POLICY hygiene_decide ON approvals FOR INSERT TO hygiene_approver WITH CHECK (true);
DROP POLICY IF EXISTS hygiene_object ON approvals;
CREATE POLICY hygiene_object ON approvals FOR INSERT TO hygiene_objector
    WITH CHECK (decision = 'rejected');

-- What a run writes (hygiene apply, hygiene run nightly|weekly by hand).
GRANT INSERT, UPDATE ON runs TO hygiene_operator;
-- proposals: inserted by a scan; afterwards only their bookkeeping changes, never what
-- they change in the registry (action, target, evidence, safety).
GRANT INSERT ON proposals TO hygiene_operator;
-- confirmed_by/_at: the scan that last saw a proposal complete (apply acts on nothing
-- else); a run by hand confirms as the scheduled one does, and records each repository's
-- scan (repository_scans) for the next run to compare against.
-- Not notified_at and grace_until: when the owners were first told, which decides when
-- an approved unsafe fix may run, is the scheduled job's (the owner's) to record; an
-- operator's hand-run job starts no grace (the next scheduled report does). A revived
-- proposal's notice is cleared by the trigger of migration 0008, not by the operator.
-- Column grants are not revoked by a narrower GRANT: drop the table-wide ones first, so
-- running this file again after an upgrade takes back what an older version granted.
REVOKE UPDATE ON proposals FROM hygiene_operator;
GRANT UPDATE (state, first_seen, last_seen, summary, decided_at, decided_by, reason,
              finished_at, outcome, confirmed_by, confirmed_at)
    ON proposals TO hygiene_operator;
GRANT INSERT, UPDATE ON repository_scans TO hygiene_operator;
GRANT INSERT ON findings, audit TO hygiene_operator;
-- findings: a run deletes those older than store.findings_retention_days (its own
-- history, read by nobody; decisions and audit rows are never deleted)
GRANT DELETE ON findings TO hygiene_operator;
GRANT INSERT, UPDATE, DELETE ON locks TO hygiene_operator;
GRANT USAGE ON SEQUENCE findings_id_seq, audit_id_seq TO hygiene_operator;
-- The trust pin (who the deployed admins and owners are) is the owner's alone: only the
-- scheduled job's login pins; a run started by an operator checks against that pin.
