"""The in-use match itself: by digest, by tag, in the registry the reference names."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from hygiene.inventory import build_images, build_repositories
from hygiene.rules.in_use import in_use
from hygiene.rules.protections import build_tag_table, derive

NOW = datetime(2026, 11, 1, tzinfo=UTC)
OCI = "application/vnd.oci.image.manifest.v1+json"
HOME, OTHER = "123456789012", "210987654321"


def digest(char: str) -> str:
    return "sha256:" + char * 64


def frames(rows: list[tuple[str, str, str, str, list[str]]]):
    records = [
        {
            "account": account,
            "region": region,
            "repository": repository,
            "digest": digest(char),
            "tags": tags,
            "pushed_at": NOW,
            "size_bytes": 1,
            "manifest_media_type": OCI,
        }
        for account, region, repository, char, tags in rows
    ]
    images = build_images(records)
    keys = {(a, r, n) for a, r, n, _, _ in rows}
    repositories = build_repositories(
        [{"account": a, "region": r, "name": n} for a, r, n in sorted(keys)], images
    )
    derived, _ = derive(images, repositories)
    return derived, build_tag_table(derived)


def uses(*rows: tuple) -> pd.DataFrame:
    columns = ["source", "where", "account", "region", "repository", "tag", "digest"]
    return pd.DataFrame([dict(zip(columns, row, strict=True)) for row in rows], columns=columns)


def test_digest_and_tag_references_in_their_registry_only():
    images, tags = frames(
        [
            (HOME, "us-east-1", "ml/api", "a", ["v1"]),
            (HOME, "us-east-1", "ml/api", "b", []),
            (HOME, "us-east-1", "ml/api", "c", ["v2", "x"]),
            (HOME, "sa-east-1", "ml/api", "a", ["v1"]),  # a replica in another region
            (OTHER, "us-east-1", "ml/api", "d", ["v1"]),  # another account's registry
            (HOME, "us-east-1", "ml/web", "e", ["v1"]),  # same tag, other repository
        ]
    )
    found = in_use(
        images,
        tags,
        uses(
            ("ecs", "prod/service/api", HOME, "us-east-1", "ml/api", "v1", digest("b")),
            ("file", "in-use.txt:1", None, None, "ml/api", "x", None),
            ("kubernetes", "lab/ml/pod/p", HOME, "us-east-1", "ml/api", None, digest("c")),
        ),
    )
    assert found.used.tolist() == [True, True, True, False, False, False]
    assert found.reasons.tolist() == [
        "in-use:ecs:prod/service/api",  # by tag: the image v1 points to now
        "in-use:ecs:prod/service/api",  # by the digest the running task reports
        "in-use:file:in-use.txt:1 (+1 more)",  # the file's short form matches any registry
        None,
        None,
        None,
    ]


def test_nothing_in_use_and_unknown_repositories():
    images, tags = frames([(HOME, "us-east-1", "ml/api", "a", ["v1"])])
    assert not in_use(images, tags, uses()).used.any()
    assert not in_use(
        images, tags, uses(("ecs", "w", HOME, "us-east-1", "ml/other", "v1", None))
    ).used.any()
