"""ECR's own preview (not in moto): requests pinned with botocore's Stubber."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.config import Config
from hygiene.errors import LifecycleError
from hygiene.inventory import write_snapshot
from hygiene.lifecycle import generate_policy, preview_policy
from hygiene.lifecycle.ecr_preview import compare_previews, run_ecr_preview
from tests.builders import ACCOUNT, REGION, RULES_DIR, digest_of, image_row, images_frame, inventory

REPO = "team/app"
POLICY = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "keep one",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)


def _client() -> Any:
    return boto3.client(
        "ecr",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _item(name: str, priority: int = 1, kind: str = "EXPIRE") -> dict[str, Any]:
    return {
        "imageDigest": digest_of(name),
        "imageTags": [name],
        "action": {"type": kind},
        "appliedRulePriority": priority,
    }


def _stub_preview(stubber: Stubber, items: list[dict[str, Any]], text: str = POLICY) -> None:
    ids = {"repositoryName": REPO, "registryId": ACCOUNT}
    head = {**ids, "lifecyclePolicyText": text}
    stubber.add_response("start_lifecycle_policy_preview", {**head, "status": "IN_PROGRESS"}, head)
    stubber.add_response("get_lifecycle_policy_preview", {**head, "status": "IN_PROGRESS"}, ids)
    stubber.add_response("get_lifecycle_policy_preview", {**head, "status": "COMPLETE"}, ids)
    stubber.add_response(
        "get_lifecycle_policy_preview",
        {**head, "status": "COMPLETE", "previewResults": items[:1], "nextToken": "page-2"},
        {**ids, "maxResults": 100},
    )
    stubber.add_response(
        "get_lifecycle_policy_preview",
        {**head, "status": "COMPLETE", "previewResults": items[1:]},
        {**ids, "maxResults": 100, "nextToken": "page-2"},
    )


def test_run_ecr_preview_waits_and_pages(now: datetime) -> None:
    client = _client()
    with Stubber(client) as stubber:
        _stub_preview(stubber, [_item("a"), _item("b")])
        remote = run_ecr_preview(client, REPO, POLICY, registry_id=ACCOUNT, delay=0)
        stubber.assert_no_pending_responses()
    assert remote == {digest_of("a"): (1, "expire"), digest_of("b"): (1, "expire")}
    images = images_frame(
        image_row(name, REPO, tags=[name], pushed_days_ago=days, now=now)
        for name, days in (("a", 3), ("b", 2), ("c", 1))
    )
    local = preview_policy(POLICY, images, now=now, repository=REPO)
    assert compare_previews(local, remote) == []
    remote[digest_of("c")] = (1, "expire")
    del remote[digest_of("a")]
    assert compare_previews(local, remote) == sorted(
        [
            f"{digest_of('a')}: local expire by rule 1, ECR keeps it",
            f"{digest_of('c')}: local keeps it, ECR expire by rule 1",
        ]
    )


def test_preview_already_running_is_a_lifecycle_error() -> None:
    client = _client()
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "start_lifecycle_policy_preview",
            service_error_code="LifecyclePolicyPreviewInProgressException",
            service_message="a preview is in progress",
        )
        with pytest.raises(LifecycleError) as info:
            run_ecr_preview(client, REPO, POLICY, delay=0)
    assert info.value.message == (
        "team/app: ECR lifecycle preview failed: "
        "LifecyclePolicyPreviewInProgressException: a preview is in progress"
    )


def test_failed_preview_is_a_lifecycle_error() -> None:
    client = _client()
    with Stubber(client) as stubber:
        head = {"repositoryName": REPO, "lifecyclePolicyText": POLICY}
        stubber.add_response("start_lifecycle_policy_preview", {**head, "status": "IN_PROGRESS"})
        stubber.add_response("get_lifecycle_policy_preview", {**head, "status": "FAILED"})
        with pytest.raises(LifecycleError, match="did not complete: FAILED"):
            run_ecr_preview(client, REPO, POLICY, delay=0)


def test_cli_compare_ecr(
    tmp_path: Path,
    config: Config,
    now: datetime,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [
        image_row(n, REPO, tags=[n], pushed_days_ago=d, now=now) for n, d in (("a", 3), ("b", 2))
    ]
    snapshot = write_snapshot(inventory(rows, now=now), tmp_path / "s.parquet")
    policy = tmp_path / "p.json"
    policy.write_text(POLICY)
    client = _client()
    monkeypatch.setattr("hygiene.cli.lifecycle.ecr_client_for", lambda config, region: client)
    monkeypatch.setattr(
        "hygiene.cli.lifecycle.run_ecr_preview",
        lambda c, r, t, registry_id: run_ecr_preview(c, r, t, registry_id=registry_id, delay=0),
    )
    with Stubber(client) as stubber:
        _stub_preview(stubber, [_item("b")])  # ECR would expire b; we expire a
        code = run_cli(
            cli,
            [
                "lifecycle", "preview", REPO, "--policy", str(policy), "--compare-ecr",
                "--from-snapshot", str(snapshot), "--rules-dir", str(RULES_DIR),
                "--now", now.strftime("%Y-%m-%dT%H:%M:%S"),
            ],
        )  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 0
    assert f"differs: {REPO}: {digest_of('a')}: local expire by rule 1, ECR keeps it" in err
    assert f"differs: {REPO}: {digest_of('b')}: local keeps it, ECR expire by rule 1" in err
    assert generate_policy(config).text  # the shipped config still generates
