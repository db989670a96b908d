"""moto's workload backends as docs/ecr-facts.md describes them ("The moto emulator").

If an upgrade fixes one of these, the seeder's correction (hygiene_demo/workloads.py)
and the fact should go; this test says which.
"""

from __future__ import annotations

import hashlib

from hygiene_demo.workloads import WorkloadSeeder

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def test_ecs_tasks_services_and_batch_as_moto_answers(aws: WorkloadSeeder) -> None:
    ecs = aws.client("ecs")
    aws.cluster("prod")
    definition = aws.task_definition("api", f"{HOST}/a:1", f"{HOST}/b:1")
    run = ecs.run_task(cluster="prod", taskDefinition=definition, launchType="FARGATE")
    [task] = run["tasks"]
    assert [c["name"] for c in task["containers"]] == ["c0"]  # only the first container
    assert "imageDigest" not in task["containers"][0]
    described = ecs.describe_tasks(cluster="prod", tasks=[task["taskArn"]])["tasks"][0]
    assert described["lastStatus"] == "DEACTIVATING"  # one step per describe
    aws.service("prod", "api", definition)
    ecs.update_service(cluster="prod", service="api", taskDefinition=definition)
    service = ecs.describe_services(cluster="prod", services=["api"])["services"][0]
    assert [d["status"] for d in service["deployments"]] == ["PRIMARY"]  # never rolls

    batch = aws.client("batch")
    batch.register_job_definition(
        jobDefinitionName="mpi",
        type="multinode",
        nodeProperties={
            "numNodes": 2,
            "mainNode": 0,
            "nodeRangeProperties": [{"targetNodes": "0:", "container": {"image": f"{HOST}/m:1"}}],
        },
    )
    [mpi] = batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"]
    assert "nodeProperties" not in mpi


def test_lambda_versions_share_the_image_uri_of_latest(aws: WorkloadSeeder) -> None:
    lam = aws.client("lambda")
    lam.create_function(
        FunctionName="f",
        Role=aws._lambda_role(),
        PackageType="Image",
        Code={"ImageUri": f"{HOST}/f:1"},
    )
    lam.publish_version(FunctionName="f")
    lam.update_function_code(FunctionName="f", ImageUri=f"{HOST}/f:2")
    version = lam.get_function(FunctionName="f", Qualifier="1")["Code"]
    assert version["ImageUri"] == f"{HOST}/f:2"  # real Lambda keeps f:1 for version 1
    assert version["ResolvedImageUri"].endswith(
        "@sha256:" + hashlib.sha256(f"{HOST}/f:1".encode()).hexdigest()
    )
