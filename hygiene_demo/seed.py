"""Seed the embedded ECR with a registry shaped like the lab's.

``plan_lab_registry`` is pure: from the projects registry, a clock and a random seed it
plans ~40 repositories and ~1,500 images pushed over the two years before ``now``, with
every awkward case a registry-hygiene tool must handle (see ``docs/embedded-registry.md``).
``seed_lab_registry`` writes that plan straight into moto's in-process ECR backend, the
only way to back-date pushes and record pulls (docs/ecr-facts.md, "The moto emulator").

Both return a :class:`SeedManifest`: what was seeded, as plain data, so the collector's
round-trip test can compare what it reads through the HTTP API with what was written, and
so tests of other stages can build a realistic inventory offline with
``build_images(manifest.image_records())``.

Faithfulness to ECR where moto differs:
- digests are always ``sha256:`` + sha256 of the exact manifest bytes (moto would make
  them up);
- ``imageSizeInBytes`` is set on every image (config + layers; an index reports its
  largest child, as ECR does) because moto would report ``config.size`` and nothing for an
  index;
- images are written untagged and tagged afterwards, so an old build whose tag moved stays
  as an untagged image (moto deletes it, ECR keeps it);
- tag mutability is applied after the images are written (moto's put_image fails on
  untagged pushes into repositories with mutability exclusion filters).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from hygiene.config import ProjectsRegistry
from hygiene.inventory import SIGNATURE_TAG, namespace_of
from hygiene_demo.registry import DEFAULT_ACCOUNT, EmbeddedRegistry

# --------------------------------------------------------------------------- media types

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
COSIGN_SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SPDX_SBOM = "application/spdx+json"
IN_TOTO = "application/vnd.in-toto+json"

MB = 1024 * 1024
MINUTE = timedelta(minutes=1)
FOREIGN_ACCOUNT = "210987654321"  # the partner account of bigsea/api-gateway's policy


# --------------------------------------------------------------------------- result


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


# --------------------------------------------------------------------------- plan model


@dataclass
class _Image:
    repository: str
    manifest: str
    digest: str
    media_type: str
    size: int
    pushed_at: datetime
    artifact_media_type: str | None = None
    subject: str | None = None
    children: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    last_pull: datetime | None = None
    status: str = "ACTIVE"
    archived_at: datetime | None = None


@dataclass
class _Build:
    """One CI build: its head image (a manifest or an index) plus any children."""

    pushed_at: datetime
    release: bool
    head: _Image
    children: list[_Image]
    wanted: list[str] = field(default_factory=list)
    deployed: bool = False  # carries a tag that is pulled in production (prod, stable)


@dataclass
class _Repo:
    name: str
    created_at: datetime
    description: str
    scan_on_push: bool = False
    tag_mutability: str = "MUTABLE"
    exclusions: tuple[str, ...] = ()
    kms: bool = False
    lifecycle_policy: str | None = None
    policy: str | None = None
    resource_tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Stream:
    """How one repository was built and used over time."""

    builds: int
    first_days: float  # oldest push, days before now
    last_days: float  # newest push, days before now
    scheme: str  # semver | v-semver | semver-to-v | date | date-to-semver | build-sha | sha
    #              | semester | none
    layout: str = "docker"  # docker | oci | oci-index | docker-list
    size_mb: tuple[int, int] = (80, 250)
    pulls: str = "active"  # active | occasional | abandoned | none
    abandoned_days: float = 0.0  # abandoned: no pull since this many days
    never_pulled: float = 0.15  # share of superseded builds nobody ever pulled
    floating: tuple[str, ...] = ("latest",)
    latest_until_days: float | None = None  # `latest` stops moving this many days ago
    branch: str | None = None  # moving branch tag on release builds (main)
    dev_share: float = 0.0  # share of builds tagged only with the moving `develop`
    recent_builds: int = 0  # builds forced into the last 6 days
    rebuild_rate: float = 0.0  # share of builds that re-take the previous version tag
    attestations: bool = True  # buildx provenance manifests in OCI indexes
    start_version: tuple[int, int, int] = (1, 0, 0)
    protected: Mapping[str, int] = field(default_factory=dict)  # tag → n-th newest release
    monthly_release_tag: bool = False  # release-YYYY.MM on each month's first release


# --------------------------------------------------------------------------- planner


class _Planner:
    def __init__(
        self, namespaces: set[str], now: datetime, rng_seed: int, account: str, region: str
    ) -> None:
        self.namespaces = namespaces
        self.now = now.astimezone(UTC).replace(microsecond=0)
        self.rng_seed = rng_seed
        self.rng = random.Random(rng_seed)
        self.account = account
        self.region = region
        self.repos: list[_Repo] = []
        self.images: list[_Image] = []
        self.builds: dict[str, list[_Build]] = {}
        self.facts: dict[str, Any] = {}

    # ---- small helpers
    def ago(self, days: float) -> datetime:
        return (self.now - timedelta(days=days)).replace(microsecond=0)

    def hex(self, bits: int = 256) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def blob(self) -> str:
        return "sha256:" + self.hex()

    def kms_key(self) -> str:
        u = self.hex(128)
        key_id = f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"
        return f"arn:aws:kms:{self.region}:{self.account}:key/{key_id}"

    def arn(self, name: str) -> str:
        return f"arn:aws:ecr:{self.region}:{self.account}:repository/{name}"

    def add_repo(self, name: str, description: str, created_days: float, **settings: Any) -> _Repo:
        repo = _Repo(
            name=name, created_at=self.ago(created_days), description=description, **settings
        )
        self.repos.append(repo)
        self.builds[name] = []
        return repo

    def add_image(self, image: _Image) -> _Image:
        self.images.append(image)
        return image

    # ---- manifests
    def _layers(
        self, total: int, media_type: str, base: list[tuple[str, int]]
    ) -> list[dict[str, Any]]:
        layers = [{"mediaType": media_type, "digest": d, "size": s} for d, s in base]
        remaining = max(total - sum(s for _, s in base), 4096)
        count = self.rng.randint(1, 4)
        cuts = sorted(self.rng.random() for _ in range(count - 1))
        shares = [b - a for a, b in zip([0.0, *cuts], [*cuts, 1.0], strict=True)]
        sizes = [max(1024, int(remaining * share)) for share in shares]
        sizes[-1] += remaining - sum(sizes)
        layers += [{"mediaType": media_type, "digest": self.blob(), "size": s} for s in sizes]
        return layers

    def manifest_image(
        self,
        repo: str,
        pushed_at: datetime,
        size: int,
        oci: bool,
        base: list[tuple[str, int]] | None = None,
    ) -> _Image:
        """A single-platform image manifest whose layers add up to ``size`` bytes."""
        media_type, config_type, layer_type = (
            (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)
            if oci
            else (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)
        )
        config_size = self.rng.randint(1500, 12000)
        layers = self._layers(size - config_size, layer_type, base or [])
        document = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, "digest": self.blob(), "size": config_size},
            "layers": layers,
        }
        return self._image(repo, document, pushed_at, config_type)

    def _image(
        self,
        repo: str,
        document: dict[str, Any],
        pushed_at: datetime,
        artifact_media_type: str | None,
        subject: str | None = None,
    ) -> _Image:
        text = json.dumps(document, indent=2)
        size = sum(part["size"] for part in document.get("layers", ()))
        size += document["config"]["size"] if "config" in document else 0
        return _Image(
            repository=repo,
            manifest=text,
            digest="sha256:" + hashlib.sha256(text.encode()).hexdigest(),
            media_type=document["mediaType"],
            size=size,
            pushed_at=pushed_at,
            artifact_media_type=artifact_media_type,
            subject=subject,
        )

    def index_image(
        self,
        repo: str,
        pushed_at: datetime,
        children: list[tuple[_Image, dict[str, Any], dict[str, str] | None]],
        oci: bool,
    ) -> _Image:
        entries = []
        for child, platform, notes in children:
            entry: dict[str, Any] = {
                "mediaType": child.media_type,
                "digest": child.digest,
                "size": len(child.manifest.encode()),
                "platform": platform,
            }
            if notes:
                entry["annotations"] = notes
            entries.append(entry)
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX if oci else DOCKER_LIST,
            "manifests": entries,
        }
        index = self._image(repo, document, pushed_at, None)
        platform_sizes = [c.size for c, p, _ in children if p.get("architecture") != "unknown"]
        index.size = max(platform_sizes)  # ECR: an index reports its largest child's size
        index.children = [c.digest for c, _, _ in children]
        return index

    def referrer(
        self,
        repo: str,
        subject: _Image | tuple[str, int, str],
        pushed_at: datetime,
        artifact_type: str,
    ) -> _Image:
        """An OCI 1.1 referrer (cosign signature or SBOM) of ``subject``."""
        if isinstance(subject, _Image):
            subject_ref = (subject.digest, len(subject.manifest.encode()), subject.media_type)
        else:
            subject_ref = subject
        if artifact_type == SPDX_SBOM:
            layer = {
                "mediaType": SPDX_SBOM,
                "digest": self.blob(),
                "size": self.rng.randint(40_000, 900_000),
            }
        else:
            layer = {
                "mediaType": COSIGN_SIMPLESIGNING,
                "digest": self.blob(),
                "size": self.rng.randint(230, 400),
                "annotations": {"dev.cosignproject.cosign/signature": self.hex(512)},
            }
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": OCI_EMPTY, "digest": OCI_EMPTY_DIGEST, "size": 2},
            "layers": [layer],
            "subject": {
                "mediaType": subject_ref[2],
                "digest": subject_ref[0],
                "size": subject_ref[1],
            },
        }
        return self._image(repo, document, pushed_at, artifact_type, subject=subject_ref[0])

    def legacy_signature(
        self, repo: str, subject_digest: str, pushed_at: datetime, suffix: str = "sig"
    ) -> _Image:
        """A cosign signature stored the pre-OCI-1.1 way: tag ``sha256-<hex>.sig``."""
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": self.blob(),
                "size": self.rng.randint(230, 300),
            },
            "layers": [
                {
                    "mediaType": COSIGN_SIMPLESIGNING if suffix == "sig" else IN_TOTO,
                    "digest": self.blob(),
                    "size": self.rng.randint(250, 4000),
                    "annotations": {"dev.cosignproject.cosign/signature": self.hex(512)},
                }
            ],
        }
        image = self._image(repo, document, pushed_at, OCI_CONFIG)
        image.tags = [f"sha256-{subject_digest.removeprefix('sha256:')}.{suffix}"]
        return image

    # ---- streams of builds
    def _times(self, s: _Stream) -> list[datetime]:
        first, last = s.first_days, s.last_days
        days = sorted((self.rng.uniform(last, first) for _ in range(s.builds - 2)), reverse=True)
        days = [first, *days, last] if s.builds > 1 else [last]
        if s.recent_builds:
            recent = sorted(
                (self.rng.uniform(last, min(6.0, first)) for _ in range(s.recent_builds)),
                reverse=True,
            )
            days = sorted(days[: len(days) - s.recent_builds] + recent, reverse=True)
            days[-1] = last
        return [self.ago(d) for d in days]

    def _versions(self, s: _Stream, count: int) -> list[str]:
        major, minor, patch = s.start_version
        out = []
        for k in range(count):
            if k:
                roll = self.rng.random()
                if roll < 0.04:
                    major, minor, patch = major + 1, 0, 0
                elif roll < 0.25:
                    minor, patch = minor + 1, 0
                else:
                    patch += 1
            out.append(f"{major}.{minor}.{patch}")
        return out

    def _release_tags(self, s: _Stream, builds: list[_Build]) -> None:
        releases = [b for b in builds if b.release]
        versions = self._versions(s, len(releases))
        used: set[str] = set()
        build_number = self.rng.randint(300, 2000)
        previous: list[str] = []
        for k, build in enumerate(builds):
            build_number += self.rng.randint(1, 3)
            if not build.release:
                build.wanted = ["develop"]
                continue
            if previous and self.rng.random() < s.rebuild_rate:
                tags = list(previous)  # rebuilt under the same tag (base image patch)
            else:
                tags = self._scheme_tags(
                    s, build, versions.pop(0), build_number, k, len(builds), used
                )
            previous = tags
            used.update(tags)
            build.wanted = list(tags)
            if s.branch:
                build.wanted.append(s.branch)
            for floating in s.floating:
                stopped = s.latest_until_days is not None and floating == "latest"
                if stopped and build.pushed_at > self.ago(s.latest_until_days or 0):
                    continue
                build.wanted.append(floating)
        if s.monthly_release_tag:
            seen: set[str] = set()
            for build in releases:
                month = build.pushed_at.strftime("release-%Y.%m")
                if month not in seen:
                    seen.add(month)
                    build.wanted.append(month)
        for tag, lag in s.protected.items():
            target = releases[max(0, len(releases) - 1 - lag)]
            target.wanted.append(tag)
            target.deployed = True

    def _scheme_tags(
        self,
        s: _Stream,
        build: _Build,
        version: str,
        build_number: int,
        k: int,
        total: int,
        used: set[str],
    ) -> list[str]:
        scheme = s.scheme
        if scheme == "semver-to-v":
            scheme = "semver" if k < total // 2 else "v-semver"
        if scheme == "date-to-semver":
            scheme = "date" if k < total * 3 // 5 else "semver"
        if scheme == "semver":
            return [version]
        if scheme == "v-semver":
            return [f"v{version}"]
        if scheme == "date":
            return [_unique(build.pushed_at.strftime("%Y.%m.%d"), used)]
        if scheme == "sha":
            return [_unique(self.hex(28), used)]
        if scheme == "build-sha":
            return [str(build_number), _unique(self.hex(28), used)]
        if scheme == "semester":
            half = 1 if 2 <= build.pushed_at.month <= 7 else 2
            year = build.pushed_at.year - (1 if build.pushed_at.month == 1 else 0)
            return [f"{year}.{half}", _unique(build.pushed_at.strftime("%Y%m%d"), used)]
        if scheme == "none":
            return []
        raise ValueError(f"unknown tag scheme {scheme!r}")

    def stream(self, repo: _Repo, s: _Stream) -> list[_Build]:
        """Plan ``s.builds`` builds of ``repo``: images, children, tags and pulls."""
        name = repo.name
        times = self._times(s)
        oci = s.layout in ("oci", "oci-index")
        base = [(self.blob(), self.rng.randint(2 * MB, 30 * MB)) for _ in range(2)]
        builds: list[_Build] = []
        for k, pushed_at in enumerate(times):
            growth = 1 + 0.3 * k / max(1, s.builds - 1)  # images grow over the years
            size = int(self.rng.uniform(*s.size_mb) * MB * growth)
            size = max(size, sum(b for _, b in base) + 2 * MB)
            release = not (s.dev_share and self.rng.random() < s.dev_share)
            if s.recent_builds and pushed_at >= self.ago(6) and pushed_at < self.ago(s.last_days):
                release = k % 2 == 0  # recent: alternate develop and release builds
            if k == len(times) - 1:
                release = True
            if s.layout in ("oci-index", "docker-list"):
                child_time = pushed_at - timedelta(seconds=self.rng.randint(20, 240))
                amd = self.manifest_image(name, child_time, size, oci, base)
                arm = self.manifest_image(
                    name, child_time, int(size * self.rng.uniform(0.9, 1.0)), oci, base
                )
                parts: list[tuple[_Image, dict[str, Any], dict[str, str] | None]] = [
                    (amd, {"architecture": "amd64", "os": "linux"}, None),
                    (arm, {"architecture": "arm64", "os": "linux", "variant": "v8"}, None),
                ]
                if oci and s.attestations:
                    provenance = self._image(
                        name,
                        {
                            "schemaVersion": 2,
                            "mediaType": OCI_MANIFEST,
                            "config": {"mediaType": OCI_CONFIG, "digest": self.blob(), "size": 167},
                            "layers": [
                                {
                                    "mediaType": IN_TOTO,
                                    "digest": self.blob(),
                                    "size": self.rng.randint(1500, 9000),
                                    "annotations": {
                                        "in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"
                                    },
                                }
                            ],
                        },
                        child_time,
                        OCI_CONFIG,
                    )
                    parts.append(
                        (
                            provenance,
                            {"architecture": "unknown", "os": "unknown"},
                            {
                                "vnd.docker.reference.digest": amd.digest,
                                "vnd.docker.reference.type": "attestation-manifest",
                            },
                        )
                    )
                head = self.index_image(name, pushed_at, parts, oci)
                children = [p[0] for p in parts]
            else:
                head = self.manifest_image(name, pushed_at, size, oci, base)
                children = []
            builds.append(
                _Build(pushed_at=pushed_at, release=release, head=head, children=children)
            )
        self._release_tags(s, builds)
        self._assign_tags(builds)
        self._pulls(s, builds)
        for build in builds:
            for child in build.children:
                self.add_image(child)
            self.add_image(build.head)
        self.builds[name].extend(builds)
        return builds

    @staticmethod
    def _assign_tags(builds: list[_Build]) -> None:
        """Push order: a tag pushed again moves to the new build (ECR keeps the old one)."""
        holder: dict[str, _Image] = {}
        for build in builds:
            for tag in build.wanted:
                if tag in holder and holder[tag] is not build.head:
                    holder[tag].tags.remove(tag)
                if tag not in build.head.tags:
                    build.head.tags.append(tag)
                holder[tag] = build.head

    def _pulls(self, s: _Stream, builds: list[_Build]) -> None:
        releases = [b for b in builds if b.release]
        devs = [b for b in builds if not b.release]
        for series in (releases, devs):
            for k, build in enumerate(series):
                superseded = series[k + 1].pushed_at if k + 1 < len(series) else None
                current = superseded is None or build.deployed
                pull = self._last_pull(s, build.pushed_at, superseded, current)
                build.head.last_pull = pull
                # children: [amd64, arm64, provenance?]. Pulling by tag reads the index and
                # the platform's manifest; arm64 only on developers' laptops; provenance never.
                for position, child in enumerate(build.children):
                    on_laptops = position == 1 and self.rng.random() < 0.4
                    child.last_pull = pull if position == 0 or on_laptops else None

    def _last_pull(
        self, s: _Stream, pushed: datetime, superseded: datetime | None, current: bool
    ) -> datetime | None:
        rng = self.rng
        if s.pulls == "none":
            return None
        if not current and rng.random() < s.never_pulled:
            return None
        after = superseded or self.now
        if s.pulls == "active":
            at = (
                self.now - timedelta(hours=rng.uniform(1, 23))
                if current
                else (after + timedelta(days=rng.uniform(0, 21)))
            )
        elif s.pulls == "occasional":
            at = (
                self.ago(rng.uniform(1, 25))
                if current
                else after + timedelta(days=rng.uniform(0, 60))
            )
        else:  # abandoned
            cutoff = self.ago(s.abandoned_days)
            at = min(
                after + timedelta(days=rng.uniform(0, 30)),
                cutoff - timedelta(days=rng.uniform(0, 5)),
            )
        at = min(at, self.now - timedelta(minutes=5))
        if at <= pushed:
            at = pushed + timedelta(minutes=rng.uniform(5, 600))
            if at >= self.now:
                return None
        return at.replace(microsecond=0)


def _unique(tag: str, used: set[str]) -> str:
    candidate, n = tag, 1
    while candidate in used:
        n += 1
        candidate = f"{tag}-{n}"
    return candidate


# --------------------------------------------------------------------------- the lab's registry

# The registry's shape as data. `stream` fields are those of `_Stream`; `extras` name
# special cases planned in code (`_EXTRAS`); `facts` name expectations whose value is this
# repository's name, `listed_in` expectations that list it. `{unregistered}` is a namespace
# absent from the projects registry; `_other` is planned for any other registered one.
LAB_LAYOUT = """
suporte:
- {name: suporte/api, created_days: 740, resource_tags: {project: suporte},
   about: "Helpdesk API; tags switched from 1.2.3 to v1.2.3 midway (mixed scheme);
     signed with legacy cosign tags",
   stream: {builds: 60, first_days: 720, last_days: 2, scheme: semver-to-v, rebuild_rate: 0.05,
            protected: {stable: 2}, size_mb: [120, 260]},
   extras: [legacy-signatures], listed_in: [mixed_tag_scheme_repositories]}
