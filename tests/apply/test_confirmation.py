"""An incomplete scan never feeds an apply: proposals record the scan that confirmed them,
and apply acts only on those confirmed by the latest scan of their repository, when that
scan read the repository completely."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from hygiene.apply import apply
from hygiene.apply.eligibility import confirmation
from hygiene.collect.ecr import collect_inventory
from hygiene.config import CollectSettings, Config
from hygiene.model import Action
from hygiene.scan import evaluate
from hygiene.store import RepositoryScan, Store
from hygiene.store.records import StoredProposal
from hygiene.wiring import persist_with
from tests import builders
from tests.apply.registry import with_apply
from tests.builders import NOW
from tests.faults import FaultProxy

ADMIN = builders.ADMIN
SERIAL = CollectSettings(max_workers=2, max_attempts=1, read_passes=1)  # retries: the clients


def stored(confirmed_at: datetime | None, by: str | None = "nightly-1") -> StoredProposal:
    return StoredProposal(
        proposal=builders.proposal(digests=["a"]),
        last_seen=NOW,
        notified_at=None,
        decided_at=None,
        finished_at=None,
        decided_by=None,
        reason=None,
        outcome=None,
        confirmed_by=by if confirmed_at else None,
        confirmed_at=confirmed_at,
    )


@pytest.mark.parametrize(
    ("confirmed", "scan", "ok", "says"),
    [
        (None, RepositoryScan(), False, "not confirmed by any complete scan"),
        (NOW, RepositoryScan("nightly-1", NOW), True, "confirmed by nightly-1"),
        (
            NOW,
            RepositoryScan(
                "nightly-2",
                NOW + timedelta(days=1),
                "nightly-2",
                NOW + timedelta(days=1),
                "DescribeImages: throttled",
            ),
            False,
            "could not read suporte/api completely (DescribeImages: throttled)",
        ),
        (
            NOW,
            RepositoryScan(
                "nightly-3", NOW + timedelta(days=2), "nightly-2", NOW + timedelta(days=1), "x"
            ),
            False,
            "could not read",  # an incomplete scan after the confirmation: still waiting
        ),
        (
            NOW + timedelta(days=2),
            RepositoryScan(
                "nightly-3", NOW + timedelta(days=2), "nightly-2", NOW + timedelta(days=1), "x"
            ),
            True,
            "confirmed",  # a complete scan after the incomplete one confirmed it again
        ),
        (
            NOW,
            RepositoryScan("nightly-2", NOW + timedelta(days=1)),
            False,
            "not proposed again by the latest scan",  # its finding is gone
        ),
    ],
)
def test_confirmation(confirmed: Any, scan: RepositoryScan, ok: bool, says: str) -> None:
    allowed, why = confirmation(stored(confirmed), scan)
    assert allowed is ok and says in why


def scan_and_store(store: Store, client: Any, config: Config, now: datetime, run_id: str) -> Any:
    """What a nightly job does up to storing its plan (``run_id``: the job's run)."""
    run_id = store.record_run("nightly", run_id=run_id, started_at=now)
    inventory = collect_inventory({"us-east-1": client}, SERIAL, now=now)
    result = evaluate(inventory, config, now)
    persist_with(store)(run_id, inventory, result, result.proposals)
    return inventory, result


def test_safe_proposals_of_an_incomplete_scan_are_never_applied(
    ecr: Any, proxy: FaultProxy, config: Config, tmp_path: Any
) -> None:
    """The reported case: GetRegistryScanningConfiguration fails, so the scan cannot know
    which repositories registry-level scanning covers; it proposes enabling scan on push
    everywhere (safe), and an apply with auto_safe must apply none of it."""
    direct = ecr.client()
    names = [f"suporte/r{i}" for i in range(5)]
    for name in names:
        direct.create_repository(repositoryName=name)  # scan on push off
    direct.put_registry_scanning_configuration(
        scanType="ENHANCED",
        rules=[
            {
                "scanFrequency": "CONTINUOUS_SCAN",
                "repositoryFilters": [{"filter": "suporte/*", "filterType": "WILDCARD"}],
            }
        ],
    )
    auto = with_apply(config, auto_safe=True)
    store = builders.deployed(Store(f"sqlite:///{tmp_path / 'h.db'}"), auto)
    proxy.fail("GetRegistryScanningConfiguration", "500")
    t1 = NOW
    inventory, result = scan_and_store(store, proxy.client(), auto, t1, "nightly-1")

    assert not inventory.run.complete
    sc001 = [p for p in result.proposals if p.action is Action.ENABLE_SCAN_ON_PUSH]
    assert len(sc001) == len(names)  # stored: the owners may still see them
    applied = apply(store, lambda a, r: direct, auto, t1, actor=ADMIN)
    assert applied.states == {}
    for proposal in sc001:
        assert "could not read" in applied.not_eligible[proposal.id]
        assert "GetRegistryScanningConfiguration" in applied.not_eligible[proposal.id]
    assert not any(
        r["imageScanningConfiguration"]["scanOnPush"]
        for r in direct.describe_repositories()["repositories"]
    )

    # the next complete scan sees the registry-level scanning: nothing to propose, and the
    # proposals of the incomplete scan expire
    t2 = NOW + timedelta(days=1)
    inventory, result = scan_and_store(store, direct, auto, t2, "nightly-2")
    assert inventory.run.complete
    assert not [p for p in result.proposals if p.action is Action.ENABLE_SCAN_ON_PUSH]
    assert {store.get(p.id).state.value for p in sc001} == {"expired"}


def test_a_complete_scan_after_an_incomplete_one_confirms_again(
    ecr: Any, proxy: FaultProxy, config: Config, tmp_path: Any
) -> None:
    direct = ecr.client()
    direct.create_repository(repositoryName="suporte/api")
    auto = with_apply(config, auto_safe=True)
    store = builders.deployed(Store(f"sqlite:///{tmp_path / 'h.db'}"), auto)
    scan_and_store(store, direct, auto, NOW, "nightly-1")  # complete: confirmed
    (proposal,) = [s for s in store.proposals() if s.proposal.action is Action.ENABLE_SCAN_ON_PUSH]
    assert proposal.confirmed_by == "nightly-1"
    # the next night DescribeImages of that repository fails: it is not read whole
    proxy.fail("DescribeImages", "500")
    later = NOW + timedelta(hours=24)
    inventory, _ = scan_and_store(store, proxy.client(), auto, later, "nightly-2")
    assert not inventory.run.complete
    waiting = apply(store, lambda a, r: direct, auto, later, actor=ADMIN)
    assert "could not read suporte/api completely" in waiting.not_eligible[proposal.id]

    again = NOW + timedelta(hours=48)
    scan_and_store(store, direct, auto, again, "nightly-3")
    assert store.get(proposal.id).confirmed_by == "nightly-3"
    done = apply(store, lambda a, r: direct, auto, again, actor=ADMIN)
    assert done.states[proposal.id][0] == "applied"
    (repo,) = direct.describe_repositories()["repositories"]
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
