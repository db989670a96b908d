"""Compliance rules (SC): AWS Security Hub ECR controls and repository policies."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from hygiene.messages import N_, message
from hygiene.model import FixSafety, Severity
from hygiene.rules.base import Option, RuleContext, Scope, rule

if TYPE_CHECKING:
    import pandas as pd

SCAN_DISABLED = N_("scan on push is disabled (Security Hub ECR.1)")
MUTABLE = N_("image tags are %(current)s (Security Hub ECR.2)")
NOT_KMS = N_("encrypted with %(encryption)s, not a customer-managed KMS key (ECR.5)")
AWS_MANAGED = N_("encrypted with the AWS-managed aws/ecr key, not a CMK (ECR.5)")
KEY_NOT_ALLOWED = N_("KMS key %(key)s is not in the allowed keys")
POLICY_INVALID = N_("repository policy cannot be checked: invalid JSON (%(error)s)")
POLICY_GRANTS = N_("repository policy grants %(principals)s in 1 statement")
POLICY_GRANTS_MANY = N_("repository policy grants %(principals)s in %(count)s statements")

IMMUTABLE = ("IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION")
ORG_CONDITION_KEYS = {
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalaccount",
    "aws:sourceaccount",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
}
ACCOUNT_IN_ARN = re.compile(r"^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):")


@rule(
    code="SC001",
    name="scan-on-push-disabled",
    severity=Severity.ERROR,
    fix_safety=FixSafety.SAFE,
    scope=Scope.REPOSITORY,
    fix="Enable scan on push (put-image-scanning-configuration scanOnPush=true).",
    options=[
        Option(
            "covered_by_registry_scanning",
            [],
            "Glob patterns of repositories covered "
            "by registry-level enhanced (continuous) scanning filters.",
            kind="list",
        ),
    ],
)
def scan_on_push_disabled(ctx: RuleContext) -> pd.DataFrame:
    """Repository that does not scan images on push (Security Hub ECR.1).

    What it flags:
        A repository with scan on push disabled that no registry-level scanning rule
        covers (read from GetRegistryScanningConfiguration: scan on push or continuous
        scanning whose filter matches the repository), nor a pattern listed in
        ``covered_by_registry_scanning`` (for scanners not allowed to read it).

    Why it matters:
        Without scanning, images with known critical vulnerabilities are pushed and run
        unnoticed. AWS Security Hub control ECR.1 (high severity) requires image
        scanning.

    Example:
        ``labs/ubuntu`` created with the CLI defaults (``scanOnPush=false``).

    Fix:
        Enable scan on push (a safe fix: it changes nothing about stored images):
        ``aws ecr put-image-scanning-configuration --repository-name labs/ubuntu
        --image-scanning-configuration scanOnPush=true``.
    """
    import pandas as pd

    from hygiene.rules.columns import match_globs

    repos = ctx.repositories
    mask = ~repos["scan_on_push"].to_numpy(dtype=bool)
    # registry-level scanning (read by the collector) satisfies ECR.1 as well
    mask &= repos["registry_scan_frequency"].isna().to_numpy(dtype=bool)
    covered = ctx.options["covered_by_registry_scanning"]
    if covered:
        mask &= ~match_globs(repos["name"].astype(str), covered)
    sub = repos[mask]
    return pd.DataFrame(
        {"message": [message(SCAN_DISABLED)] * len(sub)},
        index=sub.index,
    )


@rule(
    code="SC002",
    name="mutable-tags",
    severity=Severity.WARNING,
    fix_safety=FixSafety.UNSAFE,
    scope=Scope.REPOSITORY,
    fix="Set tag mutability to IMMUTABLE_WITH_EXCLUSION, excluding the floating tags.",
    options=[
        Option(
            "exclusion_filters",
            ["latest", "main", "stable"],
            "Floating tags to keep "
            "mutable in the suggested IMMUTABLE_WITH_EXCLUSION setting (ECR allows 5).",
            kind="list",
            max=5,
        ),
    ],
)
def mutable_tags(ctx: RuleContext) -> pd.DataFrame:
    """Repository whose tags can be overwritten (Security Hub ECR.2).

    What it flags:
        A repository whose tag mutability is ``MUTABLE`` or ``MUTABLE_WITH_EXCLUSION``.

    Why it matters:
        With mutable tags, pushing ``1.2.0`` twice silently replaces the image: what ran
        yesterday is not what ``1.2.0`` means today, and the old image is left untagged.
        AWS Security Hub control ECR.2 requires immutable tags.

    Example:
        ``eureca/api`` is ``MUTABLE`` and ``v2.0.1`` was re-pushed three times.

    Fix:
        Set ``IMMUTABLE_WITH_EXCLUSION`` with the floating tags (``latest``…) as
        exclusion filters (unsafe: pipelines that re-push a version tag start failing,
        so the owner is told and an admin approves).
    """
    import pandas as pd

    repos = ctx.repositories
    mutability = repos["tag_mutability"].astype(object).fillna("MUTABLE")
    sub = repos[~mutability.isin(IMMUTABLE).to_numpy()]
    filters = list(ctx.options["exclusion_filters"])
    current = sub["tag_mutability"].astype(object).fillna("MUTABLE").tolist()
    return pd.DataFrame(
        {
            "message": [message(MUTABLE, current=c) for c in current],
            "details": [
                {
                    "current": c,
                    "suggested": "IMMUTABLE_WITH_EXCLUSION",
                    "exclusion_filters": filters,
                }
                for c in current
            ],
        },
        index=sub.index,
    )


@rule(
    code="SC003",
    name="no-cmk-encryption",
    severity=Severity.WARNING,
    fix_safety=FixSafety.MANUAL,
    scope=Scope.REPOSITORY,
    fix="Recreate the repository with a customer-managed KMS key and copy its images.",
    options=[
        Option(
            "allowed_keys",
            [],
            "Glob patterns of KMS key ARNs accepted; empty accepts any customer-managed key.",
            kind="list",
        ),
    ],
)
def no_cmk_encryption(ctx: RuleContext) -> pd.DataFrame:
    """Repository not encrypted with a customer-managed KMS key (Security Hub ECR.5).

    What it flags:
        A repository encrypted with AES256 (the default) or with the AWS-managed
        ``aws/ecr`` key, or, when ``allowed_keys`` is set, with a key not in that list.

    Why it matters:
        A customer-managed key lets the organisation audit and revoke access to image
        layers independently of ECR permissions. Security Hub control ECR.5 checks it.

    Example:
        ``suporte/api`` created with the default ``AES256`` encryption.

    Fix:
        Manual: encryption cannot be changed in place. Create a new repository with
        ``--encryption-configuration encryptionType=KMS,kmsKey=<key-arn>``, copy the
        images, move consumers, delete the old repository.
    """
    import pandas as pd

    from hygiene.rules.columns import match_globs

    repos = ctx.repositories
    encryption = repos["encryption"].astype(object).fillna("AES256")
    key = repos["kms_key"].astype(object).fillna("")
    kms = encryption.isin(["KMS", "KMS_DSSE"]).to_numpy()
    aws_managed = key.str.contains("alias/aws/ecr", regex=False).to_numpy() | (key == "").to_numpy()
    bad = ~kms | aws_managed
    allowed = ctx.options["allowed_keys"]
    if allowed:
        bad |= kms & ~match_globs(key, allowed)
    sub = repos[bad]
    messages = []
    for enc, k in zip(encryption[bad].tolist(), key[bad].tolist(), strict=True):
        if enc not in ("KMS", "KMS_DSSE"):
            messages.append(message(NOT_KMS, encryption=enc))
        elif not k or "alias/aws/ecr" in k:
            messages.append(message(AWS_MANAGED))
        else:
            messages.append(message(KEY_NOT_ALLOWED, key=k))
    return pd.DataFrame({"message": messages}, index=sub.index)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _restricted_by_condition(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition") or {}
    if not isinstance(condition, dict):
        return False
    for clauses in condition.values():
        if isinstance(clauses, dict) and any(
            str(key).lower() in ORG_CONDITION_KEYS for key in clauses
        ):
            return True
    return False


def risky_statements(
    policy_text: str, account: str, trusted: list[str], allow_org_conditions: bool
) -> list[dict[str, Any]]:
    """Allow statements that grant ``*`` or a foreign account; raises ValueError on bad JSON."""
    policy = json.loads(policy_text)
    if not isinstance(policy, dict):
        raise ValueError("policy is not a JSON object")
    found = []
    for i, statement in enumerate(_as_list(policy.get("Statement"))):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        risky: list[str] = []
        if "NotPrincipal" in statement:
            risky.append("NotPrincipal (everyone except the listed principals)")
        principal = statement.get("Principal")
        values = ["*"] if principal == "*" else []
        if isinstance(principal, dict):
            values = [str(v) for v in _as_list(principal.get("AWS"))]
        for value in values:
            if value == "*":
                risky.append("*")
                continue
            match = ACCOUNT_IN_ARN.match(value)
            owner = match.group(1) if match else (value if re.fullmatch(r"\d{12}", value) else None)
            if owner is not None and owner != account and owner not in trusted:
                risky.append(value)
        if risky and not (allow_org_conditions and _restricted_by_condition(statement)):
            found.append(
                {
                    "index": i,
                    "sid": statement.get("Sid"),
                    "principals": risky,
                    "actions": _as_list(statement.get("Action")),
                }
            )
    return found


@rule(
    code="SC004",
    name="public-repository-policy",
    severity=Severity.ERROR,
    fix_safety=FixSafety.UNSAFE,
    scope=Scope.REPOSITORY,
    fix="Remove the statements granting '*' or foreign accounts from the repository policy.",
    options=[
        Option(
            "trusted_accounts",
            [],
            "Other AWS account ids allowed in repository policies.",
            kind="list",
        ),
        Option(
            "allow_org_conditions",
            True,
            "Accept a '*' or foreign principal restricted "
            "by an aws:PrincipalOrgID / aws:SourceAccount style condition.",
            kind="bool",
        ),
    ],
)
def public_repository_policy(ctx: RuleContext) -> pd.DataFrame:
    """Repository policy that grants access to everyone or to other accounts.

    What it flags:
        A repository policy with an ``Allow`` statement whose principal is ``"*"``,
        ``{"AWS": "*"}``, ``NotPrincipal``, or an account (id or ARN) other than the
        repository's own and the ``trusted_accounts``, unless a condition restricts it
        to the organisation or a source account. A policy that is not valid JSON is
        flagged too (it cannot be checked).

    Why it matters:
        Such a statement lets anyone on the internet, or another organisation, pull (or
        worse, push and delete) the project's images. Security Hub does not cover it;
        IAM Access Analyzer does.

    Example:
        ``{"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}`` on
        ``labs/ubuntu``.

    Fix:
        Remove the offending statements (``details.statements`` lists them) or restrict
        them with ``aws:PrincipalOrgID`` (unsafe: someone may rely on the access, so an
        admin approves).
    """
    import numpy as np
    import pandas as pd

    repos = ctx.repositories
    has = repos["repository_policy"].notna().to_numpy()
    sub = repos[has]
    trusted = ctx.options["trusted_accounts"]
    allow_org = ctx.options["allow_org_conditions"]
    index, messages, details = [], [], []
    for row, text, account in zip(
        sub.index.tolist(),
        sub["repository_policy"].astype(str).tolist(),
        sub["account"].astype(str).tolist(),
        strict=True,
    ):
        try:
            statements = risky_statements(text, account, trusted, allow_org)
        except (ValueError, TypeError) as exc:
            index.append(row)
            messages.append(message(POLICY_INVALID, error=str(exc)))
            details.append({"statements": [], "invalid": True})
            continue
        if statements:
            principals = sorted({p for s in statements for p in s["principals"]})
            index.append(row)
            messages.append(
                message(POLICY_GRANTS_MANY, principals=principals, count=len(statements))
                if len(statements) > 1
                else message(POLICY_GRANTS, principals=principals)
            )
            details.append({"statements": statements})
    return pd.DataFrame(
        {"message": messages, "details": details}, index=np.asarray(index, dtype=np.int64)
    )