- {name: suporte/web, created_days: 700, facts: [drifting_latest_repository],
   about: "Helpdesk web UI; `latest` stopped moving 150 days ago (drift)",
   stream: {builds: 45, first_days: 690, last_days: 4, scheme: v-semver, layout: oci,
            latest_until_days: 150, size_mb: [40, 90]}}
- {name: suporte/cloud/nginx-proxy, created_days: 600,
   about: "Reverse proxy; multi-arch OCI indexes with buildx provenance attestations",
   stream: {builds: 20, first_days: 580, last_days: 9, scheme: semver, layout: oci-index,
            rebuild_rate: 0.1, size_mb: [25, 45], start_version: [1, 25, 0]}}
- {name: suporte/cloud/k8s/tools/kubectl, created_days: 500, facts: [naming_violation_repository],
   about: "Five path segments: breaks the naming convention (depth > 3)",
   stream: {builds: 12, first_days: 480, last_days: 30, scheme: v-semver, floating: [],
            pulls: occasional, size_mb: [20, 30], start_version: [1, 28, 0]}}
- {name: suporte/cloud/monitoring, created_days: 650, about: "Exporters, tagged by build date",
   stream: {builds: 25, first_days: 640, last_days: 12, scheme: date, rebuild_rate: 0.1,
            size_mb: [60, 110]}}
