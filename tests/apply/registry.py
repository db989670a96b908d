"""Seed the embedded registry and describe what was seeded as an Inventory + findings."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hygiene.config import Config
from hygiene.inventory import Inventory, RunInfo, build_images, build_repositories, namespace_of
from hygiene.model import Finding, FixSafety, Severity

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SAFETY = {"IM001": FixSafety.SAFE, "IM004": FixSafety.SAFE}


def with_apply(config: Config, **changes: Any) -> Config:
    """``config`` with ``policy.apply`` fields replaced (the models are frozen)."""
    apply = config.policy.apply.model_copy(update=changes)
    return config.model_copy(update={"policy": config.policy.model_copy(update={"apply": apply})})


@dataclass
class Seeder:
    ecr: Any
    now: datetime
    images: list[dict[str, Any]] = field(default_factory=list)
    repositories: list[dict[str, Any]] = field(default_factory=list)
    manifests: dict[str, str] = field(default_factory=dict)
    _counter: int = 0

    @property
    def backend(self) -> Any:
        return self.ecr.backend()

    @property
    def account(self) -> str:
        return str(self.ecr.account)

    def repo(self, name: str) -> str:
        self.ecr.client().create_repository(repositoryName=name)
        self.repositories.append(
            {
                "account": self.account,
                "region": "us-east-1",
                "name": name,
                "namespace": namespace_of(name),
                "created_at": self.now - timedelta(days=400),
                "tag_mutability": "MUTABLE",
                "scan_on_push": False,
                "encryption": "AES256",
            }
        )
        return name

    def _put(
        self,
        repo: str,
        manifest: str,
        tag: str | None,
        media_type: str,
        days_old: int,
        pulled_days_ago: int | None,
    ) -> str:
        digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
        image = self.backend.put_image(repo, manifest, tag, media_type, digest)
        self.manifests[digest] = manifest
        pushed = self.now - timedelta(days=days_old)
        image.image_pushed_at = int(pushed.timestamp())
        last_pull = None
        if pulled_days_ago is not None:
            last_pull = self.now - timedelta(days=pulled_days_ago)
            image.last_recorded_pull_time = last_pull
        self.images.append(
            {
                "account": self.account,
                "region": "us-east-1",
                "repository": repo,
                "namespace": namespace_of(repo),
                "digest": digest,
                "tags": [tag] if tag else [],
                "pushed_at": pushed,
                "last_pull": last_pull,
                "size_bytes": 1000,
                "manifest_media_type": media_type,
                "status": "ACTIVE",
                "child_digests": [m["digest"] for m in json.loads(manifest).get("manifests", [])],
            }
        )
        return digest

    def image(
        self,
        repo: str,
        tag: str | None = None,
        days_old: int = 200,
        pulled_days_ago: int | None = None,
    ) -> str:
        self._counter += 1
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "size": 1000,
                    "digest": "sha256:" + hashlib.sha256(str(self._counter).encode()).hexdigest(),
                },
                "layers": [],
            }
        )
        return self._put(repo, manifest, tag, OCI_MANIFEST, days_old, pulled_days_ago)

    def index(
        self, repo: str, children: list[str], tag: str | None = "v1", days_old: int = 200
    ) -> str:
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {"mediaType": OCI_MANIFEST, "digest": c, "size": 500} for c in children
                ],
            }
        )
        return self._put(repo, manifest, tag, OCI_INDEX, days_old, None)

    def inventory(self) -> Inventory:
        images = build_images(self.images)
        return Inventory(
            images,
            build_repositories(self.repositories, images),
            RunInfo(id="seed", started_at=self.now),
        )

    def finding(self, code: str, repo: str, digest: str, unit: list[str] | None = None) -> Finding:
        return Finding(
            code=code,
            rule=code.lower(),
            severity=Severity.WARNING,
            account=self.account,
            region="us-east-1",
            repository=repo,
            namespace=namespace_of(repo),
            message=f"{code} {digest[:15]}",
            fix="delete",
            fix_safety=SAFETY.get(code, FixSafety.UNSAFE),
            image_digest=digest,
            details={"unit": unit or [digest]},
        )

    def live_digests(self, repo: str) -> set[str]:
        response = self.ecr.client().describe_images(repositoryName=repo)
        return {d["imageDigest"] for d in response["imageDetails"]}


@dataclass
class Evaluation:
    findings: list[Finding]
