"""Realistic report input built the way the nightly job builds it: an inventory from
collector-like records, findings/kept/proposals as the rules engine and plan emit them
(``to_json`` of the model types), and a store history of earlier runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hygiene.inventory import Inventory, RunInfo, ScanError
from hygiene.messages import message, message_json
from hygiene.model import Action, Finding, FixSafety, KeptImage, Proposal, ProposalState, Severity
from hygiene.report.data import (
    ApplyOutcome,
    DeliveryFailure,
    HistoryRun,
    ReportData,
    build_report_data,
)
from hygiene.rules import RULES, compliance, images, naming, tags
from hygiene.rules.muting import MUTE_ENTRY, MUTE_EXPIRED
from tests import builders
from tests.builders import ACCOUNT, GIB, MIB, NOW, REGION

HOSTILE = '<script>alert("x")</script>\'&'


def digest(n: int) -> str:
    return builders.digest_of(f"image-{n}")


REPOS: list[tuple[str, int, int]] = [
    # name, images, size per image (bytes)
    ("suporte/cloud/api", 6, 310 * MIB),
    ("suporte/services/ldap", 3, 95 * MIB),
    ("suporte-cloud/monitor", 2, 120 * MIB),
    ("ml/training", 5, 4 * GIB),
    ("ml/notebooks", 2, 1536 * MIB),
    ("eureca/web", 4, 210 * MIB),
    ("nginx", 1, 60 * MIB),
]


def inventory(*, incomplete: bool = False) -> Inventory:
    images: list[dict[str, Any]] = []
    n = 0
    for name, count, size in REPOS:
        for i in range(count):
            n += 1
            images.append(
                builders.image_row(
                    digest(n),
                    name,
                    tags=[f"v1.{i}.0"] if i % 2 == 0 else [],
                    pushed_days_ago=3 + 60 * i,
                    size=size,
                )
            )
    repos = [
        builders.ecr_default_repository(
            name,
            scan_error="AccessDenied on ListImages"
            if incomplete and name == "eureca/web"
            else None,
        )
        for name, _, _ in REPOS
    ]
    errors = (
        [ScanError(REGION, "eureca/web", "ListImages", "AccessDenied: not authorised")]
        if incomplete
        else []
    )
    run = RunInfo(
        id="r-20261128-0300",
        started_at=NOW - timedelta(minutes=5),
        finished_at=NOW,
        errors=errors,
        source="embedded",
    )
    return builders.inventory(images, repos, run=run)


def findings() -> list[Finding]:
    """Findings as the rules give them: each rule's message template and parameters, and
    the rule's own fix (reports translate both)."""
    return [
        builders.finding(
            code="NS003",
            repository=None,
            namespace="suporte-cloud",
            message=message(
                naming.FRAGMENT,
                namespace="suporte-cloud",
                project="suporte",
                kind=message(naming.FRAGMENT_KINDS["team/suffix variant"]),
                repositories=1,
                prefix="suporte/cloud",
            ),
            fix=RULES["NS003"].fix,
            details={
                "project": "suporte",
                "namespaces": ["suporte-cloud"],
                "rename_map": {"suporte-cloud/monitor": "suporte/cloud/monitor"},
                "steps": [
                    message(step, registry=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com").to_json()
                    if "%(registry)s" in step
                    else message(step).to_json()
                    for step in naming.COPY_STEPS
                ],
            },
        ),
        builders.finding(
            code="NS001",
            severity=Severity.ERROR,
            repository="nginx",
            namespace=None,
            message=message(naming.OUTSIDE, name="nginx"),
            fix=RULES["NS001"].fix,
        ),
        builders.finding(
            code="IM002",
            severity=Severity.WARNING,
            repository="ml/training",
            namespace="ml",
            message=message(images.NEVER_PULLED, pushed=240, threshold=90),
            fix=RULES["IM002"].fix,
            digest=digest(13),
            tags=("v1.4.0",),
            bytes=4 * GIB,
        ),
        builders.finding(
            code="IM003",
            repository="ml/training",
            namespace="ml",
            message=message(images.EXCESS, total=5, limit=4, rank=5),
            fix=RULES["IM003"].fix,
            digest=digest(13),
            tags=("v1.4.0",),
            bytes=4 * GIB,
        ),
        builders.finding(
            code="IM001",
            repository="suporte/cloud/api",
            namespace="suporte",
            message=message(images.UNTAGGED_IMAGE, age=60, threshold=7),
            fix=RULES["IM001"].fix,
            digest=digest(2),
            bytes=310 * MIB,
        ),
        builders.finding(
            code="SC001",
            severity=Severity.WARNING,
            repository="ml/notebooks",
            namespace="ml",
            message=message(compliance.SCAN_DISABLED),
            fix=RULES["SC001"].fix,
        ),
        builders.finding(
            code="TG002",
            repository="eureca/web",
            namespace="eureca",
            message=message(tags.FLOATING_ALONE, tag=HOSTILE),
            fix=RULES["TG002"].fix,
            tags=(HOSTILE,),
        ),
    ]


def kept() -> list[KeptImage]:
    return [
        KeptImage(
            ACCOUNT, REGION, "ml/training", digest(11), ("v1.0.0",), ("protected-tag:prod*",)
        ),
        KeptImage(
            ACCOUNT, REGION, "ml/training", digest(12), (), ("child-of-kept-index", "newest-3")
        ),
        KeptImage(
            ACCOUNT, REGION, "suporte/cloud/api", digest(1), ("v1.0.0",), ("pulled-recently",)
        ),
        KeptImage(ACCOUNT, REGION, "suporte/cloud/api", digest(3), (), ("mutelisted", "in-use")),
    ]


def _proposal(
    action: Action,
    repository: str,
    digests: list[str],
    state: ProposalState,
    size: int,
    safety: FixSafety = FixSafety.UNSAFE,
    codes: tuple[str, ...] = ("IM002",),
    tags: list[str] | None = None,
    pulled_days_ago: int | None = None,
) -> Proposal:
    """A proposal with the evidence plan() records: for deletions, every image with its
    tags, push and pull times and size."""
    evidence: dict[str, Any] = {"rule_codes": list(codes)}
    if action == Action.DELETE_IMAGES:
        evidence = {
            "images": [
                {
                    "digest": d,
                    "tags": sorted(tags or []) if i == 0 else [],
                    "pushed_at": (NOW - timedelta(days=200 + 30 * i)).isoformat(),
                    "last_pull": None
                    if pulled_days_ago is None
                    else (NOW - timedelta(days=pulled_days_ago)).isoformat(),
                    "bytes": size // len(digests),
                    "is_index": False,
                }
                for i, d in enumerate(digests)
            ],
            "units": [[d] for d in digests],
            "rule_codes": {d: list(codes) for d in digests},
        }
    if action == Action.PUT_LIFECYCLE_POLICY:  # what plan_lifecycle records: its preview
        evidence = {
            "current_policy": None,
            "preview": {"images": len(digests), "bytes": size, "digests": digests},
        }
    return builders.proposal(
        action,
        repository,
        target={"policy": "{}"}
        if action == Action.PUT_LIFECYCLE_POLICY
        else {"digests": digests}
        if digests
        else {"repository": repository},
        evidence=evidence,
        rule_codes=codes,
        fix_safety=safety,
        bytes=size,
        summary=f"{action.value} in {repository}",
        state=state,
        first_seen=NOW - timedelta(hours=9),
        grace_until=NOW + timedelta(days=7),
    )


def proposals() -> list[Proposal]:
    return [
        _proposal(
            Action.DELETE_IMAGES,
            "ml/training",
            [digest(13)],
            ProposalState.PROPOSED,
            4 * GIB,
            tags=["v1.4.0"],
            pulled_days_ago=240,
        ),
        _proposal(
            Action.DELETE_IMAGES,
            "suporte/cloud/api",
            [digest(2)],
            ProposalState.APPROVED,
            310 * MIB,
            FixSafety.SAFE,
            ("IM001",),
        ),
        _proposal(
            Action.ENABLE_SCAN_ON_PUSH,
            "ml/notebooks",
            [],
            ProposalState.APPLIED,
            0,
            FixSafety.SAFE,
            ("SC001",),
        ),
        _proposal(
            Action.DELETE_IMAGES,
            "eureca/web",
            [digest(20)],
            ProposalState.SKIPPED,
            210 * MIB,
            tags=[HOSTILE],
        ),
        _proposal(  # a lifecycle policy that would expire two images once ECR runs it
            Action.PUT_LIFECYCLE_POLICY,
            "suporte/services/ldap",
            [digest(30), digest(31)],
            ProposalState.PROPOSED,
            64 * MIB,
            codes=("RP002",),
        ),
    ]


def history() -> list[HistoryRun]:
    runs = []
    for day in range(5, 0, -1):
        runs.append(
            HistoryRun(
                id=f"r-202611{28 - day:02d}-0300",
                finished_at=NOW - timedelta(days=day),
                status="incomplete" if day == 3 else "complete",
                images=20 + day,
                bytes=(30 - day) * GIB,
                repositories=7,
                namespace_bytes={"ml": (22 - day) * GIB, "suporte": 2 * GIB, "eureca": GIB},
                findings_by_code={"IM002": 2, "NS001": 1},
                errors=("us-east-1 DescribeImages throttled",) if day == 3 else (),
            )
        )
    return runs


def scan_json(*, incomplete: bool = False) -> dict[str, Any]:
    inv = inventory(incomplete=incomplete)
    return {
        "run": inv.run.to_json(),
        "inventory": inv.summary(),
        "findings": [f.to_json() for f in findings()],
        "kept": [k.to_json() for k in kept()],
        "proposals": [p.to_json() for p in proposals()],
    }


def report_data(*, incomplete: bool = False, with_history: bool = True) -> ReportData:
    return build_report_data(
        scan_json(incomplete=incomplete),
        inventory=inventory(incomplete=incomplete),
        history=history() if with_history else (),
        outcomes=[
            ApplyOutcome(
                proposal_id="p-000000000001",
                state="failed",
                action="delete-images",
                repository="eureca/web",
                namespace="eureca",
                reason="ImageReferencedByManifestList",
                bytes=210 * MIB,
            )
        ],
        delivery_failures=[
            DeliveryFailure(
                "email", "ana.costa@lsd.ufcg.edu.br", "weekly-ml", "SMTP 451 try later", NOW
            )
        ],
        mute_warnings=[
            message_json(
                message(
                    MUTE_EXPIRED,
                    source="rules/default.yaml",
                    entry=message(MUTE_ENTRY, index=0, target="suporte/legacy-*", codes=["IM002"]),
                    expires="2026-10-01",
                    reason="legacy portal, until the migration",
                )
            )
        ],
        now=NOW,
    )