- {name: suporte/cloud/dns-updater, created_days: 420, about: "Small cron job image",
   stream: {builds: 10, first_days: 410, last_days: 60, scheme: semver, pulls: occasional,
            size_mb: [15, 25]}}
- {name: suporte/services/ldap-sync, created_days: 560, about: "LDAP to Google Workspace sync",
   stream: {builds: 18, first_days: 550, last_days: 20, scheme: semver, pulls: occasional,
            size_mb: [70, 120]}}
- {name: suporte/services/mail-relay, created_days: 380, about: "Postfix relay",
   stream: {builds: 10, first_days: 370, last_days: 45, scheme: semver, pulls: occasional,
            size_mb: [50, 80]}}
- {name: suporte/legacy-portal, created_days: 730, facts: [mutelisted_repository],
   about: "The 2019 portal, kept for an audit (mutelisted in rules/default.yaml); abandoned",
   stream: {builds: 35, first_days: 728, last_days: 420, scheme: semver, pulls: abandoned,
            abandoned_days: 400, never_pulled: 0.3, start_version: [2, 3, 0], size_mb: [300, 600]}}
- {name: suporte/backup-agent, created_days: 450, facts: [same_account_policy_repository],
   compliant: {tag_mutability: IMMUTABLE}, policy: same-account,
   resource_tags: {project: suporte, owner: joao.silva@lsd.ufcg.edu.br},
   about: "Compliant: scan on push, IMMUTABLE tags, KMS key, lifecycle policy; CI role may pull",
   stream: {builds: 20, first_days: 440, last_days: 3, scheme: v-semver, floating: [],
            size_mb: [35, 60]}}
