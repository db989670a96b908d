"""A grace date apply trusts is one the audit trail backs (hygiene.apply.notice).

``notified_at`` and ``grace_until`` decide when an approved unsafe fix may run. A login
that can write ``proposals`` (the tables' owner on PostgreSQL, whoever can write the
SQLite file) could move them; apply believes them only when the ``grace-started`` audit
row that ``mark_notified`` writes in the same transaction backs them, for a run that was
going at that moment. Real registry (moto server), SQLite and the embedded PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from hygiene.apply import apply
from hygiene.config import Config
from hygiene.store import Store
from tests.apply.registry import Seeder
from tests.apply.test_apply_moto import ADMIN, propose


@pytest.fixture
def store(either_store: Store) -> Store:
    return either_store


def forge(store: Store, proposal_id: str, **columns: datetime) -> None:
    """Write the notice's columns straight into the table, as a writer of the store can."""
    sets = ", ".join(f"{name} = :{name}" for name in columns)
    values = {name: when.replace(tzinfo=None) for name, when in columns.items()}
    with store.engine.begin() as connection:
        connection.execute(
            text(f"UPDATE proposals SET {sets} WHERE id = :id"), {**values, "id": proposal_id}
        )


def stale(seeder: Seeder, store: Store, config: Config, now: datetime, name: str) -> Any:
    repo = seeder.repo(name)
    digest = seeder.image(repo)
    (proposal,) = propose(store, seeder, config, now, [seeder.finding("IM002", repo, digest)])
    return proposal, repo, digest


def test_a_grace_date_only_the_table_holds_deletes_nothing(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    told, told_repo, told_digest = stale(seeder, store, config, now, "suporte/told")
    never, never_repo, never_digest = stale(seeder, store, config, now, "suporte/never")
    moved, moved_repo, moved_digest = stale(seeder, store, config, now, "suporte/moved")
    store.mark_notified(now - timedelta(days=8), ids=[told.id])  # a real notice, past grace
    store.mark_notified(now - timedelta(days=1), ids=[moved.id])  # told yesterday
    store.approve([told.id, never.id, moved.id], ADMIN, now=now)
    # nobody was told about `never`: a grace "started" 9 days ago, in the table alone
    forge(store, never.id, notified_at=now - timedelta(days=9), grace_until=now - timedelta(1))
    # `moved` was told yesterday: its notice moved back 9 days
    forge(store, moved.id, notified_at=now - timedelta(days=9), grace_until=now - timedelta(1))

    result = apply(store, clients, config, now, actor=ADMIN)

    assert told.id in result.states, result.not_eligible
    assert result.states[told.id][0] == "applied"  # the control: a notice on record
    assert told_digest not in seeder.live_digests(told_repo)
    for proposal, repo, digest in (
        (never, never_repo, never_digest),
        (moved, moved_repo, moved_digest),
    ):
        why = result.not_eligible[proposal.id]
        assert "grace date is not trusted" in why and "no grace-started audit row" in why
        assert digest in seeder.live_digests(repo)
        (row,) = store.audit_log(proposal_id=proposal.id, outcome="unverified")
        assert "grace-started" in row.detail
        assert store.get(proposal.id).state.value == "approved"  # kept for a real notice


def test_a_grace_date_shortened_in_the_table_counts_from_the_notice(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    proposal, repo, digest = stale(seeder, store, config, now, "suporte/short")
    store.mark_notified(now - timedelta(days=1), ids=[proposal.id])  # grace: 6 days to go
    store.approve([proposal.id], ADMIN, now=now)
    forge(store, proposal.id, grace_until=now - timedelta(days=1))  # the notice stays

    result = apply(store, clients, config, now, actor=ADMIN)

    assert "in grace period until" in result.not_eligible[proposal.id]
    assert (now + timedelta(days=6)).isoformat() in result.not_eligible[proposal.id]
    assert digest in seeder.live_digests(repo)


def test_a_notice_must_fall_within_the_run_that_sent_it(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    sent, sent_repo, sent_digest = stale(seeder, store, config, now, "suporte/sent")
    after, after_repo, after_digest = stale(seeder, store, config, now, "suporte/after")
    weekly = store.record_run("weekly", started_at=now - timedelta(days=8, hours=1))
    store.finish_run(weekly, "ok", finished_at=now - timedelta(days=8) + timedelta(minutes=5))
    store.mark_notified(now - timedelta(days=8), ids=[sent.id], run_id=weekly)
    # a notice naming that run, a day after it had finished
    store.mark_notified(now - timedelta(days=7, hours=1), ids=[after.id], run_id=weekly)
    store.approve([sent.id, after.id], ADMIN, now=now)

    result = apply(store, clients, config, now, actor=ADMIN)

    assert result.states[sent.id][0] == "applied"
    assert sent_digest not in seeder.live_digests(sent_repo)
    assert f"names run(s) {weekly}" in result.not_eligible[after.id]
    assert after_digest in seeder.live_digests(after_repo)
    trail = store.notices([sent.id])[sent.id]
    assert [(n.run_id, n.at) for n in trail] == [(weekly, now - timedelta(days=8))]


def test_a_grace_date_without_a_notice_deletes_nothing(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    proposal, repo, digest = stale(seeder, store, config, now, "suporte/half")
    store.approve([proposal.id], ADMIN, now=now)
    forge(store, proposal.id, grace_until=now - timedelta(days=1))  # notified_at stays NULL

    result = apply(store, clients, config, now, actor=ADMIN)

    assert "one is set without the other" in result.not_eligible[proposal.id]
    assert digest in seeder.live_digests(repo)
