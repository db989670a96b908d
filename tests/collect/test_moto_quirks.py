"""Where moto's ECR differs from ECR, pinned so an upgrade that changes it is noticed.

The seeder (hygiene_demo.seed) works around each of these; if one of these tests
fails after a moto upgrade, revisit the matching workaround in ``write_plan``.
"""

from __future__ import annotations

import hashlib
import json

from hygiene_demo.mediatypes import DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST
from hygiene_demo.registry import EmbeddedRegistry


def _manifest(layer: str, config_size: int = 1234) -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": DOCKER_CONFIG,
                "digest": "sha256:" + "c" * 64,
                "size": config_size,
            },
            "layers": [{"mediaType": DOCKER_LAYER, "digest": layer, "size": 50_000_000}],
        }
    )


def test_moto_makes_up_digests_unless_one_is_passed(ecr: EmbeddedRegistry) -> None:
    client = ecr.client()
    client.create_repository(repositoryName="quirks")
    text = _manifest("sha256:" + "a" * 64)
    pushed = client.put_image(repositoryName="quirks", imageManifest=text, imageTag="v1")
    real = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    assert pushed["image"]["imageId"]["imageDigest"] != real  # ECR would report `real`


def test_moto_deletes_the_old_image_when_a_tag_moves(ecr: EmbeddedRegistry) -> None:
    client = ecr.client()
    client.create_repository(repositoryName="quirks")
    client.put_image(
        repositoryName="quirks", imageManifest=_manifest("sha256:" + "a" * 64), imageTag="v1"
    )
    client.put_image(
        repositoryName="quirks", imageManifest=_manifest("sha256:" + "b" * 64), imageTag="v1"
    )
    images = client.describe_images(repositoryName="quirks")["imageDetails"]
    assert len(images) == 1  # ECR keeps the first image, untagged


def test_moto_reports_config_size_and_no_pull_time(ecr: EmbeddedRegistry) -> None:
    client = ecr.client()
    client.create_repository(repositoryName="quirks")
    client.put_image(
        repositoryName="quirks", imageManifest=_manifest("sha256:" + "a" * 64, 4321), imageTag="v1"
    )
    client.batch_get_image(repositoryName="quirks", imageIds=[{"imageTag": "v1"}])  # a "pull"
    (detail,) = client.describe_images(repositoryName="quirks")["imageDetails"]
    assert detail["imageSizeInBytes"] == 4321  # ECR: the layers' 50 MB
    assert "lastRecordedPullTime" not in detail


def test_moto_ignores_max_results(ecr: EmbeddedRegistry) -> None:
    client = ecr.client()
    for n in range(3):
        client.create_repository(repositoryName=f"quirks-{n}")
    page = client.describe_repositories(maxResults=1)
    assert len(page["repositories"]) == 3 and "nextToken" not in page