- {name: suporte-cloud/grafana, created_days: 600,
   about: "Fragmented namespace: should be suporte/cloud/grafana",
   stream: {builds: 22, first_days: 590, last_days: 15, scheme: semver, size_mb: [90, 140],
            start_version: [10, 1, 0]}}
- {name: suporte-cloud/terraform-runner, created_days: 400,
   about: "Fragmented; git-sha tags and a moving `main`",
   stream: {builds: 14, first_days: 390, last_days: 25, scheme: sha, floating: [], branch: main,
            pulls: occasional, size_mb: [100, 160]}}
- {name: suporte-services/helpdesk, created_days: 620,
   about: "Fragmented; Docker manifest lists (amd64 + arm64)",
   stream: {builds: 30, first_days: 610, last_days: 6, scheme: date, layout: docker-list,
            size_mb: [150, 230]}}
- {name: suporte-services/wiki, created_days: 700, about: "Fragmented; abandoned",
   stream: {builds: 8, first_days: 690, last_days: 260, scheme: semver, pulls: abandoned,
            abandoned_days: 200, size_mb: [180, 260]}}
- {name: suporte_infra/ansible-runner, created_days: 350,
   about: "Fragmented with an underscore: should be suporte/infra/ansible-runner",
   stream: {builds: 16, first_days: 340, last_days: 18, scheme: sha, floating: [], branch: main,
            size_mb: [200, 320]}}
