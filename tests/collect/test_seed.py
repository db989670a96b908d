"""The seeded embedded registry, read back through the ECR HTTP API (moto server)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hygiene.config import Config
from hygiene.inventory import build_images, build_repositories, namespace_of
from hygiene_demo.lab import plan_lab_registry
from hygiene_demo.manifest import SeedManifest
from hygiene_demo.mediatypes import DOCKER_LIST, OCI_INDEX
from hygiene_demo.registry import EmbeddedRegistry
from hygiene_demo.seed import seed_lab_registry


@pytest.fixture
def seeded(ecr: EmbeddedRegistry, config: Config, now: datetime) -> SeedManifest:
    """The lab registry (~1.5 s) for each test: `ecr` is emptied between tests, and one
    shared registry would not survive xdist running other modules' tests in between."""
    return seed_lab_registry(ecr, config.projects, now)


def _describe_all(client: Any) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for repo in client.describe_repositories()["repositories"]:
        name = repo["repositoryName"]
        out[name] = client.describe_images(repositoryName=name)["imageDetails"]
    return out


def _manifests(client: Any, repository: str, digests: list[str]) -> dict[str, str]:
    out = {}
    for start in range(0, len(digests), 100):
        ids = [{"imageDigest": d} for d in digests[start : start + 100]]
        response = client.batch_get_image(repositoryName=repository, imageIds=ids)
        assert response["failures"] == []
        for image in response["images"]:
            out[image["imageId"]["imageDigest"]] = image["imageManifest"]
    return out


def test_plan_has_the_lab_shape(config: Config, now: datetime) -> None:
    plan = plan_lab_registry(config.projects, now)
    counts = plan.counts()
    assert 35 <= counts["repositories"] <= 45
    assert 1300 <= counts["images"] <= 1700
    names = [r.name for r in plan.repositories]
    namespaces = {namespace_of(n) for n in names}
    assert set(config.namespaces) <= namespaces
    assert {"suporte-cloud", "suporte-services", "suporte_infra", "tcc-joao", None} <= namespaces
    assert "tcc-joao" not in config.namespaces
    facts = plan.expectations()
    assert facts["unregistered_namespaces"] == ["tcc-joao"]
    assert facts["fragmented_namespaces"] == {
        "suporte": ["suporte-cloud", "suporte-services", "suporte_infra"]
    }
    assert any(n.startswith("suporte/cloud/") for n in names)
    assert any(n.count("/") >= 3 for n in names)  # depth > 3
    assert any(n.startswith("suporte/legacy-") for n in names)
    per_repo = Counter(i.repository for i in plan.images)
    assert max(per_repo.values()) > 100
    assert [n for n in names if per_repo[n] == 0] == sorted(
        plan.expectations()["empty_repositories"]
    )
    pushed = [i.pushed_at for i in plan.images]
    assert now - timedelta(days=740) < min(pushed) < now - timedelta(days=700)
    assert max(pushed) > now - timedelta(days=1)
    assert counts["indexes"] > 50 and counts["referrers"] > 20 and counts["archived"] == 4
    # Realistic pulls: some never, some today, some only long ago.
    pulls = [i.last_pull for i in plan.images]
    assert 0.1 < pulls.count(None) / len(pulls) < 0.5
    assert sum(p is not None and p > now - timedelta(days=1) for p in pulls) >= 20
    assert sum(p is not None and p < now - timedelta(days=365) for p in pulls) >= 20
    for image in plan.images:
        assert image.pushed_at.tzinfo is not None and image.pushed_at <= now
        assert image.last_pull is None or image.pushed_at < image.last_pull <= now
    by_digest = {(r.name, r.created_at) for r in plan.repositories}
    first_push = {}
    for image in plan.images:
        first_push.setdefault(image.repository, image.pushed_at)
    for name, created in by_digest:
        assert name not in first_push or created < first_push[name]


