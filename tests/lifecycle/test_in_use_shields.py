"""A proposed lifecycle policy never expires or archives an image in use at scan time
(pure: the plan on hand-made inventories; the embedded-AWS tests are in
tests/workloads/test_lifecycle_in_use.py)."""

from __future__ import annotations

import json
import random
from datetime import datetime
from typing import Any

import pytest

from hygiene.errors import LifecycleError
from hygiene.inventory import RunInfo, SourceStatus
from hygiene.lifecycle import generate_policy, parse_policy, plan_lifecycle, preview_policy
from hygiene.lifecycle.generate import in_use_shield_tags, with_in_use_shields
from hygiene.lifecycle.in_use import in_use_hits, uses_of
from tests import builders
from tests.builders import NOW, digest_of

REPO = "suporte/api"


def config(**lifecycle: Any) -> Any:
    policy = builders.shipped_policy()
    policy["lifecycle"].update({"keep_tagged": [{"patterns": ["*"], "keep": 2}], "overrides": []})
    policy["lifecycle"].update(lifecycle)
    return builders.config(policy)


def inventory(images: list[dict[str, Any]], uses: list[dict[str, Any]], **kw: Any) -> Any:
    return builders.inventory_of(
        images, [{"name": REPO, "lifecycle_policy": None}], in_use=uses, **kw
    )


RELEASES = [
    {"digest": f"r{n}", "repository": REPO, "tags": [f"v{n}"], "pushed_days_ago": 100 - n}
    for n in range(1, 6)
]


def test_a_tag_in_use_gets_a_shield_right_after_the_protected_ones() -> None:
    cfg = config()
    uses = [{"repository": REPO, "tag": "v1", "where": "prod/service/api"}]
    plan = plan_lifecycle(inventory(RELEASES, uses), cfg, NOW)
    [proposal] = plan.proposals
    rules = parse_policy(proposal.target["policy"]).ordered()
    protected = len(cfg.policy.protections.protected_tags)
    assert rules[protected].tag_pattern_list == ("v1",)
    assert rules[protected].rule_priority == protected + 1
    assert rules[protected].count_number == cfg.policy.lifecycle.protected_count_number
    assert rules[protected].description == "hygiene: in use at scan time: tag 'v1': never expired"
    assert sorted(proposal.evidence["preview"]["digests"]) == sorted(
        digest_of(d) for d in ("r2", "r3")
    )
    assert proposal.bytes == 2000
    # without the workload the same plan would expire v1 too
    [bare] = plan_lifecycle(inventory(RELEASES, []), cfg, NOW).proposals
    assert digest_of("r1") in bare.evidence["preview"]["digests"]
    assert "in_use_shielded" not in bare.evidence
    assert bare.id != proposal.id


def test_a_digest_reference_to_a_tagged_image_is_not_a_tag_to_shield() -> None:
    uses = [{"repository": REPO, "digest": "r1", "where": "etl:1", "source": "batch"}]
    plan = plan_lifecycle(inventory(RELEASES, uses), config(), NOW)
    assert plan.proposals == []
    assert plan.skipped == [
        f"{REPO}: the policy would expire 1 image in use that no tag shield can keep (named by "
        f"digest only): {digest_of('r1')[:19]} (v1; in-use:batch:etl:1); no proposal"
    ]


def test_a_platform_manifest_in_use_stops_the_policy_expiring_its_index() -> None:
    images = [
        *RELEASES,
        {"digest": "arm", "repository": REPO, "pushed_days_ago": 300},
        {"digest": "amd", "repository": REPO, "pushed_days_ago": 300},
        {
            "digest": "idx",
            "repository": REPO,
            "tags": ["multi"],
            "children": ["arm", "amd"],
            "pushed_days_ago": 300,
        },
    ]
    uses = [{"repository": REPO, "digest": "arm", "where": "prod/task/multi:1", "running": True}]
    plan = plan_lifecycle(inventory(images, uses), config(), NOW)
    assert plan.proposals == []
    [hit] = plan.in_use_refused[REPO]
    assert hit.digest == digest_of("arm") and hit.shield_tags == ()
    # named by the index's tag instead, the shield keeps the index and both its children
    uses = [{"repository": REPO, "tag": "multi", "where": "prod/task/multi:1"}]
    [proposal] = plan_lifecycle(inventory(images, uses), config(), NOW).proposals
    assert {digest_of(d) for d in ("idx", "arm", "amd")}.isdisjoint(
        proposal.evidence["preview"]["digests"]
    )


