"""Cross-check the local preview against ECR's own lifecycle policy preview.

ECR's preview (StartLifecyclePolicyPreview → GetLifecyclePolicyPreview) is asynchronous,
one preview per repository at a time, and not implemented by moto. It is the ground
truth for the local evaluator, so an admin can compare both before approving a policy
(``hygiene lifecycle preview REPO --compare-ecr``). The client is passed in; waiting uses
botocore's ``LifecyclePolicyPreviewComplete`` waiter and paging its paginator.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, WaiterError

from hygiene.errors import LifecycleError
from hygiene.lifecycle.preview import PreviewResult

EcrPreview = dict[str, tuple[int, str]]  # digest → (appliedRulePriority, expire|transition)


def run_ecr_preview(
    client: Any,
    repository: str,
    policy_text: str,
    *,
    registry_id: str | None = None,
    delay: int = 5,
    max_attempts: int = 60,
) -> EcrPreview:
    """Start ECR's preview of ``policy_text`` on ``repository`` and return its results."""
    ids = {"repositoryName": repository}
    if registry_id:
        ids["registryId"] = registry_id
    try:
        client.start_lifecycle_policy_preview(**ids, lifecyclePolicyText=policy_text)
        client.get_waiter("lifecycle_policy_preview_complete").wait(
            **ids, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}
        )
        results: EcrPreview = {}
        paginator = client.get_paginator("get_lifecycle_policy_preview")
        for page in paginator.paginate(**ids, PaginationConfig={"PageSize": 100}):
            for item in page.get("previewResults", []):
                action = str(item.get("action", {}).get("type", "EXPIRE")).lower()
                results[item["imageDigest"]] = (int(item["appliedRulePriority"]), action)
        return results
    except WaiterError as exc:
        status = (exc.last_response or {}).get("status", exc)
        raise LifecycleError(
            f"{repository}: ECR lifecycle preview did not complete: {status}"
        ) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code"), error.get("Message")
        raise LifecycleError(
            f"{repository}: ECR lifecycle preview failed: {code}: {message}"
        ) from exc


def compare_previews(local: PreviewResult, remote: EcrPreview) -> list[str]:
    """Differences between the local preview and ECR's, one line per image."""
    mine = {
        str(row.digest): (int(row.rule_priority), str(row.action))
        for row in local.actions.itertuples(index=False)
    }
    lines = []
    for digest in sorted(set(mine) | set(remote)):
        ours, theirs = mine.get(digest), remote.get(digest)
        if ours != theirs:
            lines.append(f"{digest}: local {_describe(ours)}, ECR {_describe(theirs)}")
    return lines


def _describe(value: tuple[int, str] | None) -> str:
    return "keeps it" if value is None else f"{value[1]} by rule {value[0]}"
