"""scan.plan_all: lifecycle policies are proposed exactly for the repositories RP002 flags."""

from __future__ import annotations

from datetime import datetime

from hygiene.config import Config
from hygiene.inventory import Inventory
from hygiene.model import Action
from hygiene.scan import evaluate_rules, plan_all
from hygiene_demo.lab import plan_lab_registry
from tests import builders


def _lab_inventory(config: Config, now: datetime) -> Inventory:
    manifest = plan_lab_registry(config.projects, now)
    return builders.seeded_inventory(manifest, run_id="r-test", now=now)


def test_lifecycle_proposals_follow_rp002(config: Config, now: datetime) -> None:
    inventory = _lab_inventory(config, now)
    evaluation = evaluate_rules(inventory, config, now)
    flagged = {f.repository for f in evaluation.findings if f.code == "RP002"}
    proposals = plan_all(evaluation, inventory, config, now)
    lifecycle = [p for p in proposals if p.action is Action.PUT_LIFECYCLE_POLICY]
    assert flagged and {p.repository for p in lifecycle} <= flagged
    # every flagged repository gets one, except those the generator keeps out (opt-out)
    missing = flagged - {p.repository for p in lifecycle}
    opted_out = set(
        inventory.repositories.loc[
            inventory.repositories["resource_tags"].map(lambda t: t.get("hygiene:keep") == "true"),
            "name",
        ]
    )
    assert missing <= opted_out
    assert len({p.id for p in proposals}) == len(proposals)  # no id collisions

    ignoring = config.model_copy(
        update={
            "policy": config.policy.model_copy(
                update={
                    "selection": config.policy.selection.model_copy(update={"ignore": ["RP002"]})
                }
            )
        }
    )
    quiet = evaluate_rules(inventory, ignoring, now)
    assert not any(
        p.action is Action.PUT_LIFECYCLE_POLICY for p in plan_all(quiet, inventory, ignoring, now)
    )


def test_lifecycle_proposals_of_some_flagged_repositories_are_theirs_alone() -> None:
    """Half of the RP002 findings dropped (as a mute or an ignore would): the proposals
    are for the other half only, and each is the one planned on an inventory holding
    only the flagged repositories and their images."""
    from types import SimpleNamespace

    from benchmarks.rules import NOW, bench_config, synthetic_inventory
    from hygiene.findingtable import Findings
    from hygiene.lifecycle import propose
    from hygiene.plancolumns import in_keys

    inventory = synthetic_inventory(6_000, 60)
    config = bench_config()
    evaluation = evaluate_rules(inventory, config, NOW)
    found = evaluation.findings
    assert isinstance(found, Findings)
    rp002 = [f for f in found.other if f.code == "RP002"]
    kept = rp002[::2]
    others = [f for f in found.other if f.code != "RP002"]
    fewer = SimpleNamespace(findings=Findings(found.image, others + kept))
    lifecycle = [
        p
        for p in plan_all(fewer, inventory, config, NOW)  # type: ignore[arg-type]
        if p.action is Action.PUT_LIFECYCLE_POLICY
    ]
    flagged = {(f.account, f.region, f.repository) for f in kept}
    assert len(rp002) > 10 and lifecycle
    assert {(p.account, p.region, p.repository) for p in lifecycle} <= flagged
    images, repositories = inventory.images, inventory.repositories
    alone = Inventory(
        images=images[in_keys(images, "repository", flagged)],
        repositories=repositories[in_keys(repositories, "name", flagged)],
        run=inventory.run,
    )
    expected = sorted(propose(alone, config, NOW), key=lambda p: p.repository)
    assert [p.to_json() for p in lifecycle] == [p.to_json() for p in expected]
