"""Seed the embedded registry and describe what was seeded as an Inventory + findings."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hygiene.config import Config
from hygiene.inventory import Inventory, RunInfo
from hygiene.model import Finding
from tests import builders
from tests.builders import OCI_INDEX, OCI_MANIFEST


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
            builders.ecr_default_repository(name, account=self.account, now=self.now)
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
        row = builders.image_row(
            digest,
            repo,
            tags=[tag] if tag else [],
            pushed_days_ago=days_old,
            pulled_days_ago=pulled_days_ago,
            media_type=media_type,
            children=[m["digest"] for m in json.loads(manifest).get("manifests", [])],
            account=self.account,
            now=self.now,
        )
        image.image_pushed_at = int(row["pushed_at"].timestamp())
        if row["last_pull"] is not None:
            image.last_recorded_pull_time = row["last_pull"]
        self.images.append(row)
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
        run = RunInfo(id="seed", started_at=self.now)
        return builders.inventory(self.images, self.repositories, now=self.now, run=run)

    def finding(self, code: str, repo: str, digest: str, unit: list[str] | None = None) -> Finding:
        """A finding on a seeded image (its unit: the image alone unless given)."""
        return builders.finding(
            code,
            repo,
            digest=digest,
            unit=unit or [digest],
            message=f"{code} {digest[:15]}",
            fix="delete",
            account=self.account,
        )

    def live_digests(self, repo: str) -> set[str]:
        response = self.ecr.client().describe_images(repositoryName=repo)
        return {d["imageDigest"] for d in response["imageDetails"]}
