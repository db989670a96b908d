"""Workloads for the demo and the tests: ECS, EventBridge, Lambda and Batch in moto.

:func:`plan_demo_workloads` (pure) picks images of the seeded lab registry that every
registry date calls stale — old, not pulled, beyond the newest kept, no protected tag — so
without in-use detection the nightly run would propose deleting them;
:func:`seed_demo_workloads` makes workloads run them. :class:`WorkloadSeeder` is the
general tool the tests use too.

Everything goes through the real APIs (boto3 against the moto server), except where moto
is not faithful; those corrections are made on moto's in-process backend objects, the way
the ECR seeder back-dates pushes (docs/ecr-facts.md, "The moto emulator"):

* ECS tasks get one container per container definition (moto makes only the first) and
  the ``imageDigest`` a real agent reports (moto reports none);
* a service can be given a second, ``ACTIVE`` deployment (moto keeps one ``PRIMARY``
  deployment and never rolls);
* a published Lambda version keeps the ``ImageUri`` and digest it was published with
  (moto shares ``$LATEST``'s code dict with every version, and with
  ``MOTO_LAMBDA_STUB_ECR`` unset resolves only single-segment repository names, so a
  version reports ``sha256(uri)`` as its digest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from hygiene.collect.timestamps import new_session

DUMMY_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "aws_session_token": "testing",
}
LAMBDA_ROLE = "registry-hygiene-demo-lambda"


@dataclass
class WorkloadSeeder:
    """Seed one account and region of the embedded AWS."""

    endpoint_url: str
    account: str = "123456789012"
    region: str = "us-east-1"
    session: boto3.Session | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            session = self.session or new_session(**DUMMY_CREDENTIALS, region_name=self.region)
            self._clients[service] = session.client(
                service,
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=BotoConfig(retries={"mode": "standard", "max_attempts": 1}),
            )
        return self._clients[service]

    # ------------------------------------------------------------------ ECS

    def cluster(self, name: str) -> str:
        return str(self.client("ecs").create_cluster(clusterName=name)["cluster"]["clusterArn"])

    def task_definition(self, family: str, *images: str) -> str:
        containers = [
            {"name": f"c{number}", "image": image, "memory": 128, "essential": number == 0}
            for number, image in enumerate(images)
        ]
        response = self.client("ecs").register_task_definition(
            family=family, containerDefinitions=containers
        )
        return str(response["taskDefinition"]["taskDefinitionArn"])

    def service(self, cluster: str, name: str, task_definition: str, desired: int = 1) -> str:
        response = self.client("ecs").create_service(
            cluster=cluster, serviceName=name, taskDefinition=task_definition, desiredCount=desired
        )
        return str(response["service"]["serviceArn"])

    def rolling_deployment(self, cluster: str, service: str, old_task_definition: str) -> None:
        """Give the service a second deployment, still ``ACTIVE``, on an older revision
        (a rolling update in progress: both revisions run)."""
        from moto.ecs.models import ecs_backends

        backend = ecs_backends[self.account][self.region]
        current = backend.services[f"{cluster}:{service}"]
        deployment = dict(current.deployments[0])
        deployment.update(
            id="ecs-svc/0000000000000000001", status="ACTIVE", taskDefinition=old_task_definition
        )
        current.deployments.append(deployment)

    def task(
        self,
        cluster: str,
        task_definition: str,
        digests: list[str | None],
        *,
        service: str | None = None,
    ) -> str:
        """A running task (Fargate) whose containers report ``digests`` (in order)."""
        from moto.ecs.models import Container, ecs_backends

        kwargs: dict[str, Any] = {"startedBy": "registry-hygiene-demo"}
        if service:
            kwargs = {"group": f"service:{service}", "startedBy": "ecs-svc/0000000000000000000"}
        response = self.client("ecs").run_task(
            cluster=cluster, taskDefinition=task_definition, launchType="FARGATE", count=1, **kwargs
        )
        arn = str(response["tasks"][0]["taskArn"])
        backend = ecs_backends[self.account][self.region]
        task = backend.tasks[cluster][arn]
        definition = backend.describe_task_definition(task_definition)
        containers = []
        for number, spec in enumerate(definition.container_definitions):
            container: Any = Container(definition)  # type: ignore[abstract]
            container.name = spec.get("name")
            container.image = spec.get("image")
            digest = digests[number] if number < len(digests) else None
            if digest:
                container.image_digest = digest
            containers.append(container)
        task.containers = containers
        return arn

    def schedule(self, name: str, cluster_arn: str, task_definition: str) -> None:
        """An EventBridge rule that runs ``task_definition`` on the cluster every night."""
        events = self.client("events")
        events.put_rule(Name=name, ScheduleExpression="cron(0 3 * * ? *)")
        events.put_targets(
            Rule=name,
            Targets=[
                {
                    "Id": "run-task",
                    "Arn": cluster_arn,
                    "RoleArn": f"arn:aws:iam::{self.account}:role/ecsEventsRole",
                    "EcsParameters": {"TaskDefinitionArn": task_definition, "TaskCount": 1},
                }
            ],
        )

    # ------------------------------------------------------------------ Lambda

    def _lambda_role(self) -> str:
        iam = self.client("iam")
        try:
            return str(iam.get_role(RoleName=LAMBDA_ROLE)["Role"]["Arn"])
        except iam.exceptions.NoSuchEntityException:
            document = '{"Version":"2012-10-17","Statement":[]}'
            return str(
                iam.create_role(RoleName=LAMBDA_ROLE, AssumeRolePolicyDocument=document)["Role"][
                    "Arn"
                ]
            )

    def function(self, name: str, versions: list[tuple[str, str]]) -> list[str]:
        """A container-image function published once per ``(image_uri, digest)``, in
        order; ``$LATEST`` ends on the last. Returns the version numbers."""
        lam = self.client("lambda")
        first_uri, _ = versions[0]
        lam.create_function(
            FunctionName=name,
            Role=self._lambda_role(),
            PackageType="Image",
            Code={"ImageUri": first_uri},
        )
        published = []
        for number, (uri, digest) in enumerate(versions):
            if number:
                lam.update_function_code(FunctionName=name, ImageUri=uri)
            version = str(lam.publish_version(FunctionName=name)["Version"])
            self._pin_version(name, version, uri, digest)
            published.append(version)
        self._pin_version(name, "$LATEST", *versions[-1])
        return published

    def _pin_version(self, name: str, version: str, uri: str, digest: str) -> None:
        from moto.awslambda.models import lambda_backends

        functions = lambda_backends[self.account][self.region]._lambdas
        if version == "$LATEST":
            function = functions.get_function_by_name_or_arn_with_qualifier(name)
        else:
            function = functions.get_function_by_name_or_arn_with_qualifier(name, version)
        function.code = {**function.code, "ImageUri": uri}
        function.code_sha_256 = digest.removeprefix("sha256:")

    def alias(self, function: str, name: str, version: str) -> None:
        self.client("lambda").create_alias(
            FunctionName=function, Name=name, FunctionVersion=version
        )

    # ------------------------------------------------------------------ Batch

    def job_definition(self, name: str, image: str) -> str:
        response = self.client("batch").register_job_definition(
            jobDefinitionName=name,
            type="container",
            containerProperties={"image": image, "vcpus": 1, "memory": 512},
        )
        return str(response["jobDefinitionArn"])


def reset_workloads() -> None:
    """Empty moto's ECS, EventBridge, Lambda, Batch, IAM and STS backends."""
    from moto.awslambda.models import lambda_backends
    from moto.batch.models import batch_backends
    from moto.ecs.models import ecs_backends
    from moto.events.models import events_backends
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for backends in (
        ecs_backends,
        events_backends,
        lambda_backends,
        batch_backends,
        iam_backends,
        sts_backends,
    ):
        backends.reset()


