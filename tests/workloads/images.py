"""Deterministic test images: the same label always gives the same manifest and digest.

The recorded Kubernetes objects in ``tests/workloads/k8s/`` name images by digest; those
digests are :func:`digest_of` labels like ``"ml/api:v3-old"``, so a test can seed the
embedded registry with exactly the manifests the objects refer to
(``test_fixture_digests_are_the_seeded_ones`` keeps the two in step).
"""

from __future__ import annotations

import hashlib
import json

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
HOME = "123456789012"  # moto's default account: the embedded registry's
FOREIGN = "210987654321"
REGION = "us-east-1"


def host(account: str = HOME, region: str = REGION) -> str:
    return f"{account}.dkr.ecr.{region}.amazonaws.com"


def manifest_of(label: str) -> str:
    """An OCI image manifest whose config digest is derived from ``label``."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "size": 1000,
                "digest": "sha256:" + hashlib.sha256(label.encode()).hexdigest(),
            },
            "layers": [],
        },
        sort_keys=True,
    )


def digest_of(label: str) -> str:
    return "sha256:" + hashlib.sha256(manifest_of(label).encode()).hexdigest()
