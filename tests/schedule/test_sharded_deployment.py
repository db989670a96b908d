"""cron/k8s/sharded: an Indexed Job scans in shards, the nightly job merges their parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from hygiene.cli import cli
from hygiene.collect.shards import Shard
from tests.conftest import REPO_ROOT

SHARDED = REPO_ROOT / "cron" / "k8s" / "sharded"


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    return dict(yaml.safe_load((SHARDED / "kustomization.yaml").read_text()))


@pytest.fixture(scope="module")
def scan() -> dict[str, Any]:
    return dict(yaml.safe_load((SHARDED / "cronjob-scan.yaml").read_text()))


def nightly() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO_ROOT / "cron" / "k8s" / "cronjob-nightly.yaml").read_text()))


def patched_args(kustomization: dict[str, Any], name: str) -> list[str]:
    [patch] = [p for p in kustomization["patches"] if p["target"]["name"] == name]
    [operation] = yaml.safe_load(patch["patch"])
    assert operation["path"] == "/spec/jobTemplate/spec/template/spec/containers/0/args"
    return list(operation["value"])


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_the_overlay_adds_the_scan_to_the_base(kustomization: dict[str, Any]) -> None:
    assert kustomization["resources"] == ["../", "cronjob-scan.yaml"]
    for resource in kustomization["resources"]:
        assert (SHARDED / resource).exists()


def test_the_scan_is_an_indexed_job_of_n_shards(scan: dict[str, Any]) -> None:
    job = scan["spec"]["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == job["parallelism"]
    [container] = job["template"]["spec"]["containers"]
    args = container["args"]
    assert args[0] == "scan"
    spec = option(args, "--shard")
    assert spec == f"$(JOB_COMPLETION_INDEX)/{job['completions']}"
    # what Kubernetes passes once it has substituted the index
    for index in range(job["completions"]):
        assert Shard.parse(spec.replace("$(JOB_COMPLETION_INDEX)", str(index))) == Shard(
            index, job["completions"]
        )
    env = {e["name"]: e for e in container["env"]}
    assert option(args, "--run-id") == "$(HYGIENE_RUN_ID)"
    label = env["HYGIENE_RUN_ID"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert label == "metadata.labels['batch.kubernetes.io/job-name']"
    pod = job["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_nightly_and_weekly_jobs_merge_the_parts_the_scan_writes(
    kustomization: dict[str, Any], scan: dict[str, Any]
) -> None:
    [container] = scan["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    parts = option(container["args"], "--parts")
    assert parts.startswith("s3://")
    assert scan["spec"]["schedule"] == nightly()["spec"]["schedule"]
    for kind in ("nightly", "weekly"):
        args = patched_args(kustomization, f"registry-hygiene-{kind}")
        assert args[:2] == ["run", kind]
        assert option(args, "--parts") == parts
        wait, max_age = int(option(args, "--wait")), int(option(args, "--max-age"))
        # waits no longer than the scan may run, and never picks yesterday's parts
        assert wait >= scan["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
        assert max_age < 24 * 3600


@pytest.mark.parametrize("kind", ["nightly", "weekly"])
def test_the_patched_commands_parse(
    kustomization: dict[str, Any], kind: str, tmp_path: Path
) -> None:
    """Every option the manifests pass exists (``--help`` after them parses the rest)."""
    args = patched_args(kustomization, f"registry-hygiene-{kind}")
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, result.output


def test_the_scan_command_parses(scan: dict[str, Any]) -> None:
    [container] = scan["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    args = [a.replace("$(JOB_COMPLETION_INDEX)", "0").replace("$(HYGIENE_RUN_ID)", "r-1")
            for a in container["args"]]  # fmt: skip
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
