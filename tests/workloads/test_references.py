"""Image strings as workloads carry them → registry coordinates (or not ours)."""

from __future__ import annotations

import pytest

from hygiene.collect.workloads.references import ImageUse, image_uses, parse_image

D = "sha256:" + "ab" * 32
E = "sha256:" + "cd" * 32
H = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{H}/ml/api:v3", ("ml/api", "v3", None, "123456789012", "us-east-1")),
        (f"{H}/ml/api@{D}", ("ml/api", None, D, "123456789012", "us-east-1")),
        (f"{H}/ml/api:v3@{D}", ("ml/api", "v3", D, "123456789012", "us-east-1")),
        (f"{H}/ml/api", ("ml/api", "latest", None, "123456789012", "us-east-1")),
        (f"docker-pullable://{H}/ml/api@{D}", ("ml/api", None, D, "123456789012", "us-east-1")),
        (
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/a/b:1",
            ("a/b", "1", None, "123456789012", "cn-north-1"),
        ),
        (
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/a:1",
            ("a", "1", None, "123456789012", "us-gov-west-1"),
        ),
        (
            "123456789012.dkr-ecr.sa-east-1.on.aws/suporte/cloud/api:2",
            ("suporte/cloud/api", "2", None, "123456789012", "sa-east-1"),
        ),
    ],
)
def test_ecr_images_are_parsed(text, expected):
    parsed = parse_image(text)
    assert parsed is not None
    assert (parsed.repository, parsed.tag, parsed.digest, parsed.account, parsed.region) == expected


@pytest.mark.parametrize(
    "text",
    [
        "nginx:1.27",  # Docker Hub for a container runtime
        "library/nginx",
        "docker.io/library/nginx:1.27",
        "ghcr.io/org/app@" + D,
        "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.2",
        "localhost/app:1",
        "registry:5000/app:1",
        D,  # an image id (config digest) alone names no manifest
        "docker://" + D,
        f"{H}/ml/api@sha256:short",
        f"{H}/ml/api:",
        "",
        None,
    ],
)
def test_other_registries_and_image_ids_are_not_ours(text):
    assert parse_image(text) is None


def test_other_ecr_hosts_match_the_repository_in_any_registry():
    """A VPC endpoint's own DNS name does not say the account: over-protect."""
    parsed = parse_image("vpce-0a1b2c3d-4e5f.dkr.ecr.us-east-1.vpce.amazonaws.com/ml/api:v1")
    assert parsed is not None
    assert (parsed.repository, parsed.tag, parsed.account, parsed.region) == (
        "ml/api",
        "v1",
        None,
        "us-east-1",
    )
    assert parse_image("public.ecr.aws/docker/library/nginx:1") is None
    assert parse_image("s3.amazonaws.com/bucket/key:1") is None


def test_the_file_short_form_means_this_registry():
    parsed = parse_image("ml/api:v1", require_registry=False)
    assert parsed is not None
    assert (parsed.repository, parsed.tag, parsed.account) == ("ml/api", "v1", None)
    assert parse_image("ml/api", require_registry=False).tag == "latest"
    assert parse_image("ghcr.io/org/app:1", require_registry=False) is None


def test_a_reported_digest_protects_the_running_image_too():
    [use] = image_uses("ecs", "prod/service/api", f"{H}/ml/api:v3", digest=D, running=True)
    assert (use.tag, use.digest, use.running) == ("v3", D, True)
    assert use.reason == "in-use:ecs:prod/service/api"
    pinned, reported = image_uses("ecs", "w", f"{H}/ml/api@{D}", digest=E)
    assert (pinned.digest, reported.digest, reported.tag) == (D, E, None)
    assert image_uses("ecs", "w", "nginx:1", digest=D) == []
    assert image_uses("ecs", "w", f"{H}/a:1", digest="not-a-digest") == [
        ImageUse("ecs", "w", "a", "1", None, "123456789012", "us-east-1")
    ]
