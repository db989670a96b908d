"""End to end on the embedded AWS: workloads pin images the rules would otherwise delete.

The registry holds only stale images (old, never pulled, no newest-K, no protected tag):
without in-use detection IM001/IM002 would propose deleting every one of them. ECS,
EventBridge, Lambda and Batch in moto (and the local Kubernetes API) run some of them;
the production scan (collect → evaluate → plan) must keep exactly those, whole units
included, and say where each runs.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hygiene.scan import collect, evaluate, open_registry
from hygiene_demo.workloads import WorkloadSeeder
from tests import builders
from tests.apply.registry import Seeder
from tests.builders import NOW
from tests.workloads.k8s_exec import ExecKubeconfig

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
POLICY = {
    "protections": {"keep_newest": 0},
    "rules": {"IM002": {"keep_newest": 0}},
    "selection": {"select": ["IM"]},
}


def scan(ecr, policy=POLICY):
    config = builders.config(policy)
    handle = open_registry(config, endpoint_url=ecr.endpoint_url, session=ecr.session())
    inventory = collect(handle, config, now=NOW, progress=False)
    return inventory, evaluate(inventory, config, NOW)


@pytest.fixture
def registry(ecr, aws: WorkloadSeeder) -> dict[str, str]:
    """Stale images, and workloads running some of them (names → digests)."""
    images = Seeder(ecr, NOW)
    for name in ("ml/api", "ml/web", "ml/idle", "ml/report", "ml/etl", "fn/resize", "ml/multi"):
        images.repo(name)
    d = {
        "api-v1": images.image("ml/api", "v1", days_old=400),
        "api-v2": images.image("ml/api", "v2", days_old=390),  # nothing runs it
        "web-old": images.image("ml/web", None, days_old=300),  # "current" moved off it
        "web-new": images.image("ml/web", "current", days_old=200),
        "idle": images.image("ml/idle", "v1", days_old=500),
        "report": images.image("ml/report", "v1", days_old=500),
        "etl": images.image("ml/etl", "v3", days_old=500),
        "resize-1": images.image("fn/resize", "v1", days_old=600),
        "resize-2": images.image("fn/resize", "v2", days_old=300),
        "amd64": images.image("ml/multi", None, days_old=400),
        "arm64": images.image("ml/multi", None, days_old=400),
    }
    d["multi"] = images.index("ml/multi", [d["amd64"], d["arm64"]], tag="1.0", days_old=400)

    aws.cluster("prod")
    # by tag: a long-running service
    aws.service("prod", "api", aws.task_definition("api", f"{HOST}/ml/api:v1"), desired=2)
    # moved tag: the task still runs the digest it pulled before `current` moved
    web = aws.task_definition("web", f"{HOST}/ml/web:current")
    aws.service("prod", "web", web)
    aws.task("prod", web, [d["web-old"]], service="web")
    # a service scaled to zero
    aws.service("prod", "idle", aws.task_definition("idle", f"{HOST}/ml/idle:v1"), desired=0)
    # a scheduled task (EventBridge rule → family → latest ACTIVE revision)
    cluster = f"arn:aws:ecs:us-east-1:{aws.account}:cluster/prod"
    report = aws.task_definition("report", f"{HOST}/ml/report:v1")
    aws.schedule("nightly-report", cluster, report.rsplit(":", 1)[0])
    # by digest: a Batch job definition
    aws.job_definition("etl", f"{HOST}/ml/etl@{d['etl']}")
    # a Lambda alias on an old version; $LATEST on the new one
    aws.function(
        "resize",
        [(f"{HOST}/fn/resize:v1", d["resize-1"]), (f"{HOST}/fn/resize:v2", d["resize-2"])],
    )
    aws.alias("resize", "live", "1")
    # a task on ARM reports the platform manifest it pulled, not the index
    multi = aws.task_definition("multi", f"{HOST}/ml/multi:1.0")
    aws.task("prod", multi, [d["arm64"]])
    return d


def test_images_in_use_are_kept_with_where_they_run(ecr, registry):
    d = registry
    inventory, result = scan(ecr)
    assert inventory.run.complete, inventory.run.errors
    states = {s.name: s.state for s in inventory.run.in_use}
    assert states == {
        "ecs us-east-1": "ok",
        "lambda us-east-1": "ok",
        "batch us-east-1": "ok",
        "kubernetes": "not-configured",
        "file": "not-configured",
    }
    kept = {k.image_digest: k.reasons for k in result.kept}
    assert kept[d["api-v1"]] == ("in-use:ecs:prod/service/api",)
    assert kept[d["web-old"]] == ("in-use:ecs:prod/service/web",)
    assert kept[d["idle"]] == ("in-use:ecs:prod/service/idle",)
    assert kept[d["report"]] == ("in-use:ecs:prod/rule/nightly-report",)
    assert kept[d["etl"]] == ("in-use:batch:etl:1",)
    assert kept[d["resize-1"]] == ("in-use:lambda:resize:live",)
    # the index is kept because a task runs its arm64 manifest; amd64 stays with it
    assert kept[d["multi"]] == ("in-use:ecs:prod/task/multi:1",)
    deleted = {digest for p in result.proposals for digest in p.target.get("digests", [])}
    assert deleted == {d["api-v2"]}  # the only image nothing runs
    # the proposal says which in-use sources were read before it was made
    [proposal] = result.proposals
    assert proposal.evidence["in_use_checked"] == [
        "ecs us-east-1",
        "lambda us-east-1",
        "batch us-east-1",
    ]
    assert {d["amd64"], d["arm64"]}.isdisjoint(deleted)
    assert {"ListClusters", "DescribeTasks", "ListFunctions", "DescribeJobDefinitions"} <= set(
        inventory.run.api_calls
    )


def test_without_workloads_the_same_images_would_be_deleted(ecr, registry):
    """The control: the same registry with in-use discovery off proposes them all."""
    policy = {**POLICY, "in_use": {"aws_sources": []}}
    _, result = scan(ecr, policy)
    deleted = {digest for p in result.proposals for digest in p.target.get("digests", [])}
    assert {registry[k] for k in ("api-v1", "web-old", "idle", "etl", "resize-1")} <= deleted
    assert not any(r.startswith("in-use") for k in result.kept for r in k.reasons)


def test_a_source_that_cannot_be_read_stops_every_image_deletion(
    ecr, registry, k8s_api, tmp_path: Path
):
    from hygiene_demo.kubernetes_api import forbidden

    k8s_api.fail("pods", 403, forbidden("pods"))
    kubeconfig = k8s_api.kubeconfig(tmp_path / "kubeconfig")
    policy = {
        **POLICY,
        "in_use": {"kubernetes": {"kubeconfig": str(kubeconfig), "contexts": ["lab"]}},
    }
    inventory, result = scan(ecr, policy)
    assert not inventory.run.complete
    [error] = inventory.run.errors
    assert error.operation == "in-use kubernetes lab"
    assert error.message.startswith("list pods: HTTP 403")
    assert not [p for p in result.proposals if p.action.value == "delete-images"]
    kept = {k.image_digest: k.reasons for k in result.kept}
    assert kept[registry["api-v2"]] == ("in-use-unknown:kubernetes lab",)
    # what the sources that worked found is still said
    assert "in-use:ecs:prod/service/api" in kept[registry["api-v1"]]
    # and `hygiene scan` says which source failed, and which were not consulted
    from rich.console import Console

    from hygiene.cli.output import print_table

    console = Console(record=True, width=200)
    print_table(result, console)
    text = console.export_text()
    assert "✗ in-use kubernetes lab: list pods: HTTP 403" in text
    assert "in-use sources read: ecs us-east-1 6, lambda us-east-1 6, batch us-east-1 1" in text
    assert "failed: kubernetes lab (no image deletion proposed); not configured: file" in text


def test_credentials_refused_again_after_a_fresh_load_stop_every_image_deletion(
    ecr, registry, k8s_api, tmp_path: Path
):
    """A 401 that stays when the kubeconfig is loaded afresh: the context failed, refused."""
    revoked = k8s_api.kubeconfig(tmp_path / "kubeconfig", {"lab": "revoked-token"})
    policy = {
        **POLICY,
        "in_use": {"kubernetes": {"kubeconfig": str(revoked), "contexts": ["lab"]}},
    }
    inventory, result = scan(ecr, policy)
    assert not inventory.run.complete
    [error] = inventory.run.errors
    assert error.operation == "in-use kubernetes lab"
    assert error.message.startswith("list pods: HTTP 401: Unauthorized (again with the")
    assert k8s_api.calls("pods") == 2  # the first read, and one with fresh credentials
    assert not [p for p in result.proposals if p.action.value == "delete-images"]
    kept = {k.image_digest: k.reasons for k in result.kept}
    assert kept[registry["api-v2"]] == ("in-use-unknown:kubernetes lab",)


def test_a_token_that_expired_is_loaded_afresh_and_the_scan_completes(
    ecr, registry, k8s_api, tmp_path: Path
):
    exec_config = ExecKubeconfig(k8s_api, tmp_path / "exec", ["expired-token", k8s_api.token])
    policy = {
        **POLICY,
        "in_use": {"kubernetes": {"kubeconfig": str(exec_config.path), "contexts": ["lab"]}},
    }
    inventory, result = scan(ecr, policy)
    assert inventory.run.complete, inventory.run.errors
    assert {s.name: s.state for s in inventory.run.in_use}["kubernetes lab"] == "ok"
    assert exec_config.runs == 2
    deleted = {digest for p in result.proposals for digest in p.target.get("digests", [])}
    assert deleted == {registry["api-v2"]}


def test_the_workloads_are_asked_after_the_registrys_last_answer(ecr, registry):
    """In-use discovery runs alongside the building of the frames, never alongside the
    registry's reads: a workload started while the repositories were read still counts."""
    config = builders.config(POLICY)
    session = ecr.session()
    calls: list[str] = []
    lock = threading.Lock()

    def record(event_name: str, **_: object) -> None:
        with lock:
            calls.append(event_name.split(".")[1])  # before-call.<service>.<operation>

    session.events.register("before-call", record)
    handle = open_registry(config, endpoint_url=ecr.endpoint_url, session=session)
    inventory = collect(handle, config, now=NOW, progress=False)
    services = set(calls)
    assert {"ecr", "ecs", "lambda", "batch"} <= services
    last_registry_call = max(i for i, service in enumerate(calls) if service == "ecr")
    first_workload_call = min(i for i, service in enumerate(calls) if service != "ecr")
    assert last_registry_call < first_workload_call
    assert {s.name.split()[0] for s in inventory.run.in_use if s.state == "ok"} >= {
        "ecs",
        "lambda",
        "batch",
    }