def test_an_image_the_archive_rule_would_move_is_shielded_too() -> None:
    cfg = config(
        keep_tagged=[{"patterns": ["*"], "keep": 50}],
        archive={"patterns": ["v*"], "after_days": 30, "count_type": "sinceImagePushed"},
    )
    uses = [{"repository": REPO, "tag": "v2", "where": "prod/service/api"}]
    [proposal] = plan_lifecycle(inventory(RELEASES, uses), cfg, NOW).proposals
    [shielded] = proposal.evidence["in_use_shielded"]
    assert shielded["action"] == "transition" and shielded["shield_tags"] == ["v2"]
    assert digest_of("r2") not in proposal.evidence["preview"]["transitioned_digests"]
    assert len(proposal.evidence["preview"]["transitioned_digests"]) == 4


def test_a_workload_in_another_registry_needs_no_shield() -> None:
    uses = [{"repository": REPO, "tag": "v1", "where": "x", "account": "999999999999"}]
    [proposal] = plan_lifecycle(inventory(RELEASES, uses), config(), NOW).proposals
    assert digest_of("r1") in proposal.evidence["preview"]["digests"]
    uses = [{"repository": REPO, "tag": "v1", "where": "x", "region": "eu-west-1"}]
    [proposal] = plan_lifecycle(inventory(RELEASES, uses), config(), NOW).proposals
    assert digest_of("r1") in proposal.evidence["preview"]["digests"]


def test_no_policy_is_proposed_when_an_in_use_source_failed() -> None:
    run = RunInfo(
        id="t",
        started_at=NOW,
        in_use=[
            SourceStatus("ecs us-east-1", "ecs", "ok"),
            SourceStatus("kubernetes lab", "kubernetes", "failed", "HTTP 500"),
        ],
    )
    plan = plan_lifecycle(inventory(RELEASES, [], run=run), config(), NOW)
    assert plan.proposals == []
    assert plan.skipped == [
        f"{REPO}: in-use source(s) could not be read (kubernetes lab): the policy could "
        "expire an image in use; no proposal"
    ]


def test_the_sources_read_are_evidence() -> None:
    run = RunInfo(id="t", started_at=NOW, in_use=[SourceStatus("ecs us-east-1", "ecs", "ok")])
    [proposal] = plan_lifecycle(inventory(RELEASES, [], run=run), config(), NOW).proposals
    assert proposal.evidence["in_use_checked"] == ["ecs us-east-1"]


def test_shields_that_do_not_fit_stop_the_policy() -> None:
    images = [
        {"digest": f"i{n}", "repository": REPO, "tags": [f"t{n}"], "pushed_days_ago": 200 - n}
        for n in range(60)
    ]
    uses = [{"repository": REPO, "tag": f"t{n}", "where": f"svc-{n}"} for n in range(50)]
    plan = plan_lifecycle(inventory(images, uses), config(), NOW)
    assert plan.proposals == []
    [line] = plan.skipped
    assert "their tag shields do not fit ECR's limits" in line
    assert len(plan.in_use_refused[REPO]) == 50


def test_with_in_use_shields_checks_ecrs_limits_and_skips_covered_tags() -> None:
    generated = generate_policy(config(), repository=REPO)
    same = with_in_use_shields(generated, ["latest", "prod-7"])  # protected already
    assert same.text == generated.text
    with pytest.raises(LifecycleError, match=r"50 rules|at most 50"):
        with_in_use_shields(generated, [f"t{n}" for n in range(45)])
    protected = len(config().policy.protections.protected_tags)
    with pytest.raises(LifecycleError, match="do not fit before rulePriority 100"):
        with_in_use_shields(generated, [f"t{n}" for n in range(100 - protected)])
    shielded = with_in_use_shields(generated, ["b", "a", "a"])
    assert in_use_shield_tags(shielded.text, generated) == ["a", "b"]
    assert in_use_shield_tags(generated.text, generated) == []
    assert in_use_shield_tags("not json", generated) is None