def test_repositories_read_back_through_the_api(
    ecr: EmbeddedRegistry, seeded: SeedManifest
) -> None:
    client = ecr.client()
    described = {r["repositoryName"]: r for r in client.describe_repositories()["repositories"]}
    assert set(described) == {r.name for r in seeded.repositories}
    for repo in seeded.repositories:
        live = described[repo.name]
        assert live["repositoryArn"] == repo.arn
        assert live["createdAt"] == repo.created_at
        assert live["imageScanningConfiguration"]["scanOnPush"] is repo.scan_on_push
        assert live["imageTagMutability"] == repo.tag_mutability
        exclusions = [f["filter"] for f in live.get("imageTagMutabilityExclusionFilters") or []]
        assert tuple(exclusions) == repo.tag_mutability_exclusions
        assert live["encryptionConfiguration"].get("encryptionType") == repo.encryption
        assert live["encryptionConfiguration"].get("kmsKey") == repo.kms_key
        try:
            lifecycle = client.get_lifecycle_policy(repositoryName=repo.name)["lifecyclePolicyText"]
        except client.exceptions.LifecyclePolicyNotFoundException:
            lifecycle = None
        assert lifecycle == repo.lifecycle_policy
        try:
            policy = client.get_repository_policy(repositoryName=repo.name)["policyText"]
        except client.exceptions.RepositoryPolicyNotFoundException:
            policy = None
        assert policy == repo.repository_policy
        tags = client.list_tags_for_resource(resourceArn=repo.arn)["tags"]
        assert {t["Key"]: t["Value"] for t in tags} == dict(repo.resource_tags)
    # Most repositories are not compliant; a few are on every control.
    compliant = seeded.expectations()["compliant_repositories"]
    assert 2 <= len(compliant) <= 5
    for name in compliant:
        assert described[name]["imageTagMutability"].startswith("IMMUTABLE")
        assert described[name]["encryptionConfiguration"]["encryptionType"] == "KMS"
    no_scan = [r for r in described.values() if not r["imageScanningConfiguration"]["scanOnPush"]]
    assert len(no_scan) > len(described) * 0.8
    keep = seeded.expectations()["opt_out_repository"]
    assert seeded.repository(keep).resource_tags["hygiene:keep"] == "true"


def test_images_read_back_through_the_api(ecr: EmbeddedRegistry, seeded: SeedManifest) -> None:
    live = _describe_all(ecr.client())
    assert sum(len(v) for v in live.values()) == len(seeded.images)
    for name, details in live.items():
        expected = {i.digest: i for i in seeded.images_of(name)}
        assert {d["imageDigest"] for d in details} == set(expected)
        for detail in details:
            image = expected[detail["imageDigest"]]
            assert sorted(detail.get("imageTags", [])) == sorted(image.tags)
            assert detail["imagePushedAt"] == image.pushed_at
            assert detail.get("lastRecordedPullTime") == image.last_pull
            assert detail["imageSizeInBytes"] == image.size_bytes
            assert detail["imageManifestMediaType"] == image.manifest_media_type
            assert detail.get("artifactMediaType") == image.artifact_media_type
            assert detail.get("subjectManifestDigest") == image.subject_digest
            assert detail["imageStatus"] == image.status
            assert detail.get("lastArchivedAt") == image.archived_at


def test_digests_are_sha256_of_the_stored_manifests(
    ecr: EmbeddedRegistry, seeded: SeedManifest
) -> None:
    client = ecr.client()
    for repo in seeded.repositories:
        images = {i.digest: i for i in seeded.images_of(repo.name)}
        manifests = _manifests(client, repo.name, list(images))
        assert set(manifests) == set(images)
        for digest, text in manifests.items():
            assert digest == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
            document = json.loads(text)
            assert document["schemaVersion"] == 2
            assert document["mediaType"] == images[digest].manifest_media_type
            if images[digest].is_index:
                assert [m["digest"] for m in document["manifests"]] == list(
                    images[digest].child_digests
                )
            else:
                sizes = [layer["size"] for layer in document["layers"]]
                assert sum(sizes) + document["config"]["size"] == images[digest].size_bytes


