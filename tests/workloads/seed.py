"""Seed workloads into the embedded AWS (moto): ECS, EventBridge, Lambda, Batch.

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
            session = self.session or boto3.Session(**DUMMY_CREDENTIALS, region_name=self.region)
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
            container = Container(definition)
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
