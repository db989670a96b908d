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
