"""Measure in-use discovery: API calls per source against the formula, and wall time.

``python -m benchmarks.discovery [--repeat N]`` seeds the embedded AWS (moto) with a
lab-sized fleet — ECS clusters with services, running tasks and scheduled tasks, Lambda
container-image functions with published versions and aliases, Batch job definitions —
and serves a Kubernetes cluster from the local API server, then runs the production
discovery (:func:`hygiene.collect.workloads.discover`) and prints, per operation, the
calls made and the calls real AWS needs (:func:`expected_calls`: its page sizes; moto
answers every list in one page, so it may need fewer).
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hygiene.collect.session import ApiCallCounter
from hygiene.collect.workloads import discover
from hygiene.config import CollectSettings, InUseSettings, KubernetesSettings
from hygiene_demo.kubernetes_api import KubernetesApi
from hygiene_demo.registry import EmbeddedRegistry
from hygiene_demo.workloads import WorkloadSeeder, reset_workloads

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
DIGEST = "sha256:" + "0" * 64


@dataclass(frozen=True)
class Fleet:
    clusters: int = 3
    services: int = 20  # per cluster; every fifth scaled to zero
    tasks_per_service: int = 2
    rolling: int = 2  # services per cluster with a second (ACTIVE) deployment
    rules: int = 2  # scheduled tasks per cluster
    image_functions: int = 15
    versions: int = 3  # published versions per image function
    zip_functions: int = 10
    job_definitions: int = 150
    pods: int = 1200
    deployments: int = 300
    page_size: int = 500  # Kubernetes list page

    @property
    def running_services(self) -> int:
        return self.services - self.services // 5


def seed_fleet(seeder: WorkloadSeeder, fleet: Fleet) -> None:
    for c in range(fleet.clusters):
        name = f"cluster-{c}"
        arn = seeder.cluster(name)
        for s in range(fleet.services):
            image = f"{HOST}/team{c}/svc{s}:v1"
            definition = seeder.task_definition(f"c{c}-svc{s}", image)
            desired = 0 if s % 5 == 4 else fleet.tasks_per_service
            seeder.service(name, f"svc{s}", definition, desired=desired)
            if s < fleet.rolling:
                old = seeder.task_definition(f"c{c}-svc{s}", f"{HOST}/team{c}/svc{s}:v0")
                seeder.rolling_deployment(name, f"svc{s}", old)
            for _ in range(desired):
                seeder.task(name, definition, [DIGEST], service=f"svc{s}")
        for r in range(fleet.rules):
            definition = seeder.task_definition(f"c{c}-job{r}", f"{HOST}/team{c}/job{r}:v1")
            seeder.schedule(f"c{c}-job{r}", arn, definition)
    for f in range(fleet.image_functions):
        versions = [(f"{HOST}/fn/f{f}:v{v}", DIGEST) for v in range(fleet.versions)]
        published = seeder.function(f"image-{f}", versions)
        seeder.alias(f"image-{f}", "live", published[0])
    lam = seeder.client("lambda")
    for f in range(fleet.zip_functions):
        lam.create_function(
            FunctionName=f"zip-{f}",
            Role=seeder._lambda_role(),
            Runtime="python3.12",
            Handler="index.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )
    for j in range(fleet.job_definitions):
        seeder.job_definition(f"job-{j}", f"{HOST}/batch/job{j}:v1")


def kubernetes_objects(fleet: Fleet) -> dict[str, dict[str, Any]]:
    """Synthetic List documents: ``pods`` running pods, ``deployments`` templates."""

    def pod_spec(image: str) -> dict[str, Any]:
        return {"containers": [{"name": "app", "image": image}]}

    pods = [
        {
            "metadata": {"name": f"app-{p}", "namespace": f"ns{p % 20}"},
            "spec": pod_spec(f"{HOST}/k8s/app{p % 300}:v1"),
            "status": {
                "phase": "Running",
                "containerStatuses": [
                    {
                        "name": "app",
                        "image": f"{HOST}/k8s/app{p % 300}:v1",
                        "imageID": (f"{HOST}/k8s/app{p % 300}@{DIGEST}"),
                    }
                ],
            },
        }
        for p in range(fleet.pods)
    ]
    deployments = [
        {
            "metadata": {"name": f"app{d}", "namespace": f"ns{d % 20}"},
            "spec": {"replicas": 4, "template": {"spec": pod_spec(f"{HOST}/k8s/app{d}:v1")}},
        }
        for d in range(fleet.deployments)
    ]
    empty: list[dict[str, Any]] = []
    return {
        "pods": {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": pods},
        "deployments": {
            "kind": "DeploymentList",
            "apiVersion": "apps/v1",
            "metadata": {},
            "items": deployments,
        },
        "statefulsets": {"kind": "StatefulSetList", "apiVersion": "apps/v1", "items": empty},
        "daemonsets": {"kind": "DaemonSetList", "apiVersion": "apps/v1", "items": empty},
        "jobs": {"kind": "JobList", "apiVersion": "batch/v1", "items": empty},
        "cronjobs": {"kind": "CronJobList", "apiVersion": "batch/v1", "items": empty},
    }


def pages(items: int, size: int) -> int:
    return max(1, math.ceil(items / size))


def expected_calls(fleet: Fleet) -> dict[str, int]:
    """Calls real AWS and the API server need for ``fleet`` (their page sizes)."""
    tasks = fleet.running_services * fleet.tasks_per_service
    definitions = fleet.clusters * (fleet.services + fleet.rolling + fleet.rules)
    function_entries = fleet.image_functions * (1 + fleet.versions) + fleet.zip_functions
    return {
        "ListClusters": pages(fleet.clusters, 100),
        "ListTasks": fleet.clusters * pages(tasks, 100),
        "DescribeTasks": fleet.clusters * math.ceil(tasks / 100),
        "ListServices": fleet.clusters * pages(fleet.services, 100),
        "DescribeServices": fleet.clusters * math.ceil(fleet.services / 10),
        "ListEventBuses": 1,
        "ListRuleNamesByTarget": fleet.clusters,  # one bus
        "ListTargetsByRule": fleet.clusters * fleet.rules,
        "DescribeTaskDefinition": definitions,
        "ListFunctions": pages(function_entries, 50),
        "ListAliases": fleet.image_functions,
        "GetFunction": fleet.image_functions * (1 + fleet.versions),
        "DescribeJobDefinitions": pages(fleet.job_definitions, 100),
        "kubernetes:list pods": pages(fleet.pods, fleet.page_size),
        "kubernetes:list deployments": pages(fleet.deployments, fleet.page_size),
        "kubernetes:list statefulsets": 1,
        "kubernetes:list daemonsets": 1,
        "kubernetes:list jobs": 1,
        "kubernetes:list cronjobs": 1,
    }


def run(fleet: Fleet, repeat: int) -> tuple[dict[str, int], list[float], int, list[float]]:
    """(calls of one full discovery, wall times, references, fast re-read wall times)."""
    with EmbeddedRegistry() as registry, KubernetesApi(kubernetes_objects(fleet)) as api:
        reset_workloads()
        seed_fleet(WorkloadSeeder(registry.endpoint_url), fleet)
        kubeconfig = api.kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig")
        settings = InUseSettings(
            kubernetes=KubernetesSettings(
                kubeconfig=kubeconfig, contexts=["lab"], page_size=fleet.page_size
            )
        )
        walls, fast, calls, references = [], [], Counter[str](), 0
        for number in range(repeat):
            counter = ApiCallCounter()
            session = registry.session()
            counter.attach(session)
            start = time.perf_counter()
            found = discover(
                session,
                settings,
                CollectSettings(),
                regions=["us-east-1"],
                endpoint_url=registry.endpoint_url,
            )
            walls.append(time.perf_counter() - start)
            full_calls = Counter(counter.as_dict()) + found.calls
            start = time.perf_counter()
            discover(
                session,
                settings,
                CollectSettings(),
                regions=["us-east-1"],
                endpoint_url=registry.endpoint_url,
                running_only=True,
            )
            fast.append(time.perf_counter() - start)
            if number == 0:
                calls = full_calls
                references = len(found.uses)
                assert found.complete, found.failed
        reset_workloads()
    return dict(calls), walls, references, fast


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.discovery", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    fleet = Fleet()
    made, walls, references, fast = run(fleet, args.repeat)
    expected = expected_calls(fleet)
    print(f"fleet: {fleet}")
    print(f"references found: {references}")
    print(f"{'operation':32} {'made (moto)':>12} {'real AWS':>9}")
    for op in sorted(set(made) | set(expected)):
        print(f"{op:32} {made.get(op, 0):>12} {expected.get(op, 0):>9}")
    print(f"{'total':32} {sum(made.values()):>12} {sum(expected.values()):>9}")
    print(
        f"wall time of a full discovery over {args.repeat} runs: median "
        f"{statistics.median(walls):.2f} s, min {min(walls):.2f} s, max {max(walls):.2f} s; "
        f"fast re-read (running tasks, pods): median {statistics.median(fast):.2f} s"
    )


if __name__ == "__main__":
    main()
