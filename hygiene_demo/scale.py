"""A registry of any size for the embedded ECR: ``repositories`` × ``images`` per repository.

The lab registry (:mod:`hygiene_demo.lab`) is small and hand-shaped; the scan benchmark
and the collector's fault tests need hundreds or thousands of repositories. This planner
builds them with the same :class:`~hygiene_demo.planner.Planner` (real manifest documents,
digests of their bytes) and the same writer (:func:`hygiene_demo.seed.write_plan`):

- every ``index_every``-th build (tenth by default) is a multi-platform OCI index with two
  platform manifests, so the collector reads manifests (BatchGetImage) in every
  repository that has one;
- release tags on most builds, ``latest`` on the newest, some untagged leftovers;
- half the builds pulled at some point, pushes spread over two years;
- every third repository has a lifecycle policy, every seventh a repository policy,
  every fifth a resource tag.

Pure and deterministic for a given seed; :func:`seed_scale_registry` writes the plan into
moto's in-process backend.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from hygiene_demo.manifest import SeedManifest, seeded
from hygiene_demo.planner import MB, PlannedImage, Planner
from hygiene_demo.registry import DEFAULT_ACCOUNT, EmbeddedRegistry
from hygiene_demo.seed import write_plan

NAMESPACES = ("suporte", "ml", "eureca", "bigsea", "labs")
LIFECYCLE_POLICY = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "expire untagged images after 14 days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 14,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)
PLATFORMS = ({"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux"})


def repository_name(index: int) -> str:
    namespace = NAMESPACES[index % len(NAMESPACES)]
    return f"{namespace}/team{index % 7}/svc-{index:05d}"


def plan_scale_registry(
    repositories: int,
    images: int,
    now: datetime,
    *,
    rng_seed: int = 11,
    account: str = DEFAULT_ACCOUNT,
    region: str = "us-east-1",
    index_every: int = 10,
) -> SeedManifest:
    """``repositories`` repositories of about ``images`` images each (indexes count their
    children: an index build is three images)."""
    p = Planner(set(NAMESPACES), now, rng_seed, account, region)
    for r in range(repositories):
        name = repository_name(r)
        p.add_repo(
            name,
            "scale registry",
            created_days=800 + r % 100,
            scan_on_push=r % 2 == 0,
            lifecycle_policy=LIFECYCLE_POLICY if r % 3 == 0 else None,
            policy=_policy(account) if r % 7 == 0 else None,
            resource_tags={"team": f"team{r % 7}"} if r % 5 == 0 else {},
        )
        planned = 0
        build = 0
        heads = []
        while planned < images:
            age = 730.0 * (1 - build / max(images, 1)) + p.rng.random()
            pushed = p.ago(age)
            if build % index_every == index_every - 1 and images - planned >= 3:
                children: list[tuple[PlannedImage, dict[str, Any], dict[str, str] | None]] = [
                    (p.manifest_image(name, pushed, 60 * MB, oci=True), dict(platform), None)
                    for platform in PLATFORMS
                ]
                head = p.add_image(p.index_image(name, pushed, children, oci=True))
                for child, _, _ in children:
                    p.add_image(child)
                planned += 3
            else:
                head = p.add_image(p.manifest_image(name, pushed, 40 * MB, oci=build % 2 == 0))
                planned += 1
            if p.rng.random() > 0.1:
                head.tags = [f"1.{build}.0"]
            if p.rng.random() < 0.5:
                head.last_pull = p.ago(age * p.rng.random())
            heads.append(head)
            build += 1
        tagged = [h for h in heads if h.tags]  # pushed oldest first
        if tagged:
            tagged[-1].tags.append("latest")
    return _manifest(p)


def _policy(account: str) -> str:
    statement = {
        "Sid": "pull",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _manifest(p: Planner) -> SeedManifest:
    repositories, images = seeded(p)
    return SeedManifest(
        account=p.account,
        region=p.region,
        now=p.now,
        rng_seed=p.rng_seed,
        repositories=repositories,
        images=images,
        facts={},
    )


def seed_scale_registry(
    registry: EmbeddedRegistry,
    repositories: int,
    images: int,
    now: datetime,
    *,
    region: str = "us-east-1",
    rng_seed: int = 11,
    index_every: int = 10,
) -> SeedManifest:
    """Plan a scale registry and write it into ``registry``'s moto backend."""
    started = time.perf_counter()
    plan = plan_scale_registry(
        repositories,
        images,
        now,
        rng_seed=rng_seed,
        account=registry.account,
        region=region,
        index_every=index_every,
    )
    write_plan(registry.backend(region), plan)
    return SeedManifest(
        account=plan.account,
        region=plan.region,
        now=plan.now,
        rng_seed=rng_seed,
        repositories=plan.repositories,
        images=plan.images,
        facts={},
        elapsed_seconds=time.perf_counter() - started,
    )
