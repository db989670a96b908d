"""plan(): findings → proposals (pure), tested with hand-made findings."""

from __future__ import annotations

import json
from datetime import timedelta

from hygiene.model import Action, FixSafety
from hygiene.plan import plan
from tests import builders
from tests.builders import ACCOUNT, NOW, OCI_INDEX, OCI_MANIFEST

D = {name: "sha256:" + (name * 64)[:64] for name in "abcdefgh"}


def image(repo: str, digest: str, tags=(), media=OCI_MANIFEST, children=(), pulled=None):
    return builders.image_row(
        digest,
        repo,
        tags=tags,
        media_type=media,
        children=children,
        pushed_days_ago=300,
        last_pull=pulled,
        size=2_000_000,
    )


repo = builders.ecr_default_repository


def test_one_delete_proposal_per_repository_and_safety(config) -> None:
    inv = builders.inventory(
        [
            image("suporte/api", D["a"], tags=["v1"]),
            image("suporte/api", D["b"]),
            image("suporte/api", D["c"], media=OCI_INDEX, children=[D["d"]], tags=["v2"]),
            image("suporte/api", D["d"]),
            image("ml/train", D["e"], pulled=NOW - timedelta(days=200)),
        ],
        [repo("suporte/api"), repo("ml/train")],
    )
    findings = [
        builders.finding("IM002", "suporte/api", digest=D["a"], unit=[D["a"]]),
        builders.finding("IM001", "suporte/api", digest=D["b"], unit=[D["b"]]),
        builders.finding(
            "IM002", "suporte/api", digest=D["b"], unit=[D["b"]]
        ),  # also safe: goes the safe way
        builders.finding("IM003", "suporte/api", digest=D["c"], unit=[D["c"], D["d"]]),
        builders.finding("IM002", "suporte/api", digest=D["d"], unit=[D["c"], D["d"]]),
        builders.finding("IM002", "ml/train", digest=D["e"], unit=[D["e"]]),
    ]
    proposals = plan(builders.evaluation(findings), inv, config, NOW)
    by = {(p.repository, p.fix_safety): p for p in proposals}
    assert set(by) == {
        ("suporte/api", FixSafety.SAFE),
        ("suporte/api", FixSafety.UNSAFE),
        ("ml/train", FixSafety.UNSAFE),
    }
    safe = by[("suporte/api", FixSafety.SAFE)]
    assert safe.target == {"digests": [D["b"]]}
    assert safe.rule_codes == ("IM001", "IM002")
    unsafe = by[("suporte/api", FixSafety.UNSAFE)]
    assert unsafe.action == Action.DELETE_IMAGES
    assert unsafe.target["digests"] == [D["c"], D["a"], D["d"]]  # the index first
    assert sorted(unsafe.evidence["units"]) == [[D["a"]], sorted([D["c"], D["d"]])]
    evidence = {i["digest"]: i for i in unsafe.evidence["images"]}
    assert evidence[D["a"]]["tags"] == ["v1"]
    assert evidence[D["a"]]["pushed_at"] == (NOW - timedelta(days=300)).isoformat()
    assert evidence[D["c"]]["is_index"] and evidence[D["c"]]["bytes"] == 0
    assert unsafe.evidence["rule_codes"][D["d"]] == ["IM002", "IM003"]
    assert unsafe.bytes == 4_000_000  # a + d; the index counts 0
    ml = by[("ml/train", FixSafety.UNSAFE)]
    assert ml.evidence["images"][0]["last_pull"] == (NOW - timedelta(days=200)).isoformat()
    assert ml.namespace == "ml"


def test_ids_are_deterministic_and_follow_the_evidence(config) -> None:
    images = [image("suporte/api", D["a"])]
    findings = [builders.finding("IM002", "suporte/api", digest=D["a"], unit=[D["a"]])]
    first = plan(
        builders.evaluation(findings),
        builders.inventory(images, [repo("suporte/api")]),
        config,
        NOW,
    )
    again = plan(
        builders.evaluation(findings),
        builders.inventory(images, [repo("suporte/api")]),
        config,
        NOW + timedelta(days=1),
    )
    assert [p.id for p in first] == [p.id for p in again]
    pulled = [image("suporte/api", D["a"], pulled=NOW - timedelta(days=95))]
    changed = plan(
        builders.evaluation(findings),
        builders.inventory(pulled, [repo("suporte/api")]),
        config,
        NOW,
    )
    assert changed[0].id != first[0].id


