"""cron/postgres/grants.sql against the real PostgreSQL: people write decisions only.

The tables' owner (the scheduled job's login) migrates the store, runs grants.sql, and
gives each person's login a group role. Each login then goes through the Store API, and
straight through SQL for what the API would never do.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from hygiene.authz import Identity, TrustPolicy
from hygiene.errors import NotAuthorisedError
from hygiene.model import ProposalState
from hygiene.store import Store
from hygiene.wiring import persist_with
from tests import builders
from tests.builders import NOW, REPO_ROOT
from tests.postgres import EmbeddedPostgres

GRANTS = REPO_ROOT / "cron" / "postgres" / "grants.sql"
ALICE = Identity(builders.ADMIN.name, "sts")
JOAO = Identity(
    f"arn:aws:sts::{builders.ACCOUNT}:assumed-role/AWSReservedSSO_Developer_0123456789abcdef/"
    "joao.silva@lsd.ufcg.edu.br",
    "sts",
)
LOGINS = {
    "alice": "hygiene_approver, hygiene_operator",  # an admin
    "joao": "hygiene_objector",  # a project owner
    "rita": "hygiene_reader",  # someone who reads the reports
}


@pytest.fixture
def granted(postgres_server: EmbeddedPostgres) -> Iterator[dict[str, Any]]:
    url = postgres_server.create_database()
    owner = Store(url)  # the job's login: creates the schema, pins, proposes
    owner.pin_trust(TrustPolicy.from_config(builders.config({"admins": ["AdministratorAccess"]})))
    proposals = [builders.proposal(repository=f"suporte/app{i}", digests=["a"]) for i in range(3)]
    owner.upsert_proposals(proposals, NOW - timedelta(days=10))
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    database = dsn.rsplit("/", 1)[1]
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(GRANTS.read_text())
        connection.execute(GRANTS.read_text())  # it can be run again (after an upgrade)
        for login, roles in LOGINS.items():
            if not connection.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)
            ).fetchone():
                connection.execute(f"CREATE ROLE {login} LOGIN")
            connection.execute(f"GRANT {roles} TO {login}")
            connection.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {login}')

    def as_login(login: str) -> Store:
        return Store(url.replace("postgres@", f"{login}@"))

    def sql(login: str, statement: str, params: dict[str, Any] | None = None) -> None:
        with psycopg.connect(dsn.replace("postgres@", f"{login}@"), autocommit=True) as c:
            c.execute(statement, params) if params else c.execute(statement)

    yield {"owner": owner, "ids": [p.id for p in proposals], "as": as_login, "sql": sql}
    owner.close()


def test_an_admin_login_records_decisions_and_runs_but_changes_no_proposal(granted) -> None:
    first, second, _ = granted["ids"]
    alice: Store = granted["as"]("alice")
    (approved,) = alice.approve([first], ALICE, now=NOW)
    assert approved.state == ProposalState.APPROVED  # the trigger did that, not alice
    (decision,) = alice.decisions([first])[first]
    assert decision.db_user == "alice" and decision.approver == ALICE.name
    assert granted["owner"].audit_log(proposal_id=first)[0].outcome == "approved"
    alice.reject([second], ALICE, "not now", now=NOW)

    # what a hand-run apply writes: the lock, a run, audit rows, a proposal's outcome
    with alice.lock():
        run_id = alice.record_run("apply", started_at=NOW)
        alice.audit("apply", "skipped", run_id=run_id, proposal_id=first, detail="test")
        alice.set_state(first, ProposalState.SKIPPED, "test", NOW)
        alice.finish_run(run_id, "ok")
    assert alice.pin_trust(TrustPolicy.from_config(builders.config())) is None  # owner only
    assert granted["owner"].pinned_trust().policy.admins == ("AdministratorAccess",)

    forbidden = [
        "UPDATE proposals SET target = '{}'",  # what a proposal deletes
        "UPDATE proposals SET evidence = '{}'",
        "UPDATE proposals SET fix_safety = 'safe'",
        "UPDATE approvals SET approver = 'someone else'",
        "DELETE FROM approvals",
        "DELETE FROM audit",
        "UPDATE audit SET outcome = 'deleted'",
        "INSERT INTO trust_pins (at, digest, document, host) VALUES (now(), 'x', '{}', 'h')",
        "INSERT INTO approvals (proposal_id, decision, approver, at, db_user) "
        f"VALUES ('{first}', 'approved', 'x', now(), 'someone')",
    ]
    for statement in forbidden:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            granted["sql"]("alice", statement)


def test_an_admin_login_runs_the_nightly_by_hand(granted) -> None:
    """What a nightly run writes when an operator starts it (``hygiene run nightly`` by
    hand, docs/operations.md): its findings, the pruning of old ones, the proposals
    merged and confirmed by its scan, each repository's scan."""
    owner: Store = granted["owner"]
    old = owner.record_run("nightly", started_at=NOW - timedelta(days=100))
    owner.record_findings(old, [builders.finding("RP001", "suporte/app0")])
    seen = builders.proposal(digests=["a"])  # in suporte/api, which the scan reads
    owner.upsert_proposals([seen], NOW - timedelta(days=1))
    inventory = builders.inventory([builders.image_row("a")], now=NOW)
    evaluation = builders.evaluation(
        [builders.finding("IM002", digest="a"), builders.finding("RP001", "suporte/app1")]
    )
    alice: Store = granted["as"]("alice")
    with alice.lock():
        run_id = alice.record_run("nightly", started_at=NOW)
        persist_with(alice, findings_retention_days=90)(run_id, inventory, evaluation, [seen])
        alice.finish_run(run_id, "ok")

    assert owner.findings(old) == []  # pruned: older than 90 days
    assert len(owner.findings(run_id)) == 2  # one image total, one finding
    stored = owner.get(seen.id)
    assert stored is not None and stored.confirmed_by == run_id
    key = (builders.ACCOUNT, builders.REGION, builders.REPOSITORY)
    assert owner.repository_scans([key])[key].last_scan_run == run_id
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # still never the evidence
        granted["sql"]("alice", "UPDATE proposals SET evidence = '{}'")


