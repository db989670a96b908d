"""Declared IAM permissions, and the two IAM policies generated from them.

Every collector call and every apply action declares the IAM actions it needs, as Cloud
Custodian's filters and actions do. ``hygiene iam policy --role scanner|cleaner`` turns
the declarations into a policy: the *scanner* gets the read-only ones (it runs scans,
reports and notifications), the *cleaner* adds the writes apply needs. The committed
policies in ``cron/iam/`` are tested to equal the generated ones, and the test suite
records every AWS operation the code calls (botocore ``before-call`` hooks, see
``tests/iam_recorder.py``) and fails if one is not declared here.

A module that makes a new AWS call adds its declaration with :func:`declare` — here, so
the generated policy does not depend on which modules happen to be imported.

*discovery* (``--role discovery``) is what a role of ``in_use.assume_roles`` in another
account must allow: the in-use reads alone (docs/in-use.md).

With several accounts (docs/accounts.md) the tool runs as a *hub* role that assumes a
*member* role in each account: each declaration says where it is needed
(:class:`Scope`). ``hub`` gets the hub's own calls (identity, notifications, AssumeRole,
ListAccounts, the shards' parts), ``member-scanner`` and ``member-cleaner`` the registry's,
and :func:`member_roles_template` puts both member roles, with their trust policy, in one
CloudFormation template.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

Role = Literal["scanner", "cleaner", "hub", "member-scanner", "member-cleaner", "discovery"]
ROLES: tuple[Role, ...] = (
    "scanner",
    "cleaner",
    "hub",
    "member-scanner",
    "member-cleaner",
    "discovery",
)
DISCOVERY = "collect.in-use."  # the components whose reads the discovery policy grants


class Access(StrEnum):
    READ = "read"  # the scanner role may do it
    WRITE = "write"  # only the cleaner role may do it


class Scope(StrEnum):
    REGISTRY = "registry"  # in the account whose registry is read or changed
    HUB = "hub"  # in the tool's own account (also in the one-account policies)
    ACCOUNTS = "accounts"  # only the hub of several accounts, or of sharded runs


@dataclass(frozen=True)
class Permission:
    component: str  # who needs it, e.g. "collect.images", "apply.delete-images"
    action: str  # IAM action, e.g. "ecr:DescribeImages"
    access: Access
    reason: str = ""
    scope: Scope = Scope.REGISTRY


# API operations whose IAM action has another name (the recorder sees operations).
# Source: the S3 API reference of ListObjectsV2 ("you must have s3:ListBucket").
OPERATION_ACTIONS = {"s3:ListObjectsV2": "s3:ListBucket"}


_DECLARED: list[Permission] = []


def declare(
    component: str,
    *actions: str,
    access: Access = Access.READ,
    reason: str = "",
    scope: Scope = Scope.REGISTRY,
) -> None:
    """Record that ``component`` calls ``actions`` (``service:Operation`` IAM names)."""
    for action in actions:
        service, sep, operation = action.partition(":")
        if not sep or not service or not operation or not operation[0].isupper():
            raise ValueError(f"not an IAM action name: {action!r}")
        permission = Permission(component, action, access, reason, scope)
        if permission not in _DECLARED:
            _DECLARED.append(permission)


def declarations() -> list[Permission]:
    return list(_DECLARED)


def _discovery(permission: Permission) -> bool:
    return permission.component.startswith(DISCOVERY)


def declared_actions(role: Role = "cleaner") -> set[str]:
    """IAM actions the role is granted: scanner = reads, cleaner = reads + writes,
    discovery = the in-use reads a role in another account must allow."""
    if role == "discovery":
        return {p.action for p in _DECLARED if _discovery(p)}
    allowed = {Access.READ} if role == "scanner" else {Access.READ, Access.WRITE}
    return {p.action for p in _DECLARED if p.access in allowed}


def undeclared(operations: Iterable[str]) -> list[str]:
    """The recorded ``service:Operation`` names no declaration covers."""
    known = {p.action for p in _DECLARED}
    return sorted({op for op in operations if OPERATION_ACTIONS.get(op, op) not in known})


# --------------------------------------------------------------------------- declarations
R, W = Access.READ, Access.WRITE

declare(
    "identity",
    "sts:GetCallerIdentity",
    reason="account id; approver identity",
    scope=Scope.HUB,
)
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
# In-use discovery (hygiene.collect.workloads, docs/in-use.md), in every account whose
# workloads are read: the member scanner roles have them, and the "discovery" policy is
# them alone (a role of in_use.assume_roles; assuming it is accounts.assume-role's action).
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
    "lifecycle.preview",
    "ecr:StartLifecyclePolicyPreview",
    "ecr:GetLifecyclePolicyPreview",
    reason="ECR's own preview of a proposed lifecycle policy (changes nothing)",
)
declare(
    "notify.ses",
    "ses:SendRawEmail",
    "ses:SendEmail",
    reason="reports by Amazon SES",
    scope=Scope.HUB,
)
declare(
    "accounts.assume-role",
    "sts:AssumeRole",
    reason="the scanner and cleaner roles of each registry account",
    scope=Scope.ACCOUNTS,
)
declare(
    "accounts.organization",
    "organizations:ListAccounts",
    reason="the accounts of the Organization (registry.accounts.organization)",
    scope=Scope.ACCOUNTS,
)
declare(
    "shards.parts",
    "s3:PutObject",
    "s3:GetObject",
    "s3:ListBucket",
    reason="the parts of sharded scans (only in the parts bucket)",
    scope=Scope.ACCOUNTS,
)

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

SCANNER_ROLE = "registry-hygiene-scanner"
CLEANER_ROLE = "registry-hygiene-cleaner"


def _reads(scopes: set[Scope]) -> list[Permission]:
    return [p for p in _DECLARED if p.access is Access.READ and p.scope in scopes]


def _read_statements(permissions: Iterable[Permission]) -> list[dict[str, Any]]:
    by_service: dict[str, list[str]] = {}
    for action in sorted({p.action for p in permissions}):
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
    return [
        {
            "Sid": sids.get(service, f"Read{service.capitalize()}"),
            "Effect": "Allow",
            "Action": actions,
            "Resource": "*",
        }
        for service, actions in sorted(by_service.items())
    ]


def _writes() -> list[str]:
    return sorted({p.action for p in _DECLARED if p.access is Access.WRITE})


def policy_document(
    role: Role, account: str | None = None, region: str | None = None, **hub: Any
) -> dict[str, Any]:
    """The IAM policy for ``role`` (see :data:`ROLES`). Writes are limited to repositories
    of ``account`` (and ``region``) when given; reads use ``*`` (listing needs it)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if role == "hub":
        return hub_policy_document(**hub)
    if role.startswith("member-"):
        return member_policy_document(role.removeprefix("member-"), account, region)  # type: ignore[arg-type]
    if role == "discovery":
        discovery = [p for p in _DECLARED if _discovery(p)]
        return {"Version": "2012-10-17", "Statement": _read_statements(discovery)}
    statements = _read_statements(_reads({Scope.REGISTRY, Scope.HUB}))
    if role == "cleaner":
        resource = f"arn:aws:ecr:{region or '*'}:{account or '*'}:repository/*"
        statements.append(
            {"Sid": "CleanRegistry", "Effect": "Allow", "Action": _writes(), "Resource": resource}
        )
    return {"Version": "2012-10-17", "Statement": statements}