ml:
- {name: ml/training-gpu, created_days: 720, resource_tags: {"hygiene:keep": "true", project: ml},
   facts: [opt_out_repository],
   about: "CUDA training images of 1-3 GB, rarely pulled; opted out with hygiene:keep=true",
   stream: {builds: 40, first_days: 715, last_days: 21, scheme: date, pulls: occasional,
            never_pulled: 0.3, size_mb: [1200, 2600]}}
- {name: ml/notebook, created_days: 600, about: "Jupyter images; multi-arch OCI indexes",
   stream: {builds: 20, first_days: 590, last_days: 10, scheme: v-semver, layout: oci-index,
            rebuild_rate: 0.1, size_mb: [700, 1100]}}
- {name: ml/inference-api, created_days: 500, compliant: {tag_mutability: IMMUTABLE},
   facts: [referrer_repository],
   about: "Compliant; releases signed (cosign) and with an SBOM as OCI 1.1 referrers",
   stream: {builds: 36, first_days: 490, last_days: 1, scheme: semver, layout: oci,
            floating: [], size_mb: [300, 450]},
   extras: [referrers]}
- {name: ml/label-studio, created_days: 450, about: "Upstream mirror nobody pulls any more",
   stream: {builds: 15, first_days: 440, last_days: 150, scheme: semver, pulls: abandoned,
            abandoned_days: 120, size_mb: [250, 400], start_version: [1, 8, 0]}}
- {name: ml/embeddings, created_days: 300, about: "Embedding service, tagged by git sha",
   stream: {builds: 20, first_days: 290, last_days: 8, scheme: sha, floating: [], branch: main,
            size_mb: [500, 900]}}
- {name: ml/feature-store, created_days: 700, facts: [old_empty_repository],
   listed_in: [empty_repositories], about: "Created 700 days ago and never pushed to"}
eureca:
- {name: eureca/backend, created_days: 400, resource_tags: {project: eureca},
   facts: [excess_images_repository], listed_in: [mixed_tag_scheme_repositories],
   about: "CI builds: build number + git sha + moving main; develop builds left
     untagged; prod lags main; over 100 images",
   stream: {builds: 240, first_days: 390, last_days: 0.2, scheme: build-sha, branch: main,
            dev_share: 0.4, recent_builds: 6, protected: {prod: 1}, never_pulled: 0.35,
            size_mb: [180, 260]}}
- {name: eureca/frontend, created_days: 450,
   about: "Docker manifest lists; monthly release-YYYY.MM tags",
   stream: {builds: 50, first_days: 440, last_days: 3, scheme: v-semver, layout: docker-list,
            monthly_release_tag: true, size_mb: [30, 60]}}
- {name: eureca/worker, created_days: 380,
   compliant: {tag_mutability: IMMUTABLE_WITH_EXCLUSION, exclusions: [latest]},
   about: "Compliant with IMMUTABLE_WITH_EXCLUSION: only `latest` may move",
   stream: {builds: 40, first_days: 370, last_days: 2, scheme: semver, size_mb: [160, 240]}}
- {name: eureca/db-migrations, created_days: 380, about: "Flyway migrations, tagged by git sha",
   stream: {builds: 25, first_days: 370, last_days: 5, scheme: sha, floating: [],
            pulls: occasional, size_mb: [90, 120]}}
- {name: eureca/docs, created_days: 500, policy: public, facts: [public_repository],
   about: "Documentation site; PUBLIC repository policy (Principal *)",
   stream: {builds: 30, first_days: 490, last_days: 7, scheme: date, layout: oci,
            size_mb: [20, 40]}}
bigsea:
- {name: bigsea/spark-base, created_days: 700,
   about: "Spark base images; multi-arch OCI indexes; `stable` tag",
   stream: {builds: 18, first_days: 690, last_days: 14, scheme: semver, layout: oci-index,
            protected: {stable: 1}, start_version: [3, 3, 0], size_mb: [800, 1200]}}
- {name: bigsea/hadoop-namenode, created_days: 735, facts: [abandoned_repository],
   about: "Abandoned for over a year; its four oldest images were archived",
   stream: {builds: 30, first_days: 725, last_days: 500, scheme: semver, pulls: abandoned,
            abandoned_days: 450, start_version: [3, 2, 1], size_mb: [500, 700]},
   extras: [archive-oldest]}
- {name: bigsea/kafka-connect, created_days: 520, about: "Kafka Connect with plugins",
   stream: {builds: 20, first_days: 510, last_days: 35, scheme: semver, pulls: occasional,
            start_version: [7, 4, 0], size_mb: [350, 500]}}
- {name: bigsea/api-gateway, created_days: 560, policy: cross-account,
   facts: [cross_account_repository],
   about: "Shared with a partner: cross-account repository policy",
   stream: {builds: 28, first_days: 550, last_days: 4, scheme: v-semver, size_mb: [60, 90]}}
- {name: bigsea/etl-jobs, created_days: 600, listed_in: [mixed_tag_scheme_repositories],
   about: "Tagged by date, later by semver (mixed scheme)",
   stream: {builds: 40, first_days: 590, last_days: 11, scheme: date-to-semver,
            pulls: occasional, size_mb: [400, 650]}}