def test_repository_level_fixes(config) -> None:
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "public",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "ecr:BatchGetImage",
                },
                {
                    "Sid": "own",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "ecr:*",
                },
            ],
        }
    )
    inv = builders.inventory(
        [], [repo("suporte/empty"), repo("suporte/api", repository_policy=policy)]
    )
    findings = [
        builders.finding("RP001", "suporte/empty"),
        builders.finding("SC001", "suporte/api"),
        builders.finding(
            "SC002",
            "suporte/api",
            details={
                "exclusion_filters": ["latest", "main"],
                "current": "MUTABLE",
                "suggested": "IMMUTABLE_WITH_EXCLUSION",
            },
        ),
        builders.finding("SC004", "suporte/api"),
        builders.finding(
            "NS001", "suporte/api", fix_safety=FixSafety.MANUAL
        ),  # manual: no proposal
    ]
    proposals = {p.action: p for p in plan(builders.evaluation(findings), inv, config, NOW)}
    assert set(proposals) == {
        Action.DELETE_REPOSITORY,
        Action.ENABLE_SCAN_ON_PUSH,
        Action.SET_TAG_IMMUTABILITY,
        Action.REMOVE_POLICY_STATEMENT,
    }
    assert proposals[Action.DELETE_REPOSITORY].fix_safety == FixSafety.UNSAFE
    assert proposals[Action.ENABLE_SCAN_ON_PUSH].fix_safety == FixSafety.SAFE
    assert proposals[Action.ENABLE_SCAN_ON_PUSH].evidence["scan_on_push"] is False
    mutability = proposals[Action.SET_TAG_IMMUTABILITY]
    assert mutability.fix_safety == FixSafety.UNSAFE
    assert mutability.target == {
        "tag_mutability": "IMMUTABLE_WITH_EXCLUSION",
        "exclusions": ["latest", "main"],
    }
    assert mutability.evidence["tag_mutability"] == "MUTABLE"
    statement = proposals[Action.REMOVE_POLICY_STATEMENT]
    assert [s["Sid"] for s in statement.target["statements"]] == ["public"]
    assert statement.evidence["policy"] == policy


def test_repositories_not_read_completely_get_no_proposals(config) -> None:
    inv = builders.inventory(
        [image("suporte/api", D["a"]), image("suporte/web", D["b"])],
        [repo("suporte/api", scan_error="AccessDenied"), repo("suporte/web")],
    )
    findings = [
        builders.finding("IM002", "suporte/api", digest=D["a"], unit=[D["a"]]),
        builders.finding("IM002", "suporte/web", digest=D["b"], unit=[D["b"]]),
    ]
    assert [p.repository for p in plan(builders.evaluation(findings), inv, config, NOW)] == [
        "suporte/web"
    ]


def test_same_digests_in_two_regions_are_two_proposals(config) -> None:
    west = dict(image("suporte/api", D["a"]), region="us-west-2")
    inv = builders.inventory(
        [image("suporte/api", D["a"]), west],
        [repo("suporte/api"), repo("suporte/api", region="us-west-2")],
    )
    findings = [
        builders.finding("IM002", "suporte/api", digest=D["a"], unit=[D["a"]], region=region)
        for region in ("us-east-1", "us-west-2")
    ]
    proposals = plan(builders.evaluation(findings), inv, config, NOW)
    assert sorted(p.region for p in proposals) == ["us-east-1", "us-west-2"]
    assert len({p.id for p in proposals}) == 2


def test_policy_statements_described_by_the_rules_engine(config) -> None:
    """SC004 details list {index, sid, principals, actions}; the proposal carries the
    statements themselves so apply can remove exactly those."""
    statements = [
        {
            "Sid": "own",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "ecr:*",
        },
        {
            "Sid": "partner",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
            "Action": "ecr:BatchGetImage",
        },
    ]
    policy = json.dumps({"Version": "2012-10-17", "Statement": statements})
    inv = builders.inventory([], [repo("suporte/api", repository_policy=policy)])
    described = {
        "statements": [
            {
                "index": 1,
                "sid": "partner",
                "principals": ["999999999999"],
                "actions": ["ecr:BatchGetImage"],
            }
        ]
    }
    (proposal,) = plan(
        builders.evaluation([builders.finding("SC004", "suporte/api", details=described)]),
        inv,
        config,
        NOW,
    )
    assert proposal.target == {"statements": [statements[1]]}
    invalid = builders.finding("SC004", "suporte/api", details={"statements": [], "invalid": True})
    assert plan(builders.evaluation([invalid]), inv, config, NOW) == []
