"""Collector round trip against the in-process moto server: every inventory column.

Known images are put straight into moto's backend (back-dated pushes, recorded pulls,
digest = sha256 of the manifest bytes as ECR computes it) and read back through the real
wire protocol by the production collector.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from hygiene.collect.ecr import collect_inventory
from hygiene.collect.session import ApiCallCounter, ecr_client
from hygiene.config import CollectSettings
from hygiene.inventory import IMAGE_DTYPES, REPOSITORY_DTYPES, read_snapshot, write_snapshot
from hygiene_demo.registry import EmbeddedRegistry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
COSIGN = "application/vnd.dev.cosign.artifact.sig.v1+json"
PUSH = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PULL = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
SETTINGS = CollectSettings(max_workers=4, max_attempts=1)


def _manifest(size: int, salt: str, subject: str | None = None, artifact: str | None = None) -> str:
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": artifact or "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + hashlib.sha256(salt.encode()).hexdigest(),
            "size": size,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + hashlib.sha256((salt + "l").encode()).hexdigest(),
                "size": size,
            }
        ],
    }
    if artifact:
        body["artifactType"] = artifact
    if subject:
        body["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject, "size": 100}
    return json.dumps(body)


def _put(backend: Any, repo: str, text: str, tag: str | None, media: str = OCI_MANIFEST) -> Any:
    digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    image = backend.put_image(repo, text, tag, media, digest)
    image.image_pushed_at = int(PUSH.timestamp())
    return image


@pytest.fixture
def known(ecr: EmbeddedRegistry) -> dict[str, Any]:
    client = ecr.client()
    client.create_repository(
        repositoryName="suporte/cloud/api",
        imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
        encryptionConfiguration={
            "encryptionType": "KMS",
            "kmsKey": "arn:aws:kms:us-east-1:123456789012:key/k1",
        },
        tags=[{"Key": "hygiene:keep", "Value": "true"}],
    )
    client.create_repository(repositoryName="nginx")
    client.put_registry_scanning_configuration(
        scanType="ENHANCED",
        rules=[
            {
                "scanFrequency": "CONTINUOUS_SCAN",
                "repositoryFilters": [{"filter": "suporte/*", "filterType": "WILDCARD"}],
            }
        ],
    )
    policy = json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": "untagged",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": 14,
                    },
                    "action": {"type": "expire"},
                }
            ]
        }
    )
    client.put_lifecycle_policy(repositoryName="suporte/cloud/api", lifecyclePolicyText=policy)
    repo_policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "public",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["ecr:BatchGetImage"],
                }
            ],
        }
    )
    client.set_repository_policy(repositoryName="nginx", policyText=repo_policy)

    backend = ecr.backend()
    amd = _put(backend, "suporte/cloud/api", _manifest(30_000_000, "amd"), None)
    arm = _put(backend, "suporte/cloud/api", _manifest(28_000_000, "arm"), None)
    index_text = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": amd.image_digest,
                    "size": 500,
                    "platform": {"architecture": "amd64", "os": "linux"},
                },
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": arm.image_digest,
                    "size": 500,
                    "platform": {"architecture": "arm64", "os": "linux"},
                },
            ],
        }
    )
    index = _put(backend, "suporte/cloud/api", index_text, "v1.2.0", OCI_INDEX)
    index.update_tag("latest")
    index.last_recorded_pull_time = PULL
    signature = _put(
        backend,
        "suporte/cloud/api",
        _manifest(900, "sig", subject=index.image_digest, artifact=COSIGN),
        None,
    )
    signature.artifact_media_type = COSIGN  # subjectManifestDigest deliberately absent
    legacy_tag = "sha256-" + index.image_digest.split(":")[1] + ".sig"
    legacy = _put(backend, "suporte/cloud/api", _manifest(800, "legacy"), legacy_tag)
    plain = _put(backend, "nginx", _manifest(50_000_000, "nginx"), "1.27")
    plain.image_status = "ARCHIVED"
    return {
        "amd": amd,
        "arm": arm,
        "index": index,
        "signature": signature,
        "legacy": legacy,
        "plain": plain,
        "policy": policy,
        "repo_policy": repo_policy,
    }


def test_every_inventory_column_on_known_images(
    ecr: EmbeddedRegistry, known: dict[str, Any]
) -> None:
    session = ecr.session()
    counter = ApiCallCounter()
    counter.attach(session)
    client = ecr_client(session, "us-east-1", SETTINGS, ecr.endpoint_url)
    inventory = collect_inventory({"us-east-1": client}, SETTINGS, api_calls=counter.as_dict)
    images = inventory.images.set_index("digest")
    repos = inventory.repositories.set_index("name")

    assert {c: str(t) for c, t in inventory.images.dtypes.items()} == {
        c: str(pd.Series(dtype=t).dtype) if t != "datetime64[ns, UTC]" else t
        for c, t in IMAGE_DTYPES.items()
    }
    assert list(inventory.repositories.columns) == list(REPOSITORY_DTYPES)

    index = images.loc[known["index"].image_digest]
    amd = images.loc[known["amd"].image_digest]
    arm = images.loc[known["arm"].image_digest]
    signature = images.loc[known["signature"].image_digest]
    legacy = images.loc[known["legacy"].image_digest]
    plain = images.loc[known["plain"].image_digest]

    assert index["account"] == "123456789012" and index["region"] == "us-east-1"
    assert index["repository"] == "suporte/cloud/api" and index["namespace"] == "suporte"
    assert sorted(index["tags"]) == ["latest", "v1.2.0"] and index["tag_count"] == 2
    assert index["pushed_at"] == pd.Timestamp(PUSH)
    assert index["last_pull"] == pd.Timestamp(PULL)
    assert index["is_index"] and index["manifest_media_type"] == OCI_INDEX
    assert index["storage_bytes"] == 0  # an index is never counted on top of its children
    assert sorted(index["child_digests"]) == sorted([amd.name, arm.name])
    assert list(index["parent_indexes"]) == []
    for child, size in ((amd, 30_000_000), (arm, 28_000_000)):
        assert child["tags"] == [] and child["tag_count"] == 0
        assert list(child["parent_indexes"]) == [index.name]
        assert child["size_bytes"] == size and child["storage_bytes"] == size
        assert pd.isna(child["last_pull"]) and not child["is_index"]
    assert signature["subject_digest"] == index.name  # read from the manifest's subject
    assert signature["artifact_media_type"] == COSIGN
    assert not signature["is_signature_tag"]
    assert legacy["is_signature_tag"] and legacy["subject_digest"] == index.name
    assert plain["namespace"] is pd.NA or pd.isna(plain["namespace"])
    assert plain["status"] == "ARCHIVED" and index["status"] == "ACTIVE"
    assert plain["size_bytes"] == 50_000_000
    assert pd.isna(plain["subject_digest"]) and pd.isna(plain["artifact_media_type"])

    api = repos.loc["suporte/cloud/api"]
    assert api["namespace"] == "suporte"
    assert api["tag_mutability"] == "IMMUTABLE" and api["scan_on_push"]
    assert api["encryption"] == "KMS" and api["kms_key"].endswith(":key/k1")
    assert json.loads(api["lifecycle_policy"]) == json.loads(known["policy"])
    assert pd.isna(api["repository_policy"])
    assert api["resource_tags"] == {"hygiene:keep": "true"}
    assert api["image_count"] == 5
    assert api["total_bytes"] == 30_000_000 + 28_000_000 + 900 + 800
    assert api["arn"].endswith(":repository/suporte/cloud/api")
    assert api["uri"].endswith("/suporte/cloud/api")
    assert pd.isna(api["scan_error"])
    assert api["registry_scan_frequency"] == "continuous"
    assert isinstance(api["created_at"], pd.Timestamp) and api["created_at"].tz is not None
    nginx = repos.loc["nginx"]
    assert pd.isna(nginx["namespace"]) and not nginx["scan_on_push"]
    assert nginx["tag_mutability"] == "MUTABLE" and nginx["encryption"] == "AES256"
    assert json.loads(nginx["repository_policy"]) == json.loads(known["repo_policy"])
    assert pd.isna(nginx["lifecycle_policy"]) and nginx["resource_tags"] == {}
    assert pd.isna(nginx["registry_scan_frequency"])

    assert inventory.run.complete
    calls = inventory.run.api_calls
    assert calls["DescribeRepositories"] == 1 and calls["DescribeImages"] == 2
    # one BatchGetImage for the index + the artifact without subjectManifestDigest
    assert calls["BatchGetImage"] == 1
    assert calls["GetLifecyclePolicy"] == calls["GetRepositoryPolicy"] == 2
    assert calls["ListTagsForResource"] == 2
    assert calls["GetRegistryScanningConfiguration"] == 1
    assert inventory.summary() == {"repositories": 2, "images": 6, "bytes": 108_001_700}


def test_snapshot_round_trip_preserves_everything(
    ecr: EmbeddedRegistry, known: dict[str, Any], tmp_path: Any
) -> None:
    client = ecr_client(ecr.session(), "us-east-1", SETTINGS, ecr.endpoint_url)
    inventory = collect_inventory({"us-east-1": client}, SETTINGS)
    again = read_snapshot(write_snapshot(inventory, tmp_path / "snap.parquet"))
    pd.testing.assert_frame_equal(again.images, inventory.images)
    pd.testing.assert_frame_equal(again.repositories, inventory.repositories)
    assert again.run.id == inventory.run.id
    assert again.run.source.startswith("snapshot:")