labs:
- {name: labs/sistemas-operacionais, created_days: 700,
   about: "Course image: a semester tag (2026.1) rebuilt during term, plus date tags",
   stream: {builds: 20, first_days: 690, last_days: 40, scheme: semester, floating: [],
            pulls: occasional, size_mb: [600, 900]}}
- {name: labs/redes, created_days: 600, about: "Computer networks lab image",
   stream: {builds: 15, first_days: 590, last_days: 70, scheme: semester, floating: [],
            pulls: occasional, size_mb: [400, 700]}}
- {name: labs/bd-postgres, created_days: 500, about: "Databases course image",
   stream: {builds: 12, first_days: 490, last_days: 50, scheme: date, pulls: occasional,
            size_mb: [120, 180]}}
- {name: labs/compiladores, created_days: 650, about: "Compilers course, not offered this year",
   stream: {builds: 10, first_days: 640, last_days: 330, scheme: semester, floating: [],
            pulls: abandoned, abandoned_days: 300, size_mb: [500, 800]}}
- {name: labs/ia-2027-1, created_days: 3, facts: [new_empty_repository],
   listed_in: [empty_repositories], about: "Created 3 days ago for next term; still empty"}
_other:
- {name: "{ns}/app", created_days: 400, about: "Application image",
   stream: {builds: 20, first_days: 390, last_days: 5, scheme: semver, size_mb: [80, 200]}}
- {name: "{ns}/worker", created_days: 300, about: "Background worker",
   stream: {builds: 12, first_days: 290, last_days: 9, scheme: sha, floating: [], branch: main,
            size_mb: [80, 200]}}
_unowned:
- {name: nginx, created_days: 730, listed_in: [outside_namespace_repositories],
   about: "Outside any namespace; upstream mirror with manifest lists, rebuilt on base fixes",
   stream: {builds: 20, first_days: 720, last_days: 20, scheme: semver, layout: docker-list,
            rebuild_rate: 0.15, size_mb: [60, 75], start_version: [1, 25, 1]}}
- {name: postgres-backup, created_days: 700, listed_in: [outside_namespace_repositories],
   about: "Outside any namespace; its oldest image is still pulled nightly by a forgotten cron job",
   stream: {builds: 14, first_days: 690, last_days: 40, scheme: semver, pulls: occasional,
            rebuild_rate: 0.15, size_mb: [90, 130]},
   extras: [oldest-still-pulled]}
- {name: "{unregistered}/crawler", created_days: 400,
   about: "Unregistered namespace (a student's thesis project)",
   stream: {builds: 25, first_days: 390, last_days: 95, scheme: sha, branch: main,
            dev_share: 0.3, pulls: abandoned, abandoned_days: 90, size_mb: [150, 300]}}
- {name: "{unregistered}/dashboard", created_days: 300, facts: [only_latest_repository],
   about: "Unregistered; only ever tagged `latest`, so every rebuild left an untagged image",
   stream: {builds: 12, first_days: 290, last_days: 100, scheme: none, pulls: abandoned,
            abandoned_days: 95, size_mb: [100, 200]}}