def member_policy_document(
    role: Literal["scanner", "cleaner"], account: str | Any = None, region: str | None = None
) -> dict[str, Any]:
    """The policy of the scanner or cleaner role in a member account: the registry's
    reads (and, for the cleaner, apply's writes on this account's repositories). Nothing
    of the hub's (notifications, AssumeRole, the parts bucket)."""
    statements = _read_statements(_reads({Scope.REGISTRY}))
    if role == "cleaner":
        resource: Any = f"arn:aws:ecr:{region or '*'}:{account or '*'}:repository/*"
        if not isinstance(account, str) and account is not None:  # a CloudFormation Fn::Sub
            resource = {"Fn::Sub": f"arn:aws:ecr:{region or '*'}:${{AWS::AccountId}}:repository/*"}
        statements.append(
            {"Sid": "CleanRegistry", "Effect": "Allow", "Action": _writes(), "Resource": resource}
        )
    return {"Version": "2012-10-17", "Statement": statements}


def hub_policy_document(
    scanner_role: str = f"arn:aws:iam::{{account}}:role/{SCANNER_ROLE}",
    cleaner_role: str | None = f"arn:aws:iam::{{account}}:role/{CLEANER_ROLE}",
    parts: str | None = None,
    accounts: Iterable[str] = (),
) -> dict[str, Any]:
    """The policy of the tool's own role when it reads several accounts: identity,
    notifications, AssumeRole into the member roles (of ``accounts``, or of any account),
    ListAccounts, and with ``parts`` (``s3://bucket/prefix``) the sharded runs' parts."""
    statements = _read_statements(_reads({Scope.HUB}))
    ids = list(accounts) or ["*"]
    roles = [t.replace("{account}", a) for t in (scanner_role, cleaner_role) if t for a in ids]
    statements.append(
        {"Sid": "AssumeMemberRoles", "Effect": "Allow", "Action": ["sts:AssumeRole"],
         "Resource": sorted(roles)}
    )  # fmt: skip
    statements.append(
        {"Sid": "ListAccounts", "Effect": "Allow", "Action": _actions("accounts.organization"),
         "Resource": "*"}
    )  # fmt: skip
    if parts:
        bucket, _, prefix = parts.removeprefix("s3://").partition("/")
        prefix = prefix.strip("/")
        objects = f"arn:aws:s3:::{bucket}/{prefix + '/' if prefix else ''}*"
        statements.append(
            {"Sid": "ShardParts", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": objects}
        )  # fmt: skip
        listing: dict[str, Any] = {
            "Sid": "ListShardParts", "Effect": "Allow", "Action": ["s3:ListBucket"],
            "Resource": f"arn:aws:s3:::{bucket}",
        }  # fmt: skip
        if prefix:
            listing["Condition"] = {"StringLike": {"s3:prefix": [prefix, f"{prefix}/*"]}}
        statements.append(listing)
    return {"Version": "2012-10-17", "Statement": statements}


def _actions(component: str) -> list[str]:
    return sorted({p.action for p in _DECLARED if p.component == component})


def trust_policy_document(hub: str | Any, external_id: str | Any | None) -> dict[str, Any]:
    """Who may assume a member role: the hub principal, with the external id."""
    statement: dict[str, Any] = {
        "Sid": "RegistryHygieneHub",
        "Effect": "Allow",
        "Principal": {"AWS": hub},
        "Action": "sts:AssumeRole",
    }
    if external_id is not None:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def member_roles_template() -> dict[str, Any]:
    """A CloudFormation template creating both member roles in one account (deploy it to
    every member account with a StackSet). Parameters: the hub's principal ARN and the
    external id."""
    trust = trust_policy_document({"Ref": "HubPrincipalArn"}, {"Ref": "ExternalId"})
    resources = {}
    roles: tuple[tuple[Literal["scanner", "cleaner"], str], ...] = (
        ("scanner", SCANNER_ROLE),
        ("cleaner", CLEANER_ROLE),
    )
    for role, name in roles:
        resources[f"{role.capitalize()}Role"] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": name,
                "Description": f"registry-hygiene {role} (docs/accounts.md)",
                "MaxSessionDuration": 3600,
                "AssumeRolePolicyDocument": trust,
                "Policies": [
                    {
                        "PolicyName": name,
                        "PolicyDocument": member_policy_document(
                            role,
                            account={"Ref": "AWS::AccountId"},  # type: ignore[arg-type]
                        ),
                    }
                ],
            },
        }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "registry-hygiene member-account roles: scanner (read) and cleaner "
        "(apply). Generated by `hygiene iam member-roles`.",
        "Parameters": {
            "HubPrincipalArn": {
                "Type": "String",
                "Description": "The role (or user) registry-hygiene runs as, in the hub account",
                "AllowedPattern": r"^arn:aws[\w-]*:iam::\d{12}:(role|user)/.+$",
            },
            "ExternalId": {
                "Type": "String",
                "NoEcho": True,
                "MinLength": 2,
                "Description": "registry.accounts.external_id(_env) of the tool's config",
            },
        },
        "Resources": resources,
    }


def policy_json(
    role: Role, account: str | None = None, region: str | None = None, **hub: Any
) -> str:
    return json.dumps(policy_document(role, account, region, **hub), indent=2) + "\n"
