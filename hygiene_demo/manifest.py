"""What was seeded, as plain data: :class:`SeedManifest` and its repositories and images.

The collector's round-trip test compares what it reads through the HTTP API with this;
tests of other stages build a realistic inventory offline from it with
``build_images(manifest.image_records())``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hygiene.inventory import SIGNATURE_TAG, namespace_of
from hygiene.units import human_bytes
from hygiene_demo.mediatypes import DOCKER_LIST, OCI_INDEX

if TYPE_CHECKING:
    from hygiene_demo.planner import Planner


@dataclass(frozen=True)
class SeededRepository:
    name: str
    namespace: str | None
    arn: str
    created_at: datetime
    scan_on_push: bool
    tag_mutability: str
    tag_mutability_exclusions: tuple[str, ...]
    encryption: str
    kms_key: str | None
    lifecycle_policy: str | None
    repository_policy: str | None
    resource_tags: Mapping[str, str]
    description: str  # why this repository is in the demo (for docs and reports)


@dataclass(frozen=True)
class SeededImage:
    repository: str
    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime
    last_pull: datetime | None
    size_bytes: int  # imageSizeInBytes as the embedded ECR reports it
    manifest_media_type: str
    artifact_media_type: str | None
    subject_digest: str | None  # OCI referrer subject (subjectManifestDigest)
    child_digests: tuple[str, ...]  # manifests an index lists; empty otherwise
    status: str = "ACTIVE"
    archived_at: datetime | None = None
    manifest: str = field(default="", repr=False, compare=True)

    @property
    def is_index(self) -> bool:
        return self.manifest_media_type in (OCI_INDEX, DOCKER_LIST)


@dataclass(frozen=True)
class SeedManifest:
    """What was seeded. Equality ignores ``elapsed_seconds`` (determinism tests)."""

    account: str
    region: str
    now: datetime
    rng_seed: int
    repositories: tuple[SeededRepository, ...]
    images: tuple[SeededImage, ...]
    facts: Mapping[str, Any] = field(repr=False)
    elapsed_seconds: float = field(default=0.0, compare=False)

    # ---- look-ups
    def repository(self, name: str) -> SeededRepository:
        for repo in self.repositories:
            if repo.name == name:
                return repo
        raise KeyError(name)

    def image(self, digest: str, repository: str | None = None) -> SeededImage:
        for image in self.images:
            if image.digest == digest and (repository is None or image.repository == repository):
                return image
        raise KeyError(digest)

    def images_of(self, repository: str) -> list[SeededImage]:
        return [i for i in self.images if i.repository == repository]

    def counts(self) -> dict[str, int]:
        children = {c for i in self.images for c in i.child_digests}
        return {
            "repositories": len(self.repositories),
            "images": len(self.images),
            "indexes": sum(i.is_index for i in self.images),
            "index_children": sum(i.digest in children for i in self.images),
            "referrers": sum(i.subject_digest is not None for i in self.images),
            "legacy_signatures": sum(
                bool(i.tags) and all(SIGNATURE_TAG.match(t) for t in i.tags) for i in self.images
            ),
            "untagged": sum(not i.tags for i in self.images),
            "never_pulled": sum(i.last_pull is None for i in self.images),
            "archived": sum(i.status == "ARCHIVED" for i in self.images),
            "bytes": sum(i.size_bytes for i in self.images if not i.is_index),
        }

    def expectations(self) -> dict[str, Any]:
        """Facts about the seeded registry that tests of other stages can rely on."""
        return dict(self.facts)

    # ---- records shaped like the inventory (hygiene.inventory.build_images / _repositories)
    def image_records(self) -> list[dict[str, Any]]:
        return [
            {
                "account": self.account,
                "region": self.region,
                "repository": i.repository,
                "namespace": namespace_of(i.repository),
                "digest": i.digest,
                "tags": list(i.tags),
                "pushed_at": i.pushed_at,
                "last_pull": i.last_pull,
                "size_bytes": i.size_bytes,
                "manifest_media_type": i.manifest_media_type,
                "artifact_media_type": i.artifact_media_type,
                "status": i.status,
                "child_digests": list(i.child_digests),
                "subject_digest": i.subject_digest,
            }
            for i in self.images
        ]

    def repository_records(self) -> list[dict[str, Any]]:
        return [
            {
                "account": self.account,
                "region": self.region,
                "name": r.name,
                "namespace": r.namespace,
                "arn": r.arn,
                "uri": f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{r.name}",
                "created_at": r.created_at,
                "tag_mutability": r.tag_mutability,
                "tag_mutability_exclusions": list(r.tag_mutability_exclusions),
                "scan_on_push": r.scan_on_push,
                "encryption": r.encryption,
                "kms_key": r.kms_key,
                "lifecycle_policy": r.lifecycle_policy,
                "repository_policy": r.repository_policy,
                "resource_tags": dict(r.resource_tags),
            }
            for r in self.repositories
        ]


GIB = 1024**3


def summary_line(manifest: SeedManifest) -> str:
    """One line for ``hygiene demo`` output and logs."""
    counts = manifest.counts()
    return (
        f"seeded {counts['repositories']} repositories, {counts['images']} images "
        f"({counts['indexes']} indexes, {counts['index_children']} index children, "
        f"{counts['referrers']} referrers, {counts['untagged']} untagged, "
        f"{human_bytes(counts['bytes'])}) in {manifest.elapsed_seconds:.2f}s"
    )


def repository_table(manifest: SeedManifest) -> str:
    """A Markdown table of the seeded repositories (``docs/embedded-registry.md``)."""
    lines = [
        "| repository | images | untagged | GiB | what it shows |",
        "|---|---:|---:|---:|---|",
    ]
    for repo in manifest.repositories:
        images = manifest.images_of(repo.name)
        untagged = sum(not i.tags for i in images)
        size = sum(i.size_bytes for i in images if not i.is_index) / GIB
        lines.append(
            f"| `{repo.name}` | {len(images)} | {untagged} | {size:.1f} | {repo.description} |"
        )
    return "\n".join(lines) + "\n"


def seeded(
    p: Planner, *, sort_images: bool = False
) -> tuple[tuple[SeededRepository, ...], tuple[SeededImage, ...]]:
    """What ``p`` planned, as the seed manifest's records (repositories in plan order;
    images in plan order, or by repository, push time and digest)."""
    kms = {r.name: p.kms_key() for r in p.repos if r.kms}
    repositories = tuple(
        SeededRepository(
            name=r.name,
            namespace=namespace_of(r.name),
            arn=p.arn(r.name),
            created_at=r.created_at,
            scan_on_push=r.scan_on_push,
            tag_mutability=r.tag_mutability,
            tag_mutability_exclusions=r.exclusions,
            encryption="KMS" if r.kms else "AES256",
            kms_key=kms.get(r.name),
            lifecycle_policy=r.lifecycle_policy,
            repository_policy=r.policy,
            resource_tags=dict(r.resource_tags),
            description=r.description,
        )
        for r in p.repos
    )
    planned = p.images
    if sort_images:
        planned = sorted(planned, key=lambda i: (i.repository, i.pushed_at, i.digest))
    images = tuple(
        SeededImage(
            repository=i.repository,
            digest=i.digest,
            tags=tuple(i.tags),
            pushed_at=i.pushed_at,
            last_pull=i.last_pull,
            size_bytes=i.size,
            manifest_media_type=i.media_type,
            artifact_media_type=i.artifact_media_type,
            subject_digest=i.subject,
            child_digests=tuple(i.children),
            status=i.status,
            archived_at=i.archived_at,
            manifest=i.manifest,
        )
        for i in planned
    )
    return repositories, images