"""

UNREGISTERED_NAMESPACE = "tcc-joao"

_LIFECYCLE = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "Expire untagged images 14 days after push",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 14,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": "Keep the newest 50 release images",
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": ["*.*.*"],
                "countType": "imageCountMoreThan",
                "countNumber": 50,
            },
            "action": {"type": "expire"},
        },
    ]
}
_PULL_ACTIONS = [
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
]


def _policy(sid: str, principal: Any) -> str:
    statement = {"Sid": sid, "Effect": "Allow", "Principal": principal, "Action": _PULL_ACTIONS}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, indent=2)


def _repository_policy(kind: str, account: str) -> str:
    if kind == "public":
        return _policy("PublicPull", "*")
    if kind == "cross-account":
        return _policy("PartnerPull", {"AWS": f"arn:aws:iam::{FOREIGN_ACCOUNT}:root"})
    if kind == "same-account":
        return _policy("CiPull", {"AWS": f"arn:aws:iam::{account}:role/ci-runner"})
    raise ValueError(f"unknown policy kind {kind!r}")


def _legacy_signatures(p: _Planner, repo: _Repo, builds: list[_Build]) -> None:
    """The 12 newest releases signed the pre-OCI-1.1 way, an attestation, and an orphan."""
    signed = [b.head for b in builds if b.release and b.head.tags][-12:]
    signatures = []
    for image in signed:
        sig = p.legacy_signature(repo.name, image.digest, image.pushed_at + timedelta(minutes=3))
        sig.last_pull = image.last_pull if p.rng.random() < 0.6 else None
        signatures.append(p.add_image(sig))
    newest = signed[-1]
    att = p.legacy_signature(
        repo.name, newest.digest, newest.pushed_at + timedelta(minutes=4), "att"
    )
    p.add_image(att)
    gone = p.manifest_image(repo.name, p.ago(400), 150 * MB, oci=False)  # deleted long ago
    orphan = p.add_image(p.legacy_signature(repo.name, gone.digest, p.ago(400) + 3 * MINUTE))
    p.facts.update(
        legacy_signature_repository=repo.name,
        legacy_signed_digest=newest.digest,
        legacy_signature_digest=signatures[-1].digest,
        legacy_attestation_digest=att.digest,
        orphan_signature_tag=orphan.tags[0],
        orphan_signature_digest=orphan.digest,
    )


def _referrers(p: _Planner, repo: _Repo, builds: list[_Build]) -> None:
    """A cosign signature and an SBOM for the 20 newest builds, and one orphaned signature."""
    for build in builds[-20:]:
        for kind in (COSIGN_SIGNATURE, SPDX_SBOM):
            ref = p.add_image(p.referrer(repo.name, build.head, build.pushed_at + 2 * MINUTE, kind))
            if kind == COSIGN_SIGNATURE and build.head.last_pull and p.rng.random() < 0.7:
                ref.last_pull = build.head.last_pull  # verified at deploy time
    gone = p.manifest_image(repo.name, p.ago(200), 350 * MB, oci=True)  # its subject was deleted
    orphan = p.referrer(repo.name, gone, p.ago(200) + 2 * MINUTE, COSIGN_SIGNATURE)
    p.add_image(orphan)
    p.facts.update(
        orphan_referrer_digest=orphan.digest,
        orphan_referrer_subject=gone.digest,
        signed_subject_digest=builds[-1].head.digest,
    )


def _archive_oldest(p: _Planner, repo: _Repo, builds: list[_Build]) -> None:
    archived = []
    for build in builds[:4]:
        build.head.status = "ARCHIVED"
        build.head.archived_at = p.ago(120 + p.rng.uniform(0, 30))
        archived.append(build.head.digest)
    p.facts["archived_digests"] = archived


def _oldest_still_pulled(p: _Planner, repo: _Repo, builds: list[_Build]) -> None:
    old = builds[0].head
    old.last_pull = (p.now - timedelta(hours=p.rng.uniform(2, 20))).replace(microsecond=0)
    p.facts["old_image_pulled_recently"] = old.digest


_EXTRAS = {
    "legacy-signatures": _legacy_signatures,
    "referrers": _referrers,
    "archive-oldest": _archive_oldest,
    "oldest-still-pulled": _oldest_still_pulled,
}


def _plan_entries(p: _Planner, entries: list[dict[str, Any]], names: Mapping[str, str]) -> None:
    for entry in entries:
        settings: dict[str, Any] = {"resource_tags": dict(entry.get("resource_tags", {}))}
        if "compliant" in entry:
            settings.update(
                scan_on_push=True,
                kms=True,
                tag_mutability=entry["compliant"]["tag_mutability"],
                exclusions=tuple(entry["compliant"].get("exclusions", ())),
                lifecycle_policy=json.dumps(_LIFECYCLE, indent=2),
            )
        if "policy" in entry:
            settings["policy"] = _repository_policy(entry["policy"], p.account)
        name = entry["name"].format(**names)
        repo = p.add_repo(name, entry["about"], entry["created_days"], **settings)
        builds: list[_Build] = []
        if "stream" in entry:
            spec = dict(entry["stream"])
            for key in ("size_mb", "start_version", "floating"):
                if key in spec:
                    spec[key] = tuple(spec[key])
            builds = p.stream(repo, _Stream(**spec))
        for extra in entry.get("extras", ()):
            _EXTRAS[extra](p, repo, builds)
        for fact in entry.get("facts", ()):
            p.facts[fact] = name
        for fact in entry.get("listed_in", ()):
            p.facts.setdefault(fact, []).append(name)


def _namespaces(projects: Any) -> set[str]:
    while hasattr(projects, "projects"):  # hygiene.config.Config / ProjectsRegistry
        projects = projects.projects
    if isinstance(projects, Mapping):
        return {str(k) for k in projects}
    if isinstance(projects, str):
        return {projects}
    return {str(p) for p in projects}


def plan_lab_registry(
    projects: ProjectsRegistry | Mapping[str, Any] | Iterable[str],
    now: datetime,
    *,
    region: str = "us-east-1",
    rng_seed: int = 7,
    account: str = DEFAULT_ACCOUNT,
) -> SeedManifest:
    """Plan the lab-shaped registry without writing it anywhere (pure, deterministic).

    ``projects`` is the projects registry (``config.projects``), a mapping keyed by
    namespace, or an iterable of namespace names. The lab's five projects get the
    repositories of ``LAB_LAYOUT``; any other registered namespace gets a generic pair;
    repositories outside any namespace and an unregistered namespace are always planned.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    namespaces = _namespaces(projects)
    layout = yaml.safe_load(LAB_LAYOUT)
    unregistered = UNREGISTERED_NAMESPACE
    while unregistered in namespaces:
        unregistered += "-x"
    p = _Planner(namespaces, now, rng_seed, account, region)
    for namespace in sorted(namespaces):
        entries = layout.get(namespace) if not namespace.startswith("_") else None
        _plan_entries(p, entries or layout["_other"], {"ns": namespace})
    _plan_entries(p, layout["_unowned"], {"unregistered": unregistered})
    return _manifest(p)


def _manifest(p: _Planner) -> SeedManifest:
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
        for i in sorted(p.images, key=lambda i: (i.repository, i.pushed_at, i.digest))
    )
    facts = dict(p.facts)
    facts.update(_derived_facts(p, images, repositories))
    return SeedManifest(
        account=p.account,
        region=p.region,
        now=p.now,
        rng_seed=p.rng_seed,
        repositories=repositories,
        images=images,
        facts=facts,
    )