# --------------------------------------------------------------------------- the demo's

PROTECTED = ("latest", "main", "master", "stable", "prod*", "release*")
CLUSTER = "lab-prod"


@dataclass(frozen=True)
class DemoWorkload:
    """One workload of the demo and the image it keeps (``reason`` as in ``kept``)."""

    reason: str
    repository: str
    digest: str
    how: str  # by-tag | by-digest | moved-tag | scaled-to-zero | alias | schedule


def _stale_candidates(manifest: Any, *, keep_newest: int = 3, days: int = 60) -> list[Any]:
    """Tagged top-level images no protection keeps, oldest first, one per repository."""
    import fnmatch
    from datetime import timedelta

    children = {c for image in manifest.images for c in image.child_digests}
    opted_out = {
        r.name for r in manifest.repositories if r.resource_tags.get("hygiene:keep") == "true"
    }
    cutoff = manifest.now - timedelta(days=days)
    picked: dict[str, Any] = {}
    for repository in sorted({i.repository for i in manifest.images} - opted_out):
        tagged = sorted(
            (
                i
                for i in manifest.images_of(repository)
                if i.tags
                and not i.is_index
                and i.digest not in children
                and i.subject_digest is None
                and i.status == "ACTIVE"
                and not any(t.startswith("sha256-") for t in i.tags)
            ),
            key=lambda i: i.pushed_at,
        )
        for image in tagged[: max(0, len(tagged) - keep_newest)]:
            protected = any(fnmatch.fnmatchcase(t, p) for t in image.tags for p in PROTECTED)
            pulled = image.last_pull is not None and image.last_pull >= cutoff
            if not protected and not pulled and image.pushed_at < cutoff:
                picked[repository] = image
                break
    return sorted(picked.values(), key=lambda i: (i.repository, i.pushed_at))


