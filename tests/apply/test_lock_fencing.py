"""Apply stops before changing the registry once its run no longer holds the registry
lock (taken over while the run was frozen, or its PostgreSQL session dropped): what it
did so far is recorded, nothing more is deleted or written."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text, update

from hygiene.apply import apply
from hygiene.config import Config
from hygiene.errors import LockLostError
from hygiene.model import Action, ProposalState
from hygiene.store import Store
from hygiene.store.models import LockRow
from tests import builders
from tests.apply.registry import Seeder, with_apply
from tests.apply.test_apply_moto import ADMIN, _repo_proposal, approve_past_grace, propose


class StealingClient:
    """A real client; after the first ``batch_delete_image`` (or before any write of a
    repository setting), ``steal`` runs: another run takes the lock over."""

    def __init__(self, client: Any, steal: Any) -> None:
        self.client, self.steal = client, steal
        self.deletes: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def batch_delete_image(self, **kwargs: Any) -> Any:
        self.deletes.append([i["imageDigest"] for i in kwargs["imageIds"]])
        response = self.client.batch_delete_image(**kwargs)
        if len(self.deletes) == 1:
            self.steal()
        return response

    def describe_repositories(self, **kwargs: Any) -> Any:
        response = self.client.describe_repositories(**kwargs)
        self.steal()  # the re-read before a repository write: taken over right after
        return response


def _taken_over_on_sqlite(url: str) -> Any:
    def steal() -> None:
        other = Store(url)
        with other.session() as session:
            session.execute(
                update(LockRow)
                .where(LockRow.name == "registry")
                .values(holder="cron@worker-3 pid 99", host="worker-3", pid=99)
            )
        other.close()

    return steal


def _session_cut_on_postgres(url: str) -> Any:
    def steal() -> None:
        other = Store(url)
        with other.engine.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted"
                )
            )
        other.close()

    return steal


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def lost_lock(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """(store, what takes its lock away) on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fenced.db'}"
        store = Store(url)
        yield store, _taken_over_on_sqlite(url)
    else:
        url = request.getfixturevalue("postgres_server").create_database()
        store = Store(url)
        yield store, _session_cut_on_postgres(url)
    store.close()


def test_apply_stops_deleting_once_its_lock_is_lost(
    lost_lock: Any, seeder: Seeder, ecr: Any, config: Config, now: datetime
) -> None:
    store, steal = lost_lock
    config = with_apply(config, batch_size=2)
    repo = seeder.repo("suporte/api")
    digests = [seeder.image(repo) for _ in range(6)]
    (proposal,) = propose(
        store, seeder, config, now, [seeder.finding("IM002", repo, d) for d in digests]
    )
    approve_past_grace(store, [proposal], now)
    client = StealingClient(ecr.client(), steal)
    client.describe_repositories = ecr.client().describe_repositories  # type: ignore[method-assign]

    with pytest.raises(LockLostError):
        apply(store, lambda a, r: client, config, now, actor=ADMIN)

    (first,) = client.deletes  # one batch went before the lock was lost; no other
    assert seeder.live_digests(repo) == set(digests) - set(first)
    intents = store.audit_log(proposal_id=proposal.id, outcome="intent")
    assert [i.data["digests"] for i in intents] == [first]  # no intent for a batch not sent
    assert sorted(e.digest for e in store.audit_log(outcome="deleted")) == sorted(first)
    assert store.open_intents() == []
    assert store.get(proposal.id).state == ProposalState.APPROVED  # the rest: next time
    run = store.runs(last=1, kind="apply")[0]
    errors = " ".join(run.errors)
    assert run.status == "failed"
    # SQLite: the row is another run's; PostgreSQL: the lock's session is gone
    assert "no longer holds it" in errors or "cannot tell whether this run still holds" in errors


def test_apply_changes_no_repository_setting_once_its_lock_is_lost(
    lost_lock: Any, seeder: Seeder, ecr: Any, config: Config, now: datetime
) -> None:
    store, steal = lost_lock
    repo = seeder.repo("suporte/api")
    proposal = _repo_proposal(
        seeder, Action.ENABLE_SCAN_ON_PUSH, repo, {"scan_on_push": True}, {"scan_on_push": False}
    )
    builders.deployed(store, config)
    builders.store_proposals(store, [proposal], now)
    approve_past_grace(store, [proposal], now)
    client = StealingClient(ecr.client(), steal)

    with pytest.raises(LockLostError):
        apply(store, lambda a, r: client, config, now, actor=ADMIN)

    (live,) = ecr.client().describe_repositories(repositoryNames=[repo])["repositories"]
    assert live["imageScanningConfiguration"]["scanOnPush"] is False
    assert store.audit_log(proposal_id=proposal.id, outcome="intent") == []
    assert store.get(proposal.id).state == ProposalState.APPROVED