def test_index_children_are_untagged_and_listed_by_their_index(
    ecr: EmbeddedRegistry, seeded: SeedManifest
) -> None:
    live = _describe_all(ecr.client())
    indexes = [i for i in seeded.images if i.is_index]
    assert {i.manifest_media_type for i in indexes} == {OCI_INDEX, DOCKER_LIST}
    for index in indexes:
        details = {d["imageDigest"]: d for d in live[index.repository]}
        children = [details[c] for c in index.child_digests]  # KeyError: child missing
        assert len(children) >= 2
        assert all("imageTags" not in c for c in children)
        # ECR reports an index's size as its largest child's (a provenance manifest is tiny).
        sizes = [c["imageSizeInBytes"] for c in children]
        assert details[index.digest]["imageSizeInBytes"] == max(sizes)
    # Some indexes lost their tag to a rebuild: untagged index, children still listed.
    assert seeded.expectations()["untagged_indexes"]


def test_referrers_and_legacy_signatures(ecr: EmbeddedRegistry, seeded: SeedManifest) -> None:
    facts = seeded.expectations()
    client = ecr.client()
    repo = facts["referrer_repository"]
    digests = {
        d["imageDigest"]: d for d in client.describe_images(repositoryName=repo)["imageDetails"]
    }
    referrers = [d for d in digests.values() if "subjectManifestDigest" in d]
    assert len(referrers) > 20
    manifests = _manifests(client, repo, [r["imageDigest"] for r in referrers])
    for referrer in referrers:
        document = json.loads(manifests[referrer["imageDigest"]])
        assert document["subject"]["digest"] == referrer["subjectManifestDigest"]
        assert document["artifactType"] == referrer["artifactMediaType"]
    orphans = [r for r in referrers if r["subjectManifestDigest"] not in digests]
    assert [o["imageDigest"] for o in orphans] == [facts["orphan_referrer_digest"]]
    assert orphans[0]["subjectManifestDigest"] == facts["orphan_referrer_subject"]
    assert facts["signed_subject_digest"] in {r["subjectManifestDigest"] for r in referrers}

    repo = facts["legacy_signature_repository"]
    details = client.describe_images(repositoryName=repo)["imageDetails"]
    present = {d["imageDigest"] for d in details}
    signature_tags = [t for d in details for t in d.get("imageTags", []) if t.startswith("sha256-")]
    subjects = {"sha256:" + t[len("sha256-") :].split(".")[0] for t in signature_tags}
    assert facts["legacy_signed_digest"] in subjects
    assert subjects - present == {"sha256:" + facts["orphan_signature_tag"][7:71]}
    assert any(t.endswith(".att") for t in signature_tags)


def test_floating_latest_drifts_in_one_repository_only(
    ecr: EmbeddedRegistry, seeded: SeedManifest
) -> None:
    facts = seeded.expectations()
    live = _describe_all(ecr.client())

    def newest_and_latest(name: str) -> tuple[str, str]:
        tagged = [d for d in live[name] if d.get("imageTags")]
        tagged = [d for d in tagged if not d["imageTags"][0].startswith("sha256-")]
        newest = max(tagged, key=lambda d: d["imagePushedAt"])["imageDigest"]
        latest = next(d["imageDigest"] for d in tagged if "latest" in d["imageTags"])
        return newest, latest

    newest, latest = newest_and_latest(facts["drifting_latest_repository"])
    assert newest != latest == facts["drifting_latest_digest"]
    assert len(facts["correct_latest_repositories"]) >= 10
    for name in facts["correct_latest_repositories"]:
        newest, latest = newest_and_latest(name)
        assert newest == latest
    only = [d for d in live[facts["only_latest_repository"]] if d.get("imageTags")]
    assert [d["imageTags"] for d in only] == [["latest"]]


