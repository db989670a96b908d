"""The planner behind the seeder: repositories, manifests and streams of CI builds.

A :class:`Planner` turns a few numbers per repository (a :class:`Stream`: how many builds
over which period, tag scheme, layout, how it is pulled) into images with real manifest
documents, digests computed from their bytes, tags moved the way pushes move them, and
pull times. Pure and deterministic for a given random seed; the lab's registry built with
it is in :mod:`hygiene_demo.lab`.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hygiene_demo.mediatypes import (
    COSIGN_SIMPLESIGNING,
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    IN_TOTO,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_EMPTY_DIGEST,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    SPDX_SBOM,
)

MB = 1024 * 1024
MINUTE = timedelta(minutes=1)


@dataclass
class PlannedImage:
    """An image while it is planned: its tags and pull time still change."""

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
class Build:
    """One CI build: its head image (a manifest or an index) plus any children."""

    pushed_at: datetime
    release: bool
    head: PlannedImage
    children: list[PlannedImage]
    wanted: list[str] = field(default_factory=list)
    deployed: bool = False  # carries a tag that is pulled in production (prod, stable)


@dataclass
class PlannedRepository:
    """A repository's settings while it is planned."""

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
class Stream:
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


class Planner:
    """Plans repositories and their images; one random generator, so one seed, one result."""

    def __init__(
        self, namespaces: set[str], now: datetime, rng_seed: int, account: str, region: str
    ) -> None:
        self.namespaces = namespaces
        self.now = now.astimezone(UTC).replace(microsecond=0)
        self.rng_seed = rng_seed
        self.rng = random.Random(rng_seed)
        self.account = account
        self.region = region
        self.repos: list[PlannedRepository] = []
        self.images: list[PlannedImage] = []
        self.builds: dict[str, list[Build]] = {}
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

    def add_repo(
        self, name: str, description: str, created_days: float, **settings: Any
    ) -> PlannedRepository:
        repo = PlannedRepository(
            name=name, created_at=self.ago(created_days), description=description, **settings
        )
        self.repos.append(repo)
        self.builds[name] = []
        return repo

    def add_image(self, image: PlannedImage) -> PlannedImage:
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
    ) -> PlannedImage:
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
    ) -> PlannedImage:
        text = json.dumps(document, indent=2)
        size = sum(part["size"] for part in document.get("layers", ()))
        size += document["config"]["size"] if "config" in document else 0
        return PlannedImage(
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
        children: list[tuple[PlannedImage, dict[str, Any], dict[str, str] | None]],
        oci: bool,
    ) -> PlannedImage:
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
        subject: PlannedImage | tuple[str, int, str],
        pushed_at: datetime,
        artifact_type: str,
    ) -> PlannedImage:
        """An OCI 1.1 referrer (cosign signature or SBOM) of ``subject``."""
        if isinstance(subject, PlannedImage):
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
    ) -> PlannedImage:
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
    def _times(self, s: Stream) -> list[datetime]:
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

    def _versions(self, s: Stream, count: int) -> list[str]:
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

    def _release_tags(self, s: Stream, builds: list[Build]) -> None:
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
        s: Stream,
        build: Build,
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

    def stream(self, repo: PlannedRepository, s: Stream) -> list[Build]:
        """Plan ``s.builds`` builds of ``repo``: images, children, tags and pulls."""
        name = repo.name
        times = self._times(s)
        oci = s.layout in ("oci", "oci-index")
        base = [(self.blob(), self.rng.randint(2 * MB, 30 * MB)) for _ in range(2)]
        builds: list[Build] = []
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
                parts: list[tuple[PlannedImage, dict[str, Any], dict[str, str] | None]] = [
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
            builds.append(Build(pushed_at=pushed_at, release=release, head=head, children=children))
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
    def _assign_tags(builds: list[Build]) -> None:
        """Push order: a tag pushed again moves to the new build (ECR keeps the old one)."""
        holder: dict[str, PlannedImage] = {}
        for build in builds:
            for tag in build.wanted:
                if tag in holder and holder[tag] is not build.head:
                    holder[tag].tags.remove(tag)
                if tag not in build.head.tags:
                    build.head.tags.append(tag)
                holder[tag] = build.head

    def _pulls(self, s: Stream, builds: list[Build]) -> None:
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
        self, s: Stream, pushed: datetime, superseded: datetime | None, current: bool
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
