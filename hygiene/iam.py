"""Declared IAM permissions, and the three IAM policies generated from them.

Every collector call and every apply action declares the IAM actions it needs, as Cloud
Custodian's filters and actions do. ``hygiene iam policy --role scanner|cleaner|discovery``
turns the declarations into a policy: the *scanner* gets the read-only ones (it runs
scans, reports and notifications), the *cleaner* adds the writes apply needs, and
*discovery* is what a role in another account must allow for in-use discovery
(``in_use.assume_roles``: its ECS, EventBridge, Lambda and Batch reads). The committed
policies in ``cron/iam/`` are tested to equal the generated ones, and the test suite
records every AWS operation the code calls (botocore ``before-call`` hooks, see
``tests/iam_recorder.py``) and fails if one is not declared here.

A module that makes a new AWS call adds its declaration with :func:`declare` — here, so
the generated policy does not depend on which modules happen to be imported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

Role = Literal["scanner", "cleaner", "discovery"]
ROLES: tuple[Role, ...] = ("scanner", "cleaner", "discovery")
DISCOVERY = "collect.in-use."  # components the discovery role (other accounts) needs


class Access(StrEnum):
    READ = "read"  # the scanner role may do it
    WRITE = "write"  # only the cleaner role may do it


@dataclass(frozen=True)
class Permission:
    component: str  # who needs it, e.g. "collect.images", "apply.delete-images"
    action: str  # IAM action, e.g. "ecr:DescribeImages"
    access: Access
    reason: str = ""


_DECLARED: list[Permission] = []


def declare(component: str, *actions: str, access: Access = Access.READ, reason: str = "") -> None:
    """Record that ``component`` calls ``actions`` (``service:Operation`` IAM names)."""
    for action in actions:
        service, sep, operation = action.partition(":")
        if not sep or not service or not operation or not operation[0].isupper():
            raise ValueError(f"not an IAM action name: {action!r}")
        permission = Permission(component, action, access, reason)
        if permission not in _DECLARED:
            _DECLARED.append(permission)


def declarations() -> list[Permission]:
    return list(_DECLARED)


def _discovery(permission: Permission) -> bool:
    return permission.component.startswith(DISCOVERY) and permission.action != "sts:AssumeRole"


def declared_actions(role: Role = "cleaner") -> set[str]:
    """IAM actions the role is granted: scanner = reads, cleaner = reads + writes,
    discovery = the in-use reads a role in another account must allow."""
    if role == "discovery":
        return {p.action for p in _DECLARED if _discovery(p)}
    allowed = {Access.READ} if role == "scanner" else {Access.READ, Access.WRITE}
    return {p.action for p in _DECLARED if p.access in allowed}


def undeclared(operations: Iterable[str]) -> list[str]:
    """The recorded ``service:Operation`` names no declaration covers."""
    known = declared_actions("cleaner")
    return sorted({op for op in operations if op not in known})


# --------------------------------------------------------------------------- declarations
R, W = Access.READ, Access.WRITE

declare("identity", "sts:GetCallerIdentity", reason="account id; approver identity")
declare(
    "collect.repositories",
    "ecr:DescribeRepositories",
    "ecr:ListTagsForResource",
    "ecr:GetLifecyclePolicy",
    "ecr:GetRepositoryPolicy",
    reason="repository settings, resource tags, lifecycle and repository policies",
)
declare("collect.registry", "ecr:DescribeRegistry", "ecr:GetRegistryScanningConfiguration")
declare(
    "collect.images",
    "ecr:DescribeImages",
    "ecr:ListImages",
    "ecr:BatchGetImage",
    reason="image details; index manifests for children; live re-check before apply",
)
declare("collect.referrers", "ecr:ListImageReferrers", reason="OCI 1.1 referrers")
# In-use discovery (hygiene.collect.workloads, docs/in-use.md): also what the role
# assumed in another account needs (the "discovery" policy).
declare(
    "collect.in-use.ecs",
    "ecs:ListClusters",
    "ecs:ListTasks",
    "ecs:DescribeTasks",
    "ecs:ListServices",
    "ecs:DescribeServices",
    "ecs:DescribeTaskDefinition",
    reason="running tasks, services' deployments and the task definitions they run",
)
declare(
    "collect.in-use.ecs",
    "events:ListEventBuses",
    "events:ListRuleNamesByTarget",
    "events:ListTargetsByRule",
    reason="scheduled tasks: EventBridge rules whose target is a cluster",
)
declare(
    "collect.in-use.lambda",
    "lambda:ListFunctions",
    "lambda:ListAliases",
    "lambda:GetFunction",
    reason="every version and alias of container-image functions",
)
declare("collect.in-use.batch", "batch:DescribeJobDefinitions", reason="ACTIVE job definitions")
declare(
    "collect.in-use.accounts",
    "sts:AssumeRole",
    reason="in_use.assume_roles: workloads in other accounts",
)
declare(
    "lifecycle.preview",
    "ecr:StartLifecyclePolicyPreview",
    "ecr:GetLifecyclePolicyPreview",
    reason="ECR's own preview of a proposed lifecycle policy (changes nothing)",
)
declare("notify.ses", "ses:SendRawEmail", "ses:SendEmail", reason="reports by Amazon SES")

declare("apply.delete-images", "ecr:BatchDeleteImage", access=W)
declare("apply.delete-repository", "ecr:DeleteRepository", access=W)
declare("apply.put-lifecycle-policy", "ecr:PutLifecyclePolicy", access=W)
declare("apply.enable-scan-on-push", "ecr:PutImageScanningConfiguration", access=W)
declare("apply.set-tag-immutability", "ecr:PutImageTagMutability", access=W)
declare(
    "apply.remove-policy-statement",
    "ecr:SetRepositoryPolicy",
    "ecr:DeleteRepositoryPolicy",
    access=W,
    reason="rewrite the policy without the statement; delete it when none is left",
)


# --------------------------------------------------------------------------- policies


def policy_document(role: Role, account: str | None = None, region: str | None = None) -> dict:
    """The IAM policy for ``role``. Writes are limited to repositories of ``account``
    (and ``region``) when given; reads use ``*`` (listing needs it)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    chosen = _discovery if role == "discovery" else (lambda p: p.access is Access.READ)
    reads = sorted(p.action for p in _DECLARED if chosen(p))
    statements: list[dict[str, Any]] = []
    by_service: dict[str, list[str]] = {}
    for action in dict.fromkeys(reads):
        by_service.setdefault(action.split(":")[0], []).append(action)
    sids = {
        "ecr": "ReadRegistry",
        "sts": "Identity",
        "ses": "SendReports",
        "ecs": "ReadEcsWorkloads",
        "events": "ReadScheduledTasks",
        "lambda": "ReadLambdaWorkloads",
        "batch": "ReadBatchWorkloads",
    }
    for service, actions in sorted(by_service.items()):
        sid = sids.get(service, f"Read{service.capitalize()}")
        statements.append({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": "*"})
    if role == "cleaner":
        writes = sorted({p.action for p in _DECLARED if p.access is Access.WRITE})
        resource = f"arn:aws:ecr:{region or '*'}:{account or '*'}:repository/*"
        statements.append(
            {"Sid": "CleanRegistry", "Effect": "Allow", "Action": writes, "Resource": resource}
        )
    return {"Version": "2012-10-17", "Statement": statements}


def policy_json(role: Role, account: str | None = None, region: str | None = None) -> str:
    return json.dumps(policy_document(role, account, region), indent=2) + "\n"