def _moved_tag(manifest: Any, exclude: set[str]) -> tuple[Any, Any] | None:
    """(old untagged image, the image its repository's tag now points to)."""
    from datetime import timedelta

    children = {c for image in manifest.images for c in image.child_digests}
    cutoff = manifest.now - timedelta(days=60)
    for repository in sorted({i.repository for i in manifest.images} - exclude):
        images = manifest.images_of(repository)
        current = [i for i in images if i.tags and not i.is_index and i.subject_digest is None]
        old = [
            i
            for i in images
            if not i.tags
            and not i.is_index
            and i.digest not in children
            and i.subject_digest is None
            and i.status == "ACTIVE"
            and i.pushed_at < cutoff
            and (i.last_pull is None or i.last_pull < cutoff)
        ]
        if current and old:
            newest = max(current, key=lambda i: i.pushed_at)
            return min(old, key=lambda i: i.pushed_at), newest
    return None


def seed_demo_workloads(endpoint_url: str, manifest: Any) -> list[DemoWorkload]:
    """Run workloads on stale images of the seeded registry (see module docstring)."""
    host = f"{manifest.account}.dkr.ecr.{manifest.region}.amazonaws.com"
    seeder = WorkloadSeeder(endpoint_url, account=manifest.account, region=manifest.region)
    candidates = _stale_candidates(manifest)
    out: list[DemoWorkload] = []
    if not candidates:
        return out
    cluster = seeder.cluster(CLUSTER)

    def image(i: Any) -> str:
        return f"{host}/{i.repository}:{sorted(i.tags)[0]}"

    plan = iter(candidates)
    # a long-running service pinned by tag; its tasks report the digest they run
    api = next(plan, None)
    if api is not None:
        definition = seeder.task_definition("api", image(api))
        seeder.service(CLUSTER, "api", definition, desired=2)
        seeder.task(CLUSTER, definition, [api.digest], service="api")
        out.append(
            DemoWorkload(f"in-use:ecs:{CLUSTER}/service/api", api.repository, api.digest, "by-tag")
        )
    # a service scaled to zero: no task runs, scaling up needs the image
    idle = next(plan, None)
    if idle is not None:
        definition = seeder.task_definition("reindex", image(idle))
        seeder.service(CLUSTER, "reindex", definition, desired=0)
        out.append(
            DemoWorkload(
                f"in-use:ecs:{CLUSTER}/service/reindex",
                idle.repository,
                idle.digest,
                "scaled-to-zero",
            )
        )
    # a scheduled task (EventBridge rule) on the family's latest revision
    nightly = next(plan, None)
    if nightly is not None:
        definition = seeder.task_definition("nightly-report", image(nightly))
        family = definition.rsplit(":", 1)[0]
        seeder.schedule("nightly-report", cluster, family)
        out.append(
            DemoWorkload(
                f"in-use:ecs:{CLUSTER}/rule/nightly-report",
                nightly.repository,
                nightly.digest,
                "schedule",
            )
        )
    # a Lambda alias still on version 1 (the old image), $LATEST on the newest
    function = next(plan, None)
    if function is not None:
        newest = max(
            (i for i in manifest.images_of(function.repository) if i.tags and not i.is_index),
            key=lambda i: i.pushed_at,
        )
        seeder.function(
            "thumbnailer",
            [(image(function), function.digest), (image(newest), newest.digest)],
        )
        seeder.alias("thumbnailer", "live", "1")
        out.append(
            DemoWorkload(
                "in-use:lambda:thumbnailer:live", function.repository, function.digest, "alias"
            )
        )
    # a Batch job definition pinned by digest
    job = next(plan, None)
    if job is not None:
        seeder.job_definition("etl", f"{host}/{job.repository}@{job.digest}")
        out.append(DemoWorkload("in-use:batch:etl:1", job.repository, job.digest, "by-digest"))
    # a running task whose tag has moved since it started: kept by the digest it reports
    moved = _moved_tag(manifest, {w.repository for w in out})
    if moved is not None:
        old, current = moved
        definition = seeder.task_definition("worker", image(current))
        seeder.service(CLUSTER, "worker", definition, desired=1)
        seeder.task(CLUSTER, definition, [old.digest], service="worker")
        out.append(
            DemoWorkload(
                f"in-use:ecs:{CLUSTER}/service/worker", old.repository, old.digest, "moved-tag"
            )
        )
    return out
