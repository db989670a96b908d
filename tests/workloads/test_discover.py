"""Running the configured sources: statuses, other accounts, fast re-reads, failures."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.stub import Stubber

from hygiene.collect.workloads.discover import discover
from hygiene.config import CollectSettings, InUseSettings, KubernetesSettings
from hygiene_demo.kubernetes_api import forbidden
from hygiene_demo.workloads import WorkloadSeeder
from tests.workloads.images import FOREIGN, digest_of, host
from tests.workloads.k8s_exec import ExecKubeconfig

H = host()
ROLE = f"arn:aws:iam::{FOREIGN}:role/registry-hygiene-discovery"
ONE_TRY = CollectSettings(max_attempts=1, connect_timeout=1, read_timeout=5)


def offline(service: str):
    return boto3.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
    ).client(service, config=BotoConfig(retries={"max_attempts": 1}))


def states(discovery) -> dict[str, tuple[str, int]]:
    return {s.name: (s.state, s.references) for s in discovery.statuses}


def run(aws, settings: InUseSettings, **kwargs):
    session = aws.session or boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return discover(
        session,
        settings,
        ONE_TRY,
        regions=["us-east-1"],
        endpoint_url=aws.endpoint_url,
        **kwargs,
    )


def test_every_source_reports_its_state(aws, k8s_api, kubeconfig, tmp_path):
    aws.cluster("prod")
    aws.service("prod", "api", aws.task_definition("api", f"{H}/ml/api:v1"))
    listed = tmp_path / "in-use.txt"
    listed.write_text("# from the VM fleet\nml/legacy:v2  docker.io/library/redis:7\n")
    settings = InUseSettings(
        kubernetes=KubernetesSettings(kubeconfig=kubeconfig, contexts=["lab"]),
    )
    discovery = run(aws, settings, in_use_file=listed)
    assert states(discovery) == {
        "ecs us-east-1": ("ok", 1),
        "lambda us-east-1": ("ok", 0),
        "batch us-east-1": ("ok", 0),
        "kubernetes lab": ("ok", discovery.statuses[3].references),
        "file in-use.txt": ("ok", 1),
    }
    assert discovery.statuses[3].references > 10
    assert discovery.complete
    assert {u.reason for u in discovery.uses} >= {
        "in-use:ecs:prod/service/api",
        "in-use:kubernetes:lab/ml/deployment/batch-worker",
        "in-use:file:in-use.txt:2",
    }
    assert discovery.calls["kubernetes:list pods"] == 1
    # no duplicates: a pod's spec and status name the same image
    assert len(discovery.uses) == len(set(discovery.uses))


def test_unconfigured_sources_are_not_consulted_and_say_so(aws):
    settings = InUseSettings(aws_sources=["lambda"])
    discovery = run(aws, settings)
    assert states(discovery) == {
        "lambda us-east-1": ("ok", 0),
        "ecs": ("not-configured", 0),
        "batch": ("not-configured", 0),
        "kubernetes": ("not-configured", 0),
        "file": ("not-configured", 0),
    }
    assert discovery.complete
    assert {s.detail for s in discovery.statuses if s.state == "not-configured"} == {
        "in_use.aws_sources",
        "in_use.kubernetes.contexts",
        "protections.in_use_images_file",
    }


def test_workloads_of_another_account_through_an_assumed_role(aws, monkeypatch):
    # moto picks the account from the credentials only without MOTO_ACCOUNT_ID
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    aws.cluster("prod")
    aws.service("prod", "api", aws.task_definition("api", f"{H}/ml/api:v1"))
    partner = WorkloadSeeder(aws.endpoint_url, account=FOREIGN)
    sts = aws.client("sts")
    credentials = sts.assume_role(RoleArn=ROLE, RoleSessionName="seed")["Credentials"]
    partner.session = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    )
    partner.cluster("partner")
    partner.service("partner", "web", partner.task_definition("web", f"{H}/web/frontend:v2"))
    attached = []
    discovery = run(
        aws, InUseSettings(aws_sources=["ecs"], assume_roles=[ROLE]), attach=attached.append
    )
    assert states(discovery)[f"ecs {FOREIGN}/us-east-1"] == ("ok", 1)
    assert {u.where for u in discovery.uses} == {
        "prod/service/api",
        f"{FOREIGN}/partner/service/web",
    }
    # the partner's workload pulls from this registry: the reference names it
    [web] = [u for u in discovery.uses if u.repository == "web/frontend"]
    assert web.account == "123456789012"
    assert len(attached) == 1  # the call counter sees the assumed role's calls too


def test_a_role_that_cannot_be_assumed_fails_that_account(aws):
    sts = offline("sts")
    with Stubber(sts) as stub:
        stub.add_client_error(
            "assume_role",
            service_error_code="AccessDenied",
            service_message=f"User is not authorized to perform: sts:AssumeRole on {ROLE}",
            http_status_code=403,
            expected_params={"RoleArn": ROLE, "RoleSessionName": "registry-hygiene-discovery"},
        )
        settings = InUseSettings(aws_sources=["ecs", "batch"], assume_roles=[ROLE])
        discovery = run(aws, settings, sts=sts)
    failed = {s.name: s.detail for s in discovery.failed}
    assert set(failed) == {f"ecs {FOREIGN}/us-east-1", f"batch {FOREIGN}/us-east-1"}
    assert all(
        d.startswith(f"{ROLE}: AssumeRole: AccessDenied: User is not") for d in failed.values()
    )
    assert not discovery.complete
    assert states(discovery)["ecs us-east-1"] == ("ok", 0)  # this account was still read
    # IAM refused it: apply's in-use re-check fails its run on this (docs/in-use.md)
    assert discovery.refused == {name: "AccessDenied" for name in failed}


def test_a_failing_context_fails_only_itself(aws, k8s_api, kubeconfig):
    k8s_api.fail("pods", 403, forbidden("pods"))
    settings = InUseSettings(
        aws_sources=["ecs"],
        kubernetes=KubernetesSettings(kubeconfig=kubeconfig, contexts=["lab"]),
    )
    discovery = run(aws, settings)
    assert states(discovery)["ecs us-east-1"] == ("ok", 0)
    [failed] = discovery.failed
    assert failed.name == "kubernetes lab"
    assert failed.detail.startswith("list pods: HTTP 403: pods is forbidden")
    assert not discovery.complete
    # RBAC refused it: apply's in-use re-check fails its run on this (docs/in-use.md)
    assert discovery.refused == {"kubernetes lab": "Forbidden"}


def test_a_context_whose_credentials_stay_refused_fails_refused(aws, k8s_api, tmp_path):
    """A 401 also with the kubeconfig loaded afresh: failed, and refused (Unauthorized)."""
    stale = k8s_api.kubeconfig(tmp_path / "kubeconfig", {"lab": "revoked-token"})
    settings = InUseSettings(
        aws_sources=["ecs"],
        kubernetes=KubernetesSettings(kubeconfig=stale, contexts=["lab"]),
    )
    discovery = run(aws, settings)
    assert states(discovery)["ecs us-east-1"] == ("ok", 0)
    [failed] = discovery.failed
    assert failed.name == "kubernetes lab"
    assert failed.detail.startswith("list pods: HTTP 401: Unauthorized (again with the")
    assert not discovery.complete
    assert discovery.refused == {"kubernetes lab": "Unauthorized"}
    assert k8s_api.calls("pods") == 2


def test_an_expired_token_loaded_afresh_reads_the_context(aws, k8s_api, tmp_path):
    kubeconfig = ExecKubeconfig(k8s_api, tmp_path / "exec", ["expired-token", k8s_api.token])
    settings = InUseSettings(
        aws_sources=[], kubernetes=KubernetesSettings(kubeconfig=kubeconfig.path, contexts=["lab"])
    )
    discovery = run(aws, settings)
    assert discovery.complete and discovery.refused == {}
    assert states(discovery)["kubernetes lab"][0] == "ok"
    assert kubeconfig.runs == 2


def test_an_unreadable_file_fails_the_file_source(aws, tmp_path):
    discovery = run(aws, InUseSettings(aws_sources=[]), in_use_file=tmp_path / "gone.txt")
    [failed] = discovery.failed
    assert (failed.name, failed.source) == ("file gone.txt", "file")
    assert "No such file" in failed.detail


def test_running_only_reads_tasks_pods_and_the_file(aws, k8s_api, kubeconfig, tmp_path):
    aws.cluster("prod")
    api = aws.task_definition("api", f"{H}/ml/api:v1")
    aws.service("prod", "api", api)
    aws.task("prod", api, [digest_of("ml/api:v1")], service="api")
    aws.job_definition("etl", f"{H}/ml/etl:v1")
    listed = tmp_path / "in-use.txt"
    listed.write_text("ml/legacy:v2\n")
    settings = InUseSettings(kubernetes=KubernetesSettings(kubeconfig=kubeconfig, contexts=["lab"]))
    discovery = run(aws, settings, in_use_file=listed, running_only=True)
    assert [s.name for s in discovery.statuses] == [
        "ecs us-east-1",
        "kubernetes lab",
        "file in-use.txt",
    ]
    assert {u.source for u in discovery.uses} == {"ecs", "kubernetes", "file"}
    assert all(u.running for u in discovery.uses if u.source != "file")
    assert {p for p, _ in k8s_api.requests} == {"/api/v1/pods"}


def test_settings_reject_what_is_not_a_role_arn():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="assume_roles"):
        InUseSettings(assume_roles=["registry-hygiene-discovery"])
    with pytest.raises(ValidationError, match="aws_sources"):
        InUseSettings(aws_sources=["ec2"])
    assert InUseSettings().aws_sources == ["ecs", "lambda", "batch"]
    assert KubernetesSettings(kubeconfig=Path("~/k")).kubeconfig == Path("~/k").expanduser()
