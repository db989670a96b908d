"""The test data builders mean what the production code reads them as."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from hygiene.model import Action, FixSafety, Severity
from hygiene.rules import RULES
from tests import builders
from tests.builders import NOW, digest_of


def test_aliases_become_sha256_digests_and_digests_stay() -> None:
    assert digest_of("a") == digest_of(digest_of("a"))
    assert digest_of("a").startswith("sha256:") and len(digest_of("a")) == 7 + 64
    assert builders.aliases(["a", "b"]) == {digest_of("a"): "a", digest_of("b"): "b"}


def test_index_children_referrers_and_signature_tags_are_read_as_such() -> None:
    inventory = builders.inventory(
        [
            builders.image_row("idx", tags=["v1"], children=["amd64"], size=500),
            builders.image_row("amd64", size=500),
            builders.image_row("sbom", subject="amd64", artifact_media_type="text/spdx"),
            builders.image_row("sig", tags=["sig:idx"]),
        ]
    )
    images = inventory.images.set_index(inventory.images["digest"].astype(str))
    index = images.loc[digest_of("idx")]
    assert index["is_index"] and index["storage_bytes"] == 0
    assert images.loc[digest_of("amd64"), "parent_indexes"] == [digest_of("idx")]
    assert images.loc[digest_of("sbom"), "subject_digest"] == digest_of("amd64")
    signature = images.loc[digest_of("sig")]
    assert signature["is_signature_tag"] and signature["subject_digest"] == digest_of("idx")
    assert images.loc[digest_of("amd64"), "pushed_at"] == NOW - timedelta(days=1)


def test_inventory_adds_a_repository_row_for_every_repository_an_image_names() -> None:
    inventory = builders.inventory(
        [builders.image_row("a", "ml/train"), builders.image_row("b", "nginx", region="eu-west-1")],
        [builders.repository_row("ml/empty", scan_on_push=False)],
    )
    repositories = inventory.repositories.set_index("name")
    assert sorted(repositories.index) == ["ml/empty", "ml/train", "nginx"]
    assert repositories.loc["ml/train", "image_count"] == 1
    assert repositories.loc["nginx", "region"] == "eu-west-1"
    assert pd.isna(repositories.loc["nginx", "namespace"])
    assert not repositories.loc["ml/empty", "scan_on_push"]
    assert inventory.run.complete and inventory.run.started_at == NOW


def test_findings_default_to_the_catalogue() -> None:
    untagged = builders.finding("IM001", "ml/train", digest="a", unit=["a", "b"])
    assert untagged.rule == RULES["IM001"].name
    assert untagged.fix_safety is RULES["IM001"].fix_safety is FixSafety.SAFE
    assert untagged.namespace == "ml" and untagged.image_digest == digest_of("a")
    assert untagged.details["unit"] == [digest_of("a"), digest_of("b")]
    unknown = builders.finding("XX999", None, namespace="ml")
    assert (unknown.severity, unknown.fix_safety) == (Severity.WARNING, FixSafety.UNSAFE)


def test_proposal_ids_include_where_the_change_is() -> None:
    here = builders.proposal(digests=["a"])
    assert here.target == {"digests": [digest_of("a")]} and here.action is Action.DELETE_IMAGES
    assert builders.proposal(digests=["a"]).id == here.id
    assert builders.proposal(repository="suporte/web", digests=["a"]).id != here.id
    assert builders.proposal(digests=["a"], region="us-west-2").id != here.id
