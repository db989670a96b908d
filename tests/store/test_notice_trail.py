"""The notice trail (migration 0008): each grace period's start is an audit row, a
revival clears the notice; SQLite and the embedded PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from hygiene.model import ProposalState
from hygiene.store import Store
from tests import builders
from tests.builders import NOW
from tests.store.test_findingrows import _at_revision, _downgrade


def test_mark_notified_writes_one_grace_started_row_per_proposal(store: Store) -> None:
    proposals = [builders.proposal(repository=f"suporte/app{i}", digests=["a"]) for i in range(3)]
    store.upsert_proposals(proposals, NOW - timedelta(days=1))
    run_id = store.record_run("weekly", started_at=NOW - timedelta(hours=1))
    ids = [p.id for p in proposals]
    assert store.mark_notified(NOW, namespace="suporte", ids=ids[:2], run_id=run_id) == 2
    assert store.mark_notified(NOW + timedelta(days=1), namespace="suporte", ids=ids) == 1
    notices = store.notices(ids)
    assert [(n.run_id, n.at) for n in notices[ids[0]]] == [(run_id, NOW)]
    assert [(n.run_id, n.at) for n in notices[ids[2]]] == [(None, NOW + timedelta(days=1))]
    (first,) = notices[ids[0]]
    assert first.data["grace_until"] == (NOW + timedelta(days=7)).isoformat()
    assert first.repository == "suporte/app0" and first.action == "notify"
    assert store.runs_by_id([run_id, "nope"])[run_id].kind == "weekly"


def test_a_revival_clears_the_notice(store: Store) -> None:
    proposal = builders.proposal(repository="suporte/app", digests=["a"])
    store.upsert_proposals([proposal], NOW - timedelta(days=10))
    store.mark_notified(NOW - timedelta(days=9), namespace="suporte")
    store.set_state(proposal.id, ProposalState.SKIPPED, "test", NOW - timedelta(days=1))
    assert store.upsert_proposals([proposal], NOW)["revived"] == 1
    revived = store.get(proposal.id)
    assert revived is not None and revived.notified_at is None
    assert revived.proposal.grace_until is None
    assert store.mark_notified(NOW, namespace="suporte") == 1  # announced again


def test_the_migration_writes_the_trail_of_earlier_notices(store_url: str) -> None:
    """A store notified by an older version gets a ``grace-started`` row per notified
    proposal, written from its columns: apply trusts those dates as they stand."""
    proposals = [builders.proposal(repository=f"suporte/app{i}", digests=["a"]) for i in range(2)]
    with Store(store_url) as store:
        store.upsert_proposals(proposals, NOW - timedelta(days=10))
        store.mark_notified(NOW - timedelta(days=9), ids=[proposals[0].id], namespace="suporte")
    engine = _at_revision(store_url, "head")
    with engine.begin() as connection:  # as an older version left it: no trail
        connection.execute(text("DELETE FROM audit"))
    _downgrade(engine, "0007")
    engine.dispose()
    with Store(store_url) as store:  # opening migrates to head
        (row,) = store.audit_log(outcome="grace-started")
        assert (row.proposal_id, row.at, row.run_id) == (proposals[0].id, NOW - timedelta(9), None)
        assert row.data["backfilled"] is True
        assert store.notices([proposals[1].id]) == {}
