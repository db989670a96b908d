"""plan(): findings → proposals (pure), tested with hand-made findings."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

from hygiene.inventory import Inventory, RunInfo, build_images, build_repositories
from hygiene.model import Action, Finding, FixSafety, Severity
from hygiene.plan import plan
from tests.apply.registry import OCI_INDEX, OCI_MANIFEST, Evaluation

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ACCOUNT, REGION = "851296927411", "us-east-1"
D = {name: "sha256:" + (name * 64)[:64] for name in "abcdefgh"}


def image(repo: str, digest: str, tags=(), media=OCI_MANIFEST, children=(), pulled=None):
    return {
        "account": ACCOUNT,
        "region": REGION,
        "repository": repo,
        "namespace": repo.split("/")[0] if "/" in repo else None,
        "digest": digest,
        "tags": list(tags),
        "pushed_at": NOW - timedelta(days=300),
        "last_pull": pulled,
        "size_bytes": 2_000_000,
        "manifest_media_type": media,
        "child_digests": list(children),
    }


def repo(name: str, **extra):
    return {
        "account": ACCOUNT,
        "region": REGION,
        "name": name,
        "namespace": name.split("/")[0] if "/" in name else None,
        "created_at": NOW - timedelta(days=400),
        "tag_mutability": "MUTABLE",
        "scan_on_push": False,
        **extra,
    }


def inventory(images, repositories) -> Inventory:
    frame = build_images(images)
    return Inventory(frame, build_repositories(repositories, frame), RunInfo("r", NOW))


def finding(code, repository, digest=None, unit=None, safety=None, **details) -> Finding:
    if unit is not None:
        details["unit"] = unit
    return Finding(
        code=code,
        rule=code.lower(),
        severity=Severity.WARNING,
        account=ACCOUNT,
        region=REGION,
        repository=repository,
        namespace=repository.split("/")[0] if "/" in repository else None,
        message=code,
        fix="",
        image_digest=digest,
        details=details,
        fix_safety=safety
        or (FixSafety.SAFE if code in ("IM001", "IM004", "SC001") else FixSafety.UNSAFE),
    )


def test_one_delete_proposal_per_repository_and_safety(config) -> None:
    inv = inventory(
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
        finding("IM002", "suporte/api", D["a"], [D["a"]]),
        finding("IM001", "suporte/api", D["b"], [D["b"]]),
        finding("IM002", "suporte/api", D["b"], [D["b"]]),  # also safe: goes the safe way
        finding("IM003", "suporte/api", D["c"], [D["c"], D["d"]]),
        finding("IM002", "suporte/api", D["d"], [D["c"], D["d"]]),
        finding("IM002", "ml/train", D["e"], [D["e"]]),
    ]
    proposals = plan(Evaluation(findings), inv, config, NOW)
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
    findings = [finding("IM002", "suporte/api", D["a"], [D["a"]])]
    first = plan(Evaluation(findings), inventory(images, [repo("suporte/api")]), config, NOW)
    again = plan(
        Evaluation(findings),
        inventory(images, [repo("suporte/api")]),
        config,
        NOW + timedelta(days=1),
    )
    assert [p.id for p in first] == [p.id for p in again]
    pulled = [image("suporte/api", D["a"], pulled=NOW - timedelta(days=95))]
    changed = plan(Evaluation(findings), inventory(pulled, [repo("suporte/api")]), config, NOW)
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
    inv = inventory([], [repo("suporte/empty"), repo("suporte/api", repository_policy=policy)])
    findings = [
        finding("RP001", "suporte/empty"),
        finding("SC001", "suporte/api"),
        finding(
            "SC002",
            "suporte/api",
            exclusion_filters=["latest", "main"],
            current="MUTABLE",
            suggested="IMMUTABLE_WITH_EXCLUSION",
        ),
        finding("SC004", "suporte/api"),
        finding("NS001", "suporte/api", safety=FixSafety.MANUAL),  # manual: no proposal
    ]
    proposals = {p.action: p for p in plan(Evaluation(findings), inv, config, NOW)}
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
    inv = inventory(
        [image("suporte/api", D["a"]), image("suporte/web", D["b"])],
        [repo("suporte/api", scan_error="AccessDenied"), repo("suporte/web")],
    )
    findings = [
        finding("IM002", "suporte/api", D["a"], [D["a"]]),
        finding("IM002", "suporte/web", D["b"], [D["b"]]),
    ]
    assert [p.repository for p in plan(Evaluation(findings), inv, config, NOW)] == ["suporte/web"]


def test_same_digests_in_two_regions_are_two_proposals(config) -> None:
    west = dict(image("suporte/api", D["a"]), region="us-west-2")
    inv = inventory(
        [image("suporte/api", D["a"]), west],
        [repo("suporte/api"), dict(repo("suporte/api"), region="us-west-2")],
    )
    findings = [
        finding("IM002", "suporte/api", D["a"], [D["a"]]),
        dataclasses.replace(finding("IM002", "suporte/api", D["a"], [D["a"]]), region="us-west-2"),
    ]
    proposals = plan(Evaluation(findings), inv, config, NOW)
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
    inv = inventory([], [repo("suporte/api", repository_policy=policy)])
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
    (proposal,) = plan(Evaluation([finding("SC004", "suporte/api", **described)]), inv, config, NOW)
    assert proposal.target == {"statements": [statements[1]]}
    invalid = finding("SC004", "suporte/api", statements=[], invalid=True)
    assert plan(Evaluation([invalid]), inv, config, NOW) == []
