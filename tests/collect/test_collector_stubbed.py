"""Pin the exact ECR requests where moto is not faithful (it ignores paging and batch limits).

botocore's Stubber checks every request parameter, so these tests fail if the collector
stops asking for 1000 results a page, stops following nextToken, or sends more than 100
ids in one BatchGetImage call.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber

from hygiene.collect.ecr import (
    ACCEPTED_MEDIA_TYPES,
    ScanTarget,
    collect_inventory,
    fixed_client,
    list_images,
    list_repositories,
    read_manifests,
)
from hygiene.collect.scanconfig import scan_frequency_for
from hygiene.config import CollectSettings
from hygiene.errors import CollectError

ACCOUNT = "851296927411"
PUSHED = datetime(2026, 1, 1, tzinfo=UTC)
SERIAL = CollectSettings(max_workers=1, max_attempts=1, read_passes=1)  # one pass: one read each
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _client() -> Any:
    return boto3.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
    ).client("ecr")


def _repo(name: str) -> dict[str, Any]:
    return {
        "repositoryName": name,
        "registryId": ACCOUNT,
        "repositoryArn": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}",
        "repositoryUri": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{name}",
        "createdAt": PUSHED,
        "imageTagMutability": "MUTABLE",
        "imageScanningConfiguration": {"scanOnPush": False},
        "encryptionConfiguration": {"encryptionType": "AES256"},
    }


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


def _detail(repo: str, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "registryId": ACCOUNT,
        "repositoryName": repo,
        "imageDigest": _digest(n),
        "imageSizeInBytes": 1000 + n,
        "imagePushedAt": PUSHED,
        "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
        **extra,
    }


def test_repositories_three_pages_ask_for_1000_and_follow_tokens() -> None:
    client = _client()
    with Stubber(client) as stub:
        stub.add_response(
            "describe_repositories",
            {"repositories": [_repo("aa")], "nextToken": "t1"},
            {"maxResults": 1000},
        )
        stub.add_response(
            "describe_repositories",
            {"repositories": [_repo("bb")], "nextToken": "t2"},
            {"maxResults": 1000, "nextToken": "t1"},
        )
        stub.add_response(
            "describe_repositories",
            {"repositories": [_repo("cc")]},
            {"maxResults": 1000, "nextToken": "t2"},
        )
        names = [r["repositoryName"] for r in list_repositories(client, 1000)]
        stub.assert_no_pending_responses()
    assert names == ["aa", "bb", "cc"]


def test_images_three_pages_with_status_any() -> None:
    client = _client()
    expected = {
        "repositoryName": "suporte/api",
        "filter": {"tagStatus": "ANY", "imageStatus": "ANY"},
        "maxResults": 1000,
    }
    with Stubber(client) as stub:
        stub.add_response(
            "describe_images",
            {"imageDetails": [_detail("suporte/api", 1)], "nextToken": "p2"},
            expected,
        )
        stub.add_response(
            "describe_images",
            {"imageDetails": [_detail("suporte/api", 2)], "nextToken": "p3"},
            {**expected, "nextToken": "p2"},
        )
        stub.add_response(
            "describe_images",
            {"imageDetails": [_detail("suporte/api", 3)]},
            {**expected, "nextToken": "p3"},
        )
        details = list_images(client, "suporte/api", 1000)
        stub.assert_no_pending_responses()
    assert [d["imageDigest"] for d in details] == [_digest(1), _digest(2), _digest(3)]


def test_batch_get_image_is_chunked_by_100() -> None:
    client = _client()
    digests = [_digest(n) for n in range(250)]
    with Stubber(client) as stub:
        for chunk in (digests[:100], digests[100:200], digests[200:]):
            stub.add_response(
                "batch_get_image",
                {
                    "images": [
                        {"imageId": {"imageDigest": d}, "imageManifest": '{"manifests": []}'}
                        for d in chunk
                    ],
                    "failures": [],
                },
                {
                    "repositoryName": "rr",
                    "imageIds": [{"imageDigest": d} for d in chunk],
                    "acceptedMediaTypes": ACCEPTED_MEDIA_TYPES,
                },
            )
        manifests = read_manifests(client, "rr", list(reversed(digests)))
        stub.assert_no_pending_responses()
    assert sorted(manifests) == digests


def _registry_scanning(stub: Stubber) -> None:
    stub.add_response(
        "get_registry_scanning_configuration",
        {"registryId": ACCOUNT, "scanningConfiguration": {"scanType": "BASIC", "rules": []}},
        {},
    )


def _settings_calls(stub: Stubber, name: str) -> None:
    stub.add_client_error(
        "get_lifecycle_policy", "LifecyclePolicyNotFoundException", expected_params=None
    )
    stub.add_client_error(
        "get_repository_policy", "RepositoryPolicyNotFoundException", expected_params=None
    )
    stub.add_response(
        "list_tags_for_resource",
        {"tags": []},
        {"resourceArn": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}"},
    )


def test_repository_failing_mid_scan_marks_run_incomplete() -> None:
    """The second repository's DescribeImages fails after retries: it is recorded with
    its error, its images are not reported as 'none', and the run is incomplete."""
    client = _client()
    with Stubber(client) as stub:
        stub.add_response(
            "describe_repositories", {"repositories": [_repo("ok"), _repo("broken")]}, None
        )
        _registry_scanning(stub)
        stub.add_response(
            "describe_images", {"imageDetails": [_detail("ok", 1, imageTags=["v1"])]}, None
        )
        _settings_calls(stub, "ok")
        stub.add_client_error(
            "describe_images",
            "ThrottlingException",
            "Rate exceeded",
            http_status_code=400,
            expected_params=None,
        )
        inventory = collect_inventory({"us-east-1": client}, SERIAL)
        stub.assert_no_pending_responses()
    run = inventory.run
    assert not run.complete
    assert [(e.repository, e.operation) for e in run.errors] == [("broken", "DescribeImages")]
    assert "ThrottlingException: Rate exceeded" in run.errors[0].message
    repos = inventory.repositories.set_index("name")
    assert repos.loc["broken", "scan_error"].startswith("DescribeImages: ThrottlingException")
    assert repos.loc["broken", "image_count"] == 0
    assert repos.loc["ok", "image_count"] == 1
    assert repos["scan_error"].isna().tolist() == [False, True]  # sorted: broken, ok


def test_a_failed_repository_is_read_again_after_the_pool_drains() -> None:
    """Pass 1 reads every repository; the one whose read failed is read again, whole,
    only after the others (the Stubber pins that order), and the scan is complete."""
    client = _client()
    settings = CollectSettings(max_workers=1, max_attempts=1, read_passes=2, pass_backoff_seconds=0)
    describe = {"filter": {"tagStatus": "ANY", "imageStatus": "ANY"}, "maxResults": 1000}
    with Stubber(client) as stub:
        stub.add_response("describe_repositories", {"repositories": [_repo("app"), _repo("big")]})
        _registry_scanning(stub)
        stub.add_response(
            "describe_images", {"imageDetails": [_detail("app", 1, imageTags=["v1"])]}, None
        )
        stub.add_client_error(
            "get_lifecycle_policy", "ServiceUnavailableException", http_status_code=503
        )
        stub.add_response(
            "describe_images",
            {"imageDetails": [_detail("big", 2, imageTags=["v1"])]},
            {"repositoryName": "big", **describe},
        )
        _settings_calls(stub, "big")
        stub.add_response(
            "describe_images",
            {"imageDetails": [_detail("app", 1, imageTags=["v1"])]},
            {"repositoryName": "app", **describe},
        )
        _settings_calls(stub, "app")
        inventory = collect_inventory({"us-east-1": client}, settings)
        stub.assert_no_pending_responses()
    assert inventory.run.complete and inventory.run.errors == []
    assert sorted(inventory.images["digest"]) == [_digest(1), _digest(2)]
    assert inventory.repositories["scan_error"].isna().all()


def test_a_repository_failing_in_every_pass_is_recorded_with_its_last_error() -> None:
    client = _client()
    settings = CollectSettings(max_workers=1, max_attempts=1, read_passes=2, pass_backoff_seconds=0)
    with Stubber(client) as stub:
        stub.add_response("describe_repositories", {"repositories": [_repo("app")]})
        _registry_scanning(stub)
        stub.add_client_error("describe_images", "ThrottlingException", "Rate exceeded")
        stub.add_client_error("describe_images", "ServerException", "try again", 500)
        inventory = collect_inventory({"us-east-1": client}, settings)
        stub.assert_no_pending_responses()
    assert not inventory.run.complete
    [error] = inventory.run.errors
    assert (error.repository, error.operation) == ("app", "DescribeImages")
    assert error.message == "ServerException: try again"
    assert len(inventory.images) == 0


def test_later_passes_use_fresh_clients() -> None:
    """The retry quota is per client: a repository read again gets a new client."""
    first, second = _client(), _client()
    settings = CollectSettings(max_workers=1, max_attempts=1, read_passes=2, pass_backoff_seconds=0)
    made: list[Any] = []

    def fresh() -> Any:
        made.append(second)
        return second

    with Stubber(first) as stub, Stubber(second) as again:
        stub.add_response("describe_repositories", {"repositories": [_repo("app")]})
        _registry_scanning(stub)
        stub.add_client_error("describe_images", "ThrottlingException", "Rate exceeded")
        again.add_response("describe_images", {"imageDetails": []}, None)
        _settings_calls(again, "app")
        target = ScanTarget(None, "us-east-1", fixed_client(first), fresh)
        inventory = collect_inventory([target], settings)
        stub.assert_no_pending_responses()
        again.assert_no_pending_responses()
    assert made == [second]
    assert inventory.run.complete


def test_unreadable_index_manifest_fails_the_repository_not_its_children() -> None:
    """Without the index manifest its children would look like untagged leftovers."""
    client = _client()
    index = _detail(
        "multi",
        9,
        imageTags=["v1"],
        imageManifestMediaType="application/vnd.oci.image.index.v1+json",
    )
    with Stubber(client) as stub:
        stub.add_response("describe_repositories", {"repositories": [_repo("multi")]}, None)
        _registry_scanning(stub)
        stub.add_response("describe_images", {"imageDetails": [index, _detail("multi", 1)]}, None)
        stub.add_response(
            "batch_get_image",
            {
                "images": [],
                "failures": [
                    {
                        "imageId": {"imageDigest": _digest(9)},
                        "failureCode": "KmsError",
                        "failureReason": "key disabled",
                    }
                ],
            },
            None,
        )
        inventory = collect_inventory({"us-east-1": client}, SERIAL)
    assert not inventory.run.complete
    assert inventory.run.errors[0].operation == "BatchGetImage"
    assert "KmsError" in inventory.run.errors[0].message
    assert len(inventory.images) == 0


def _manifests(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "images": [
            {"imageId": {"imageDigest": d}, "imageManifest": json.dumps(body)}
            for d, body in documents.items()
        ],
        "failures": [],
    }


def test_untagged_images_no_index_lists_are_read_for_their_subject() -> None:
    """Two rounds of BatchGetImage: the indexes first, then only the untagged images that
    no index lists and that ECR gave no subject, and the children an index lists without
    a `platform` (an untagged index of the OCI referrers tag schema lists signatures so);
    a `subject` in the manifest makes the image a referrer. Tagged images and platform
    manifests are never read."""
    client = _client()
    oci = "application/vnd.oci.image.manifest.v1+json"
    index = _detail("app", 9, imageTags=["v1"], imageManifestMediaType=OCI_INDEX)
    details = [
        index,
        _detail("app", 1),  # platform manifest of the index
        _detail("app", 2, imageTags=["v0"]),  # tagged: never a candidate on its own
        _detail("app", 3),  # a referrer of the index, no ECR metadata
        _detail("app", 4),  # a plain untagged image
        _detail("app", 5, subjectManifestDigest=_digest(2)),  # ECR says: a referrer
        _detail("app", 8, imageManifestMediaType=OCI_INDEX),  # an old referrers listing
        _detail("app", 7),  # the signature of v0 it lists, no ECR metadata
    ]
    platform = {"architecture": "amd64", "os": "linux"}
    first = {
        _digest(8): {"mediaType": OCI_INDEX, "manifests": [{"digest": _digest(7)}]},
        _digest(9): {
            "mediaType": OCI_INDEX,
            "manifests": [{"digest": _digest(1), "platform": platform}],
        },
    }
    second = {
        _digest(3): {"mediaType": oci, "subject": {"digest": _digest(9), "mediaType": OCI_INDEX}},
        _digest(4): {"mediaType": oci, "config": {}, "layers": []},
        _digest(7): {"mediaType": oci, "subject": {"digest": _digest(2), "mediaType": oci}},
    }
    with Stubber(client) as stub:
        stub.add_response("describe_repositories", {"repositories": [_repo("app")]}, None)
        _registry_scanning(stub)
        stub.add_response("describe_images", {"imageDetails": details}, None)
        stub.add_response(
            "batch_get_image",
            _manifests(first),
            {
                "repositoryName": "app",
                "imageIds": [{"imageDigest": _digest(8)}, {"imageDigest": _digest(9)}],
                "acceptedMediaTypes": ACCEPTED_MEDIA_TYPES,
            },
        )
        stub.add_response(
            "batch_get_image",
            _manifests(second),
            {
                "repositoryName": "app",
                "imageIds": [{"imageDigest": _digest(n)} for n in (3, 4, 7)],
                "acceptedMediaTypes": ACCEPTED_MEDIA_TYPES,
            },
        )
        _settings_calls(stub, "app")
        inventory = collect_inventory({"us-east-1": client}, SERIAL)
        stub.assert_no_pending_responses()
    assert inventory.run.complete
    subjects = dict(
        zip(
            inventory.images["digest"].astype(str),
            inventory.images["subject_digest"].astype(object),
            strict=True,
        )
    )
    assert subjects[_digest(3)] == _digest(9)
    assert subjects[_digest(5)] == _digest(2)
    assert subjects[_digest(7)] == _digest(2)
    assert all(pd.isna(subjects[_digest(n)]) for n in (1, 2, 4, 8, 9))


@pytest.mark.parametrize("code", ["AccessDeniedException", "ExpiredTokenException"])
def test_fatal_errors_fail_the_scan(code: str) -> None:
    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error("describe_repositories", code, "nope", expected_params=None)
        with pytest.raises(CollectError, match=f"DescribeRepositories: {code}: nope"):
            collect_inventory({"us-east-1": client}, SERIAL)


@pytest.mark.parametrize(
    ("repository", "expected"),
    [("ml/trainer", "continuous"), ("suporte/api", "on-push"), ("nginx", None)],
)
def test_registry_scanning_rules_cover_repositories(repository: str, expected: str | None) -> None:
    rules = [
        ("SCAN_ON_PUSH", ["suporte/*", "ml/*"]),
        ("CONTINUOUS_SCAN", ["ml/*"]),
        ("MANUAL", ["*"]),
    ]
    assert scan_frequency_for(repository, rules) == expected


def test_stop_request_marks_unread_repositories_incomplete() -> None:
    """A SIGTERM during the scan: started repositories finish, the rest are recorded
    as not read, so the run is incomplete and can never feed an apply."""
    import threading

    client = _client()
    stop = threading.Event()
    names = ["r1", "r2", "r3"]
    with Stubber(client) as stub:
        stub.add_response(
            "describe_repositories", {"repositories": [_repo(n) for n in names]}, None
        )
        _registry_scanning(stub)
        stub.add_response("describe_images", {"imageDetails": []}, None)
        _settings_calls(stub, "r1")

        # SIGTERM arrives while the first repository is being read (its last call)
        client.meta.events.register("after-call.ecr.ListTagsForResource", lambda **_: stop.set())
        inventory = collect_inventory({"us-east-1": client}, SERIAL, stop=stop)
    errors = {(e.repository, e.operation) for e in inventory.run.errors}
    assert not inventory.run.complete
    assert errors == {("r2", "stop"), ("r3", "stop")}
    assert "r1" not in {e.repository for e in inventory.run.errors}