def test_policies_empty_repositories_and_protected_tags(
    ecr: EmbeddedRegistry, seeded: SeedManifest, now: datetime
) -> None:
    facts = seeded.expectations()
    client = ecr.client()
    public = json.loads(
        client.get_repository_policy(repositoryName=facts["public_repository"])["policyText"]
    )
    assert [s["Principal"] for s in public["Statement"]] == ["*"]
    foreign = json.loads(
        client.get_repository_policy(repositoryName=facts["cross_account_repository"])["policyText"]
    )
    principal = foreign["Statement"][0]["Principal"]["AWS"]
    assert f"::{facts['foreign_account']}:" in principal and ecr.account not in principal

    described = {r["repositoryName"]: r for r in client.describe_repositories()["repositories"]}
    for name in facts["empty_repositories"]:
        assert client.describe_images(repositoryName=name)["imageDetails"] == []
    assert described[facts["old_empty_repository"]]["createdAt"] < now - timedelta(days=365)
    assert described[facts["new_empty_repository"]]["createdAt"] > now - timedelta(days=7)

    tags = {t for d in _describe_all(client).values() for i in d for t in i.get("imageTags", [])}
    assert {"prod", "stable", "latest", "main", "develop"} <= tags
    assert any(t.startswith("release-") for t in tags)
    assert len(tags) > 800  # semver, v-semver, dates, git shas, build numbers


def test_untagged_leftovers_on_both_sides_of_seven_days(seeded: SeedManifest) -> None:
    facts = seeded.expectations()
    week_ago = seeded.now - timedelta(days=7)
    older = [seeded.image(d) for d in facts["untagged_leftovers_older_than_7_days"]]
    younger = [seeded.image(d) for d in facts["untagged_leftovers_younger_than_7_days"]]
    assert len(older) >= 20 and len(younger) >= 1
    assert all(not i.tags and i.pushed_at < week_ago for i in older)
    assert all(not i.tags and i.pushed_at >= week_ago for i in younger)


def test_manifest_records_build_a_typed_inventory(seeded: SeedManifest) -> None:
    images = build_images(seeded.image_records())
    repositories = build_repositories(seeded.repository_records(), images)
    assert len(images) == len(seeded.images) and len(repositories) == len(seeded.repositories)
    children = images[images["parent_indexes"].map(len) > 0]
    assert len(children) == seeded.counts()["index_children"]
    assert images["is_signature_tag"].sum() == seeded.counts()["legacy_signatures"]
    assert int(repositories["total_bytes"].sum()) == seeded.counts()["bytes"]


# Seeds the lab registry twice (~1.5 s each): the determinism it checks needs two runs.
def test_seeding_is_deterministic(ecr: EmbeddedRegistry, config: Config, now: datetime) -> None:
    first = seed_lab_registry(ecr, config.projects, now, rng_seed=11)
    state = _describe_all(ecr.client())
    ecr.reset()
    second = seed_lab_registry(ecr, config.projects, now, rng_seed=11)
    assert first == second
    assert _describe_all(ecr.client()) == state
    other = plan_lab_registry(config.projects, now, rng_seed=12)
    assert {i.digest for i in other.images}.isdisjoint({i.digest for i in first.images})
    assert [r.name for r in other.repositories] == [r.name for r in first.repositories]


def test_other_projects_registries(now: datetime) -> None:
    plan = plan_lab_registry(["ml", "astro", "tcc-joao"], now)
    names = {r.name for r in plan.repositories}
    assert {"astro/app", "astro/worker", "ml/inference-api", "nginx"} <= names
    assert not any(n.startswith("suporte") for n in names)
    assert plan.expectations()["fragmented_namespaces"] == {}
    unregistered = plan.expectations()["unregistered_namespaces"]
    assert unregistered != ["tcc-joao"] and f"{unregistered[0]}/crawler" in names
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_lab_registry(["ml"], datetime(2026, 1, 1))


def test_now_is_normalised_to_utc(config: Config) -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2026, 11, 28, 9, 0, tzinfo=ZoneInfo("America/Fortaleza"))
    plan = plan_lab_registry(config.projects, local)
    assert plan.now == datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert plan == plan_lab_registry(config.projects, plan.now)


def test_docs_table_matches_the_seeded_registry(config: Config, now: datetime) -> None:
    from pathlib import Path

    from hygiene_demo.manifest import repository_table

    docs = (Path(__file__).resolve().parents[2] / "docs" / "embedded-registry.md").read_text()
    assert repository_table(plan_lab_registry(config.projects, now)) in docs


def test_summary_line(seeded: SeedManifest) -> None:
    from hygiene_demo.manifest import summary_line

    line = summary_line(seeded)
    assert line.startswith(f"seeded {len(seeded.repositories)} repositories, ")
    assert f"{len(seeded.images)} images" in line