def test_an_owner_login_may_object_and_nothing_else(granted) -> None:
    first, second, _ = granted["ids"]
    joao: Store = granted["as"]("joao")
    joao.reject([first], JOAO, "still used by CI", now=NOW)
    assert granted["owner"].get(first).state == ProposalState.REJECTED
    (decision,) = granted["owner"].decisions([first])[first]
    assert decision.db_user == "joao"
    with pytest.raises(NotAuthorisedError, match="row-level security"):
        joao.approve([second], ALICE, now=NOW)  # claiming to be an admin does not help
    assert granted["owner"].get(second).state == ProposalState.PROPOSED
    assert granted["owner"].decisions([second]) == {}
    for statement in (
        "UPDATE proposals SET state = 'approved'",
        "INSERT INTO audit (at, actor, action, outcome, detail, dry_run, data) "
        "VALUES (now(), 'x', 'x', 'deleted', '', false, '{}')",
        "INSERT INTO runs (id, kind, started_at, status, source, host, counts, api_calls, "
        "errors, summary) VALUES ('r', 'apply', now(), 'ok', '', '', '{}', '{}', '[]', '{}')",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            granted["sql"]("joao", statement)


def test_a_reader_login_reads_and_decides_nothing(granted) -> None:
    first = granted["ids"][0]
    rita: Store = granted["as"]("rita")
    assert {s.id for s in rita.proposals()} == set(granted["ids"])
    assert rita.pinned_trust() is not None
    with pytest.raises(NotAuthorisedError, match="permission denied"):
        rita.reject([first], JOAO, "no", now=NOW)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        granted["sql"]("rita", "DELETE FROM proposals")
    assert granted["owner"].get(first).state == ProposalState.PROPOSED


def test_an_operator_login_never_moves_a_grace_period(granted) -> None:
    """When the owners were told decides when an approved unsafe fix may run: only the
    scheduled job's login (the tables' owner) records it, with its audit row."""
    first, second, third = granted["ids"]
    owner: Store = granted["owner"]
    run_id = owner.record_run("weekly", started_at=NOW - timedelta(days=1))
    assert owner.mark_notified(NOW, ids=[first], namespace="suporte", run_id=run_id) == 1
    for statement in (
        "UPDATE proposals SET grace_until = now() - interval '30 days'",
        "UPDATE proposals SET notified_at = now() - interval '30 days'",
        "UPDATE proposals SET notified_at = NULL, grace_until = NULL",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            granted["sql"]("alice", statement)
    alice: Store = granted["as"]("alice")
    # a hand-run job's report starts no grace: the next scheduled one does
    assert alice.mark_notified(NOW, ids=[second], namespace="suporte") == 0
    stored = {s.id: s for s in owner.proposals()}
    assert stored[first].proposal.grace_until == NOW + timedelta(days=7)
    assert stored[second].notified_at is None and stored[second].proposal.grace_until is None
    assert stored[third].notified_at is None
    (row,) = owner.audit_log(outcome="grace-started")
    assert (row.proposal_id, row.run_id, row.at) == (first, run_id, NOW)
    assert owner.notices([first, second]) == {first: [row]}

    # what an older grants.sql granted is taken back when the new one runs again
    granted["sql"]("postgres", "GRANT UPDATE ON proposals TO hygiene_operator")
    granted["sql"]("postgres", GRANTS.read_text())
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        granted["sql"]("alice", "UPDATE proposals SET grace_until = now()")


def test_an_operator_login_revives_a_proposal_and_its_notice_is_cleared(granted) -> None:
    """A finished proposal proposed again needs a new notice: the trigger of migration
    0008 clears the old one, so an operator's hand-run job (which may not write the
    notice's columns) still merges the plan."""
    first = granted["ids"][0]
    owner: Store = granted["owner"]
    owner.mark_notified(NOW - timedelta(days=9), ids=[first], namespace="suporte")
    owner.set_state(first, ProposalState.SKIPPED, "test", NOW - timedelta(days=1))
    (proposal,) = [p.proposal for p in owner.proposals(ids=[first])]
    alice: Store = granted["as"]("alice")
    counts = alice.upsert_proposals([proposal], NOW)
    assert counts["revived"] == 1
    revived = owner.get(first)
    assert revived is not None and revived.state == ProposalState.PROPOSED
    assert revived.notified_at is None and revived.proposal.grace_until is None