def _derived_facts(
    p: _Planner, images: tuple[SeededImage, ...], repositories: tuple[SeededRepository, ...]
) -> dict[str, Any]:
    children = {(i.repository, c) for i in images for c in i.child_digests}
    leftovers = [
        i
        for i in images
        if not i.tags
        and (i.repository, i.digest) not in children
        and i.subject_digest is None
        and not i.is_index
    ]
    week_ago = p.now - timedelta(days=7)
    seeded = sorted({n for r in repositories if (n := r.namespace) is not None})
    fragmented: dict[str, list[str]] = {}
    for namespace in seeded:
        project = re.split(r"[-_]", namespace, maxsplit=1)[0]
        if namespace not in p.namespaces and project != namespace and project in p.namespaces:
            fragmented.setdefault(project, []).append(namespace)
    split = {n for names in fragmented.values() for n in names}
    facts: dict[str, Any] = {
        "foreign_account": FOREIGN_ACCOUNT,
        # Namespaces absent from the projects registry; fragments of a registered project
        # (suporte-cloud …) are listed under fragmented_namespaces instead.
        "unregistered_namespaces": [n for n in seeded if n not in p.namespaces and n not in split],
        "fragmented_namespaces": fragmented,
        "untagged_leftovers_older_than_7_days": [
            i.digest for i in leftovers if i.pushed_at < week_ago
        ],
        "untagged_leftovers_younger_than_7_days": [
            i.digest for i in leftovers if i.pushed_at >= week_ago
        ],
        "untagged_indexes": [i.digest for i in images if i.is_index and not i.tags],
        "oci_index_repositories": sorted(
            {i.repository for i in images if i.manifest_media_type == OCI_INDEX}
        ),
        "docker_list_repositories": sorted(
            {i.repository for i in images if i.manifest_media_type == DOCKER_LIST}
        ),
        "compliant_repositories": [
            r.name
            for r in repositories
            if r.scan_on_push and r.lifecycle_policy and r.encryption == "KMS"
        ],
        "protected_tag_images": {  # "repository:tag" → digest
            f"{i.repository}:{t}": i.digest
            for i in images
            for t in i.tags
            if t in ("prod", "stable") or t.startswith("release-")
        },
    }
    drift = p.facts.get("drifting_latest_repository")
    latest_ok = []
    for repo in sorted({i.repository for i in images}):
        tagged = [i for i in images if i.repository == repo and "latest" in i.tags]
        if not tagged:
            continue
        heads = [
            i
            for i in images
            if i.repository == repo and i.tags and not all(SIGNATURE_TAG.match(t) for t in i.tags)
        ]
        newest = max(heads, key=lambda i: i.pushed_at)
        if repo == drift:
            facts["drifting_latest_digest"] = tagged[0].digest
            facts["drift_newest_digest"] = newest.digest
        elif tagged[0].digest == newest.digest:
            latest_ok.append(repo)
    facts["correct_latest_repositories"] = latest_ok
    return facts


# --------------------------------------------------------------------------- writing


def seed_lab_registry(
    registry: EmbeddedRegistry,
    projects: ProjectsRegistry | Mapping[str, Any] | Iterable[str],
    now: datetime,
    *,
    region: str = "us-east-1",
    rng_seed: int = 7,
) -> SeedManifest:
    """Plan the lab-shaped registry and write it into ``registry``'s moto backend.

    The registry must not already hold any of the planned repositories (reset it first).
    Returns the :class:`SeedManifest` of what was written; ``elapsed_seconds`` is the time
    spent planning and writing.
    """
    started = time.perf_counter()
    plan = plan_lab_registry(
        projects, now, region=region, rng_seed=rng_seed, account=registry.account
    )
    write_plan(registry.backend(region), plan)
    return SeedManifest(
        account=plan.account,
        region=plan.region,
        now=plan.now,
        rng_seed=rng_seed,
        repositories=plan.repositories,
        images=plan.images,
        facts=plan.facts,
        elapsed_seconds=time.perf_counter() - started,
    )


def write_plan(backend: Any, plan: SeedManifest) -> None:
    """Write a planned registry into a moto ``ECRBackend`` (in process, no HTTP)."""
    for repo in plan.repositories:
        encryption: dict[str, str] = {"encryptionType": repo.encryption}
        if repo.kms_key:
            encryption["kmsKey"] = repo.kms_key
        created = backend.create_repository(
            repository_name=repo.name,
            registry_id=None,
            encryption_config=encryption,
            image_scan_config={"scanOnPush": repo.scan_on_push},
            image_tag_mutability="MUTABLE",  # the real setting is applied after the pushes
            tags=[{"Key": k, "Value": v} for k, v in repo.resource_tags.items()],
        )
        created.created_at = repo.created_at
        if repo.lifecycle_policy is not None:
            backend.put_lifecycle_policy(None, repo.name, repo.lifecycle_policy)
        if repo.repository_policy is not None:
            backend.set_repository_policy(None, repo.name, repo.repository_policy)
    for image in plan.images:
        stored = backend.put_image(
            image.repository, image.manifest, None, image.manifest_media_type, image.digest
        )
        for tag in image.tags:
            stored.update_tag(tag)
        stored.image_pushed_at = int(image.pushed_at.timestamp())
        stored.last_recorded_pull_time = image.last_pull
        stored.artifact_media_type = image.artifact_media_type
        stored.subject_manifest_digest = image.subject_digest
        stored.image_status = image.status
        if image.archived_at is not None:
            stored.last_archived_at = image.archived_at
        # moto reports config.size (nothing for an index); the serializer reads this
        # camelCase attribute first, so DescribeImages reports what ECR would.
        stored.imageSizeInBytes = image.size_bytes
    for repo in plan.repositories:
        if repo.tag_mutability != "MUTABLE":
            filters = [
                {"filter": f, "filterType": "WILDCARD"} for f in repo.tag_mutability_exclusions
            ]
            backend.put_image_tag_mutability(None, repo.name, repo.tag_mutability, filters or None)


def summary_line(manifest: SeedManifest) -> str:
    """One line for ``hygiene demo`` output and logs."""
    counts = manifest.counts()
    return (
        f"seeded {counts['repositories']} repositories, {counts['images']} images "
        f"({counts['indexes']} indexes, {counts['index_children']} index children, "
        f"{counts['referrers']} referrers, {counts['untagged']} untagged, "
        f"{counts['bytes'] / 1e9:.0f} GB) in {manifest.elapsed_seconds:.2f}s"
    )


def repository_table(manifest: SeedManifest) -> str:
    """A Markdown table of the seeded repositories (``docs/embedded-registry.md``)."""
    lines = [
        "| repository | images | untagged | GB | what it shows |",
        "|---|---:|---:|---:|---|",
    ]
    for repo in manifest.repositories:
        images = manifest.images_of(repo.name)
        untagged = sum(not i.tags for i in images)
        size = sum(i.size_bytes for i in images if not i.is_index) / 1e9
        lines.append(
            f"| `{repo.name}` | {len(images)} | {untagged} | {size:.1f} | {repo.description} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m hygiene_demo.seed: print the docs table
    from hygiene.config import load_config

    print(repository_table(plan_lab_registry(load_config().projects, datetime.now(UTC))), end="")