def test_the_tools_own_shielded_policy_is_unchanged_the_next_night() -> None:
    cfg = config()
    uses = [{"repository": REPO, "tag": "v1", "where": "prod/service/api"}]
    [proposal] = plan_lifecycle(inventory(RELEASES, uses), cfg, NOW).proposals
    deployed = builders.inventory_of(
        RELEASES, [{"name": REPO, "lifecycle_policy": proposal.target["policy"]}], in_use=uses
    )
    plan = plan_lifecycle(deployed, cfg, NOW, replace_existing=True)
    assert plan.unchanged == [REPO] and plan.proposals == []
    # a shield with a wildcard is not the tool's: replaced when asked, kept otherwise
    data = json.loads(proposal.target["policy"])
    data["rules"][len(cfg.policy.protections.protected_tags)]["selection"]["tagPatternList"] = [
        "v*"
    ]
    other = builders.inventory_of(
        RELEASES, [{"name": REPO, "lifecycle_policy": json.dumps(data)}], in_use=uses
    )
    assert plan_lifecycle(other, cfg, NOW).kept_existing == [REPO]


def test_shielded_previews_never_touch_an_image_in_use_random_registries() -> None:
    """Random releases, untagged images and workloads: every proposal's preview leaves
    each image in use alone, and a repository without a proposal has an image in use
    named by digest only."""
    rng = random.Random(11)
    cfg = config()
    now: datetime = NOW
    for _ in range(40):
        images = []
        for n in range(rng.randint(1, 12)):
            tags = [f"v{n}"] if rng.random() < 0.7 else []
            images.append(
                {
                    "digest": f"x{n}",
                    "repository": REPO,
                    "tags": tags,
                    "pushed_days_ago": rng.randint(1, 400),
                }
            )
        uses = []
        for image in rng.sample(images, rng.randint(0, len(images))):
            if image["tags"] and rng.random() < 0.8:
                uses.append({"repository": REPO, "tag": image["tags"][0], "where": "w"})
            else:
                uses.append({"repository": REPO, "digest": image["digest"], "where": "d"})
        inv = inventory(images, uses)
        plan = plan_lifecycle(inv, cfg, now)
        refs = uses_of(inv.in_use, builders.ACCOUNT, builders.REGION, REPO)
        for proposal in plan.proposals:
            preview = preview_policy(proposal.target["policy"], inv.images, now=now)
            assert in_use_hits(preview, refs) == []
            assert sorted(preview.expired_digests) == sorted(
                proposal.evidence["preview"]["digests"]
            )
        if not plan.proposals:
            assert any(not h.shield_tags for h in plan.in_use_refused[REPO])


def test_an_archived_image_in_use_that_a_shield_cannot_keep_stops_the_policy() -> None:
    """The shields select the standard storage class: an archived image in use that the
    archive-expiry rule would expire is still expired with them, and the re-preview of
    the shielded policy stops the proposal."""
    cfg = config(expire_archived_after_days=90)
    images = [
        *RELEASES[2:],
        {
            "digest": "cold",
            "repository": REPO,
            "tags": ["v0"],
            "pushed_days_ago": 400,
            "status": "ARCHIVED",
            "archived_days_ago": 200,
        },
    ]
    uses = [{"repository": REPO, "tag": "v0", "where": "prod/service/cold"}]
    plan = plan_lifecycle(inventory(images, uses), cfg, NOW)
    assert plan.proposals == []
    assert plan.skipped == [
        f"{REPO}: the policy would expire 1 image in use even with tag shields: "
        f"{digest_of('cold')[:19]} (v0; in-use:ecs:prod/service/cold); no proposal"
    ]
