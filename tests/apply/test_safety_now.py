"""A proposal applied *because it is safe* (``apply.auto_safe``, or approved and let past
its grace period as a safe fix) is safe only as far as the deployed rules say so now.

The stored ``fix_safety`` is a column anyone with write access to the store can change.
Apply re-judges every digest of such a proposal: it goes only when a rule whose fix the
deployed configuration declares safe (IM001, IM004) flags it now; a deletion or change
no safe rule makes waits for an approval and its grace period. Real SQLite and
PostgreSQL stores, the embedded registry (moto server).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from hygiene.apply import apply
from hygiene.config import Config
from hygiene.lifecycle import generate_policy
from hygiene.model import Action, FixSafety, ProposalState
from hygiene.plan import plan
from hygiene.store import Store
from tests import builders
from tests.apply.registry import Seeder, with_apply

ADMIN = builders.ADMIN


def forge_safe(store: Store, proposal_id: str) -> None:
    """What a store writer does: mark the proposal's fix safe, nothing else."""
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE proposals SET fix_safety = 'safe' WHERE id = :id"), {"id": proposal_id}
        )
    assert store.get(proposal_id).proposal.fix_safety is FixSafety.SAFE


def test_a_deletion_forged_safe_in_the_store_is_not_applied_without_approval(
    either_store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    store = either_store
    repo = seeder.repo("suporte/api")
    release = seeder.image(repo, tag="v0")  # 200 days, never pulled: IM002 (unsafe) flags it
    recent = {seeder.image(repo, tag=f"v{n}", days_old=n) for n in (1, 2, 3)}
    leftover = seeder.image(repo)  # untagged, 200 days: IM001 (safe) flags it too
    findings = [seeder.finding("IM002", repo, release), seeder.finding("IM001", repo, leftover)]
    proposals = plan(builders.evaluation(findings), seeder.inventory(), config, now)
    unsafe = next(p for p in proposals if p.fix_safety is FixSafety.UNSAFE)
    assert unsafe.target["digests"] == [release]
    auto_safe = with_apply(config, auto_safe=True)
    builders.deployed(store, auto_safe)
    builders.store_proposals(store, proposals, now)
    forge_safe(store, unsafe.id)

    result = apply(store, clients, auto_safe, now, actor=ADMIN)

    assert release in seeder.live_digests(repo)
    assert seeder.live_digests(repo) == {release, *recent}  # the genuine safe one went
    (row,) = [e for e in store.audit_log(proposal_id=unsafe.id) if e.digest == release]
    assert row.outcome == "skipped"
    assert row.detail == (
        "taken as a safe fix, but no rule whose fix is safe flags it "
        "now (IM002 does: it needs an approval and its grace period)"
    )
    assert result.states[unsafe.id][0] == "skipped"
    assert store.get(unsafe.id).proposal.state is ProposalState.SKIPPED


def test_a_safe_proposal_is_still_applied_when_a_safe_rule_flags_it_now(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    """The check keeps what no safe rule flags, not what an unsafe rule flags too: an
    untagged leftover that IM001 (safe) flags goes, whatever else flags it."""
    repo = seeder.repo("ml/trainer")
    leftovers = [seeder.image(repo), seeder.image(repo, days_old=100)]
    findings = [seeder.finding("IM001", repo, d) for d in leftovers]
    (proposal,) = plan(builders.evaluation(findings), seeder.inventory(), config, now)
    assert proposal.fix_safety is FixSafety.SAFE
    auto_safe = with_apply(config, auto_safe=True)
    builders.deployed(store, auto_safe)
    builders.store_proposals(store, [proposal], now)

    result = apply(store, clients, auto_safe, now, actor=ADMIN)

    assert result.states[proposal.id][0] == "applied", result.to_json()
    assert seeder.live_digests(repo) == set()


def test_an_approved_safe_fix_skips_its_grace_only_for_what_a_safe_rule_flags(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    """A safe fix needs no grace period once approved: a proposal forged safe before the
    admin looked would otherwise delete a release the day it is approved."""
    repo = seeder.repo("suporte/web")
    release = seeder.image(repo, tag="v0")
    recent = {seeder.image(repo, tag=f"v{n}", days_old=n) for n in (1, 2, 3)}
    (proposal,) = plan(
        builders.evaluation([seeder.finding("IM002", repo, release)]),
        seeder.inventory(),
        config,
        now,
    )
    builders.deployed(store, config)
    builders.store_proposals(store, [proposal], now)
    forge_safe(store, proposal.id)
    store.approve([proposal.id], ADMIN, now=now)  # never notified: no grace date

    result = apply(store, clients, config, now, actor=ADMIN)

    assert seeder.live_digests(repo) == {release, *recent}
    assert result.states[proposal.id][0] == "skipped"
    (row,) = [e for e in store.audit_log(proposal_id=proposal.id) if e.digest == release]
    assert "no rule whose fix is safe flags it now (IM002 does" in row.detail


@pytest.mark.parametrize(
    ("action", "target", "evidence"),
    [
        (Action.DELETE_REPOSITORY, {"repository": "suporte/empty"}, {"images": []}),
        (Action.PUT_LIFECYCLE_POLICY, {"policy": "generated"}, {"current_policy": None}),
    ],
)
def test_a_repository_change_no_safe_rule_makes_is_not_applied_as_a_safe_fix(
    store: Store,
    seeder: Seeder,
    clients: Any,
    config: Config,
    now: datetime,
    action: Action,
    target: dict[str, Any],
    evidence: dict[str, Any],
) -> None:
    """No rule whose fix is safe deletes a repository or puts a lifecycle policy: such a
    proposal marked safe in the store is not applied under ``auto_safe``."""
    repo = seeder.repo("suporte/empty")
    if target.get("policy") == "generated":  # the one policy apply would put
        target = {"policy": generate_policy(config, repository=repo).text}
    proposal = builders.proposal(
        action,
        repo,
        target=target,
        evidence=evidence,
        rule_codes=("RP001",),
        fix_safety=FixSafety.UNSAFE,
        account=seeder.account,
    )
    auto_safe = with_apply(config, auto_safe=True)
    builders.deployed(store, auto_safe)
    builders.store_proposals(store, [proposal], now)
    forge_safe(store, proposal.id)

    result = apply(store, clients, auto_safe, now, actor=ADMIN)

    assert proposal.id not in result.states
    assert result.not_eligible[proposal.id] == (
        f"marked safe, but no rule whose fix is safe proposes {action.value}: it needs an "
        "approval and its grace period"
    )
    (row,) = store.audit_log(proposal_id=proposal.id)
    assert row.outcome == "unverified" and row.detail == result.not_eligible[proposal.id]
    assert store.get(proposal.id).proposal.state is ProposalState.PROPOSED
    client = seeder.ecr.client()
    assert client.describe_repositories(repositoryNames=[repo])["repositories"]
    with pytest.raises(client.exceptions.LifecyclePolicyNotFoundException):
        client.get_lifecycle_policy(repositoryName=repo)
