"""Seed the embedded ECR with the lab-shaped registry.

:func:`seed_lab_registry` plans the registry (:func:`hygiene_demo.lab.plan_lab_registry`,
pure) and writes the plan straight into moto's in-process ECR backend, the only way to
back-date pushes and record pulls (docs/ecr-facts.md, "The moto emulator"). It returns the
plan's :class:`~hygiene_demo.manifest.SeedManifest`: what was seeded, as plain data.

Faithfulness to ECR where moto differs (the planner and :func:`write_plan` make it so):
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

import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from hygiene.config import ProjectsRegistry
from hygiene_demo.lab import plan_lab_registry
from hygiene_demo.manifest import SeedManifest
from hygiene_demo.registry import EmbeddedRegistry


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
