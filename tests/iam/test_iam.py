"""Declared permissions, the generated policies, and the recorder of AWS calls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hygiene import iam
from hygiene.cli import cli
from hygiene.cli.common import run_cli
from tests.builders import REPO_ROOT
from tests.iam_recorder import SCAFFOLDING_DIRS, call_as_hygiene_module, read_records, recording

DEMO_DIR = SCAFFOLDING_DIRS[0]

APPLY_WRITES = {
    "ecr:BatchDeleteImage",
    "ecr:PutLifecyclePolicy",
    "ecr:PutImageScanningConfiguration",
    "ecr:PutImageTagMutability",
    "ecr:SetRepositoryPolicy",
    "ecr:DeleteRepository",
}


@pytest.mark.parametrize("role", iam.ROLES)
def test_committed_policy_is_the_generated_one(role, capsys):
    committed = (REPO_ROOT / "cron" / "iam" / f"{role}.json").read_text()
    assert run_cli(cli, ["iam", "policy", "--role", role]) == 0
    assert capsys.readouterr().out == committed == iam.policy_json(role)


def actions(document: dict) -> set[str]:
    return {a for s in document["Statement"] for a in s["Action"]}


def test_scanner_is_read_only_and_cleaner_adds_the_writes():
    scanner, cleaner = iam.policy_document("scanner"), iam.policy_document("cleaner")
    assert actions(scanner).isdisjoint(APPLY_WRITES)
    assert not any(
        a.split(":")[1].startswith(("Put", "Delete", "Set", "BatchDelete"))
        for a in actions(scanner)
    )
    assert actions(cleaner) - actions(scanner) >= APPLY_WRITES
    assert actions(scanner) <= actions(cleaner)
    assert {"sts:GetCallerIdentity", "ses:SendRawEmail", "ecr:DescribeImages"} <= actions(scanner)


def test_writes_can_be_limited_to_one_account_and_region(capsys):
    argv = ["iam", "policy", "--role", "cleaner", "--account", "851296927411"]
    assert run_cli(cli, [*argv, "--region", "us-east-1"]) == 0
    document = json.loads(capsys.readouterr().out)
    [clean] = [s for s in document["Statement"] if s["Sid"] == "CleanRegistry"]
    assert clean["Resource"] == "arn:aws:ecr:us-east-1:851296927411:repository/*"
    assert run_cli(cli, ["iam", "policy", "--role", "cleaner", "--account", "12"]) == 2


def test_declare_rejects_what_is_not_an_iam_action():
    with pytest.raises(ValueError, match="not an IAM action"):
        iam.declare("x", "DescribeImages")
    with pytest.raises(ValueError, match="not an IAM action"):
        iam.declare("x", "ecr:describeImages")


def call_as_demo_module(relative: str, source: str, namespace: dict) -> None:
    """The same, for a file of the hygiene_demo package (scaffolding)."""
    exec(compile(source, str(DEMO_DIR / relative), "exec"), namespace)


def test_recorder_sees_calls_from_hygiene_code_not_from_tests(ecr):
    client = ecr.client()
    with recording() as recorder:
        client.create_repository(repositoryName="ml/train")  # test seeding: not recorded
        call_as_hygiene_module(
            "apply/probe.py", "client.describe_repositories()", {"client": client}
        )
        call_as_demo_module(
            "seed.py",
            "client.list_images(repositoryName='ml/train')",
            {"client": client},
        )  # scaffolding: not recorded
        # hygiene code calling the seeder: the seeder is closer to the call, not recorded
        seeder: dict = {"client": client}
        call_as_demo_module(
            "seed.py",
            "def seed():\n    client.describe_images(repositoryName='ml/train')\n",
            seeder,
        )
        call_as_hygiene_module("cli/demo.py", "seed()", {"seed": seeder["seed"]})
        # the demo running a job: the job's hygiene module is closer, recorded
        job: dict = {"client": client}
        call_as_hygiene_module(
            "collect/probe.py",
            "def scan():\n    client.list_images(repositoryName='ml/train')\n",
            job,
        )
        call_as_demo_module("run.py", "scan()", {"scan": job["scan"]})
        call_as_hygiene_module(
            "apply/probe.py",
            "client.delete_repository(repositoryName='ml/train')",
            {"client": client},
        )
    assert recorder.calls == {
        "ecr:DescribeRepositories": {"apply.probe"},
        "ecr:ListImages": {"collect.probe"},
        "ecr:DeleteRepository": {"apply.probe"},
    }
    assert iam.undeclared(recorder.calls) == []
    assert iam.undeclared(["ecr:CreateRepository", "ecr:DescribeImages"]) == [
        "ecr:CreateRepository"
    ]


def test_recorder_sees_clients_of_any_session(ecr):
    import boto3

    client = boto3.Session(region_name="us-east-1").client("ecr", endpoint_url=ecr.endpoint_url)
    with recording() as recorder:
        call_as_hygiene_module(
            "collect/probe.py", "client.describe_repositories()", {"client": client}
        )
    assert recorder.calls == {"ecr:DescribeRepositories": {"collect.probe"}}


def test_an_undeclared_call_fails_the_session(tmp_path: Path, subprocess_env: dict[str, str]):
    """End to end, in a child pytest with an xdist worker (the call happens in the worker,
    the check in the controller): exit status 1 and the action named. The child loads only
    the recorder, which records a call before it is sent, so the call may go nowhere
    (nothing listens on port 9): no moto server, and little to import in two interpreters
    (this took about 10 s under xdist when the child loaded the suite's conftest)."""
    test = tmp_path / "test_undeclared.py"
    test.write_text(
        "import boto3, pytest\n"
        "from botocore.config import Config\n"
        "from botocore.exceptions import EndpointConnectionError\n"
        "from tests.iam_recorder import call_as_hygiene_module\n"
        "def test_call():\n"
        "    client = boto3.client('ecr', region_name='us-east-1', endpoint_url='http://127.0.0.1:9',\n"
        "        aws_access_key_id='x', aws_secret_access_key='x',\n"
        "        config=Config(retries={'total_max_attempts': 1}))\n"
        "    with pytest.raises(EndpointConnectionError):\n"
        "        call_as_hygiene_module('apply/probe.py',\n"
        "            \"client.create_repository(repositoryName='probe')\", {'client': client})\n"
    )
    (tmp_path / "conftest.py").write_text("pytest_plugins = ['tests.iam_recorder']\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "1",
            "-p",
            "no:cacheprovider",
            str(test),
            "--rootdir",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "ecr:CreateRepository (called from apply.probe) is not declared" in result.stdout


def test_read_records_merges_worker_files(tmp_path: Path):
    (tmp_path / "ops-1.txt").write_text("ecr:DescribeImages\tcollect.images\n")
    (tmp_path / "ops-2.txt").write_text(
        "ecr:DescribeImages\tapply.verify\necr:BatchDeleteImage\tapply.delete\n"
    )
    assert read_records(tmp_path) == {
        "ecr:DescribeImages": {"collect.images", "apply.verify"},
        "ecr:BatchDeleteImage": {"apply.delete"},
    }
