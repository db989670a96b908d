"""ECS (with EventBridge), Lambda and Batch sources against moto; failures pinned with Stubber."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.stub import Stubber

from hygiene.collect.workloads.base import SourceError
from hygiene.collect.workloads.batch import job_definition_images, read_batch
from hygiene.collect.workloads.ecs import read_ecs
from hygiene.collect.workloads.lambda_ import read_lambda
from tests.workloads.images import digest_of, host

H = host()
ACCOUNT_ARN = "arn:aws:ecs:us-east-1:123456789012"


def refs(result) -> set[tuple[str, str, str | None, str | None, bool]]:
    return {(u.where, u.repository, u.tag, u.digest, u.running) for u in result.uses}


def offline(service: str) -> Any:
    """A client for Stubber (never sends a request)."""
    return boto3.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
    ).client(service, config=BotoConfig(retries={"max_attempts": 1}))


# --------------------------------------------------------------------------- ECS


def seed_ecs(aws) -> dict[str, str]:
    prod = aws.cluster("prod")
    api_v1 = aws.task_definition("api", f"{H}/ml/api:v1")
    api_v2 = aws.task_definition("api", f"{H}/ml/api:v2", f"{H}/ml/sidecar:v5")
    aws.service("prod", "api", api_v2, desired=2)
    aws.rolling_deployment("prod", "api", api_v1)  # still draining the old revision
    # the task of the service reports the digest it pulled; api:v2 has moved since
    aws.task("prod", api_v2, [digest_of("ml/api:v2-old"), None], service="api")
    idle = aws.task_definition("idle", f"{H}/ml/idle:v1")
    aws.service("prod", "idle", idle, desired=0)  # scaled to zero
    aws.task_definition("report", f"{H}/ml/report:v1")
    report_v2 = aws.task_definition("report", f"{H}/ml/report@{digest_of('ml/report:v2')}")
    aws.schedule("nightly-report", prod, f"{ACCOUNT_ARN}:task-definition/report")
    aws.task_definition("unused", f"{H}/ml/unused:v1")  # registered, never run
    adhoc = aws.task_definition("adhoc", "nginx:1.27", f"{H}/ml/adhoc:v9")
    aws.task("prod", adhoc, [None, digest_of("ml/adhoc:v9")])
    return {"report_v2": report_v2}


def test_ecs_services_tasks_and_scheduled_tasks(aws):
    seed_ecs(aws)
    result = read_ecs(aws.client("ecs"), aws.client("events"))
    assert refs(result) == {
        # services: every live deployment (PRIMARY api:2 and the ACTIVE api:1)
        ("prod/service/api", "ml/api", "v2", None, False),
        ("prod/service/api", "ml/sidecar", "v5", None, False),
        ("prod/service/api", "ml/api", "v1", None, False),
        # the running task: its tag and the digest it actually runs
        ("prod/service/api", "ml/api", "v2", digest_of("ml/api:v2-old"), True),
        ("prod/service/api", "ml/sidecar", "v5", None, True),
        # a service scaled to zero still needs its image
        ("prod/service/idle", "ml/idle", "v1", None, False),
        # the rule names the family: its latest ACTIVE revision (by digest)
        ("prod/rule/nightly-report", "ml/report", None, digest_of("ml/report:v2"), False),
        # a standalone task; nginx is not in an ECR registry
        ("prod/task/adhoc:1", "ml/adhoc", "v9", digest_of("ml/adhoc:v9"), True),
    }
    assert {u.account for u in result.uses} == {"123456789012"}


def test_ecs_running_only_reads_tasks_alone(aws):
    seed_ecs(aws)
    result = read_ecs(aws.client("ecs"), None, running_only=True)
    assert {u.where for u in result.uses} == {"prod/service/api", "prod/task/adhoc:1"}
    assert all(u.running for u in result.uses)


def test_ecs_prefix_names_the_other_account(aws):
    seed_ecs(aws)
    result = read_ecs(aws.client("ecs"), aws.client("events"), prefix="210987654321/")
    assert all(u.where.startswith("210987654321/prod/") for u in result.uses)


def test_a_denied_ecs_call_fails_the_source():
    ecs = offline("ecs")
    with Stubber(ecs) as stub:
        stub.add_client_error(
            "list_clusters",
            service_error_code="AccessDeniedException",
            service_message="User: arn:aws:sts::123456789012:assumed-role/scanner is not "
            "authorized to perform: ecs:ListClusters",
            http_status_code=400,
        )
        with pytest.raises(SourceError) as raised:
            read_ecs(ecs, None)
    assert raised.value.operation == "ListClusters"
    assert raised.value.message.startswith("AccessDeniedException: User:")


def test_a_denied_eventbridge_call_fails_the_ecs_source():
    ecs, events = offline("ecs"), offline("events")
    cluster = f"{ACCOUNT_ARN}:cluster/prod"
    with Stubber(ecs) as ecs_stub, Stubber(events) as events_stub:
        ecs_stub.add_response("list_clusters", {"clusterArns": [cluster]}, {"maxResults": 100})
        events_stub.add_client_error(
            "list_event_buses", service_error_code="AccessDeniedException", http_status_code=400
        )
        with pytest.raises(SourceError, match="ListEventBuses: AccessDeniedException"):
            read_ecs(ecs, events)


def test_describe_tasks_failures_other_than_missing_fail_the_source():
    ecs = offline("ecs")
    cluster = f"{ACCOUNT_ARN}:cluster/prod"
    task = f"{ACCOUNT_ARN}:task/prod/0123456789abcdef"
    with Stubber(ecs) as stub:
        stub.add_response("list_clusters", {"clusterArns": [cluster]}, {"maxResults": 100})
        stub.add_response(
            "list_tasks",
            {"taskArns": [task]},
            {"cluster": cluster, "desiredStatus": "RUNNING", "maxResults": 100},
        )
        stub.add_response(
            "describe_tasks",
            {"tasks": [], "failures": [{"arn": task, "reason": "MISSING"}]},
            {"cluster": cluster, "tasks": [task]},
        )
        assert read_ecs(ecs, None, running_only=True).uses == []  # stopped in between
        stub.add_response("list_clusters", {"clusterArns": [cluster]}, {"maxResults": 100})
        stub.add_response(
            "list_tasks",
            {"taskArns": [task]},
            {"cluster": cluster, "desiredStatus": "RUNNING", "maxResults": 100},
        )
        stub.add_response(
            "describe_tasks",
            {"tasks": [], "failures": [{"arn": task, "reason": "ThrottlingException"}]},
            {"cluster": cluster, "tasks": [task]},
        )
        with pytest.raises(SourceError, match="DescribeTasks: 1 failure"):
            read_ecs(ecs, None, running_only=True)


def test_throttling_beyond_retries_fails_the_source():
    ecs = offline("ecs")
    with Stubber(ecs) as stub:
        stub.add_client_error(
            "list_clusters", service_error_code="ThrottlingException", http_status_code=400
        )
        with pytest.raises(SourceError, match="ListClusters: ThrottlingException"):
            read_ecs(ecs, None)


# --------------------------------------------------------------------------- Lambda


def test_lambda_every_version_and_alias(aws):
    old, new = digest_of("fn/resize:v1"), digest_of("fn/resize:v2")
    versions = aws.function("resize", [(f"{H}/fn/resize:v1", old), (f"{H}/fn/resize:v2", new)])
    assert versions == ["1", "2"]
    aws.alias("resize", "live", "1")  # production still on the old version
    aws.client("lambda").create_function(
        FunctionName="zipped",
        Role=aws._lambda_role(),
        Runtime="python3.12",
        Handler="index.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    result = read_lambda(aws.client("lambda"))
    assert refs(result) == {
        ("resize:live", "fn/resize", "v1", None, False),
        ("resize:live", "fn/resize", None, old, False),
        ("resize:2", "fn/resize", "v2", None, False),
        ("resize:2", "fn/resize", None, new, False),
        ("resize:$LATEST", "fn/resize", "v2", None, False),
        ("resize:$LATEST", "fn/resize", None, new, False),
    }


def test_lambda_weighted_alias_routes_to_two_versions():
    lam = offline("lambda")
    uri = f"{H}/fn/a:v1"
    with Stubber(lam) as stub:
        stub.add_response(
            "list_functions",
            {"Functions": [{"FunctionName": "a", "Version": "3", "PackageType": "Image"}]},
            {"FunctionVersion": "ALL", "MaxItems": 50},
        )
        stub.add_response(
            "list_aliases",
            {
                "Aliases": [
                    {
                        "Name": "canary",
                        "FunctionVersion": "4",
                        "RoutingConfig": {"AdditionalVersionWeights": {"3": 0.1}},
                    }
                ]
            },
            {"FunctionName": "a", "MaxItems": 50},
        )
        stub.add_response(
            "get_function",
            {"Code": {"ImageUri": uri, "ResolvedImageUri": f"{H}/fn/a@{digest_of('fn/a:v1')}"}},
            {"FunctionName": "a", "Qualifier": "3"},
        )
        result = read_lambda(lam)
    assert {u.where for u in result.uses} == {"a:canary"}


def test_a_denied_lambda_call_fails_the_source():
    lam = offline("lambda")
    with Stubber(lam) as stub:
        stub.add_client_error(
            "list_functions", service_error_code="AccessDeniedException", http_status_code=403
        )
        with pytest.raises(SourceError, match="ListFunctions: AccessDeniedException"):
            read_lambda(lam)


# --------------------------------------------------------------------------- Batch


def test_batch_active_job_definitions(aws):
    aws.job_definition("etl", f"{H}/ml/etl:v4")
    old = aws.job_definition("train", f"{H}/ml/train@{digest_of('ml/train:v1')}")
    aws.job_definition("train", f"{H}/ml/train:v2")
    aws.client("batch").deregister_job_definition(jobDefinition=old)
    result = read_batch(aws.client("batch"))
    assert refs(result) == {
        ("etl:1", "ml/etl", "v4", None, False),
        ("train:2", "ml/train", "v2", None, False),
    }


# A multi-node, a multi-container (ECS) and an EKS job definition as DescribeJobDefinitions
# returns them (moto leaves nodeProperties out of its answer, so Stubber pins the shape).
RECORDED_JOB_DEFINITIONS = [
    {
        "jobDefinitionName": "mpi",
        "jobDefinitionArn": "arn:aws:batch:us-east-1:123456789012:job-definition/mpi:3",
        "revision": 3,
        "status": "ACTIVE",
        "type": "multinode",
        "nodeProperties": {
            "numNodes": 4,
            "mainNode": 0,
            "nodeRangeProperties": [
                {"targetNodes": "0", "container": {"image": f"{H}/hpc/main:v2"}},
                {"targetNodes": "1:", "container": {"image": f"{H}/hpc/worker:v2"}},
            ],
        },
    },
    {
        "jobDefinitionName": "pipeline",
        "jobDefinitionArn": "arn:aws:batch:us-east-1:123456789012:job-definition/pipeline:1",
        "revision": 1,
        "status": "ACTIVE",
        "type": "container",
        "ecsProperties": {
            "taskProperties": [
                {
                    "containers": [
                        {"name": "main", "image": f"{H}/etl/main:v1"},
                        {"name": "log", "image": "amazon/aws-for-fluent-bit:stable"},
                    ]
                }
            ]
        },
    },
    {
        "jobDefinitionName": "on-eks",
        "jobDefinitionArn": "arn:aws:batch:us-east-1:123456789012:job-definition/on-eks:2",
        "revision": 2,
        "status": "ACTIVE",
        "type": "container",
        "eksProperties": {
            "podProperties": {
                "initContainers": [{"name": "fetch", "image": f"{H}/etl/fetch:v1"}],
                "containers": [{"name": "run", "image": f"{H}/etl/run@{digest_of('etl/run')}"}],
            }
        },
    },
]


def test_batch_node_ecs_and_eks_properties_are_read():
    batch = offline("batch")
    with Stubber(batch) as stub:
        stub.add_response(
            "describe_job_definitions",
            {"jobDefinitions": RECORDED_JOB_DEFINITIONS, "nextToken": "page-2"},
            {"status": "ACTIVE", "maxResults": 100},
        )
        stub.add_response(
            "describe_job_definitions",
            {"jobDefinitions": []},
            {"status": "ACTIVE", "maxResults": 100, "nextToken": "page-2"},
        )
        result = read_batch(batch)
    assert refs(result) == {
        ("mpi:3", "hpc/main", "v2", None, False),
        ("mpi:3", "hpc/worker", "v2", None, False),
        ("pipeline:1", "etl/main", "v1", None, False),
        ("on-eks:2", "etl/fetch", "v1", None, False),
        ("on-eks:2", "etl/run", None, digest_of("etl/run"), False),
    }
    assert job_definition_images({"containerProperties": {}}) == []


def test_a_denied_batch_call_fails_the_source():
    batch = offline("batch")
    with Stubber(batch) as stub:
        stub.add_client_error(
            "describe_job_definitions",
            service_error_code="AccessDeniedException",
            http_status_code=403,
        )
        with pytest.raises(SourceError, match="DescribeJobDefinitions: AccessDeniedException"):
            read_batch(batch)
