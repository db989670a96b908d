"""Approver identity and the admin commands (proposals, approve, reject, apply, audit)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.errors import CollectError, NotAuthorisedError
from hygiene.identity import (
    caller_identity,
    is_admin,
    os_identity,
    require_admin,
    sso_permission_set,
)
from hygiene.model import ProposalState
from hygiene.store import Store
from tests import builders
from tests.apply.registry import Seeder

SSO_ARN = (
    "arn:aws:sts::851296927411:assumed-role/"
    "AWSReservedSSO_AdministratorAccess_0123456789abcdef/alice@lsd.ufcg.edu.br"
)
DEV_ARN = "arn:aws:sts::851296927411:assumed-role/AWSReservedSSO_Developer_fedcba9876543210/bob"


def test_sso_permission_set_and_admin_matching() -> None:
    assert sso_permission_set(SSO_ARN) == "AdministratorAccess"
    assert sso_permission_set("arn:aws:iam::851296927411:user/alice") is None
    assert is_admin(SSO_ARN, ["AdministratorAccess"])
    assert not is_admin(DEV_ARN, ["AdministratorAccess"])
    assert is_admin(DEV_ARN, ["arn:aws:sts::851296927411:assumed-role/AWSReservedSSO_Dev*/*"])
    assert not is_admin(DEV_ARN, ["arn:aws:sts::111111111111:assumed-role/*/*"])
    assert is_admin("os:root", ["os:root"]) and not is_admin("os:eve", ["os:root"])
    assert not is_admin("os:root", [])


def test_require_admin_refuses_with_exit_code_4(config) -> None:
    with pytest.raises(NotAuthorisedError) as caught:
        require_admin(DEV_ARN, config)
    assert caught.value.exit_code == 4
    assert DEV_ARN in caught.value.message and "nothing was changed" in caught.value.message
    assert require_admin(SSO_ARN, config) == SSO_ARN


def test_caller_identity_from_sts_or_os() -> None:
    sts = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x").client(
        "sts", region_name="us-east-1"
    )
    with Stubber(sts) as stub:
        stub.add_response(
            "get_caller_identity",
            {"Arn": SSO_ARN, "Account": "851296927411", "UserId": "AROA:alice"},
        )
        assert caller_identity(sts) == SSO_ARN
        stub.add_client_error("get_caller_identity", "ExpiredToken", "expired")
        with pytest.raises(CollectError, match="GetCallerIdentity"):
            caller_identity(sts)
    assert caller_identity(endpoint_url="http://127.0.0.1:5000") == os_identity()


def rules_dir(tmp_path: Path, admins: list[str], **apply: Any) -> Path:
    policy = builders.shipped_policy()
    policy["admins"] = admins
    policy["registry"].pop("account", None)
    policy["apply"].update(apply)
    return builders.write_rules(tmp_path / "rules", policy)


@pytest.fixture
def seeded(tmp_path: Path, seeder: Seeder, config, now, monkeypatch, ecr) -> dict[str, Any]:
    from hygiene.plan import plan

    monkeypatch.setenv("AWS_ENDPOINT_URL", ecr.endpoint_url)  # the embedded registry: os:<user>
    repo = seeder.repo("suporte/api")
    digests = [seeder.image(repo) for _ in range(2)]
    kept = seeder.image(repo, tag="latest")
    proposals = plan(
        builders.evaluation([seeder.finding("IM002", repo, d) for d in digests]),
        seeder.inventory(),
        config,
        now,
    )
    url = f"sqlite:///{tmp_path / 'hygiene.db'}"
    store = Store(url)
    store.upsert_proposals(proposals, now - timedelta(days=10))
    store.mark_notified(now - timedelta(days=9), namespace="suporte")
    return {
        "url": url,
        "store": store,
        "id": proposals[0].id,
        "repo": repo,
        "digests": digests,
        "kept": kept,
    }


def test_non_admin_approval_is_refused_and_changes_nothing(
    tmp_path, seeded, seeder: Seeder, capsys
) -> None:
    directory = rules_dir(tmp_path, ["os:someone-else", "AdministratorAccess"])
    code = run_cli(
        cli, ["approve", seeded["id"], "--rules-dir", str(directory), "--store", seeded["url"]]
    )
    assert code == 4
    err = capsys.readouterr().err
    assert f"{os_identity()} may not approve" in err and "nothing was changed" in err
    store: Store = seeded["store"]
    assert store.get(seeded["id"]).state == ProposalState.PROPOSED
    assert store.approvals(seeded["id"]) == []
    code = run_cli(
        cli,
        [
            "reject",
            seeded["id"],
            "--reason",
            "no",
            "--rules-dir",
            str(directory),
            "--store",
            seeded["url"],
        ],
    )
    assert code == 4
    store.mark_notified(datetime.now(UTC) - timedelta(days=30), ids=[seeded["id"]])
    store.approve([seeded["id"]], "os:an-admin")
    common = ["--rules-dir", str(directory), "--store", seeded["url"]]
    assert run_cli(cli, ["apply", *common]) == 4
    assert seeder.live_digests(seeded["repo"]) == {*seeded["digests"], seeded["kept"]}
    assert run_cli(cli, ["apply", "--dry-run", *common]) == 0  # looking is allowed


def test_admin_lists_approves_applies_and_audits(tmp_path, seeded, seeder: Seeder, capsys) -> None:
    directory = rules_dir(tmp_path, [os_identity()])
    common = ["--rules-dir", str(directory), "--store", seeded["url"]]
    assert run_cli(cli, ["proposals", "--state", "proposed", "--format", "json", *common]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["id"] for p in listed] == [seeded["id"]]
    assert run_cli(cli, ["proposals", "--id", seeded["id"], "--format", "json", *common]) == 0
    (one,) = json.loads(capsys.readouterr().out)
    assert sorted(i["digest"] for i in one["evidence"]["images"]) == sorted(seeded["digests"])
    assert listed[0]["grace_until"] is not None

    assert (
        run_cli(
            cli,
            ["proposals", "--namespace", "suporte", "--rule", "IM002", "--format", "csv", *common],
        )
        == 0
    )
    assert seeded["id"] in capsys.readouterr().out.splitlines()[1]

    assert run_cli(cli, ["approve", "--namespace", "suporte", "--rule", "IM002", *common]) == 0
    assert f"approved {seeded['id']}" in capsys.readouterr().out

    assert run_cli(cli, ["apply", "--dry-run", *common]) == 0
    assert "[dry run]" in capsys.readouterr().out
    assert seeder.live_digests(seeded["repo"]) == {*seeded["digests"], seeded["kept"]}

    assert run_cli(cli, ["apply", *common]) == 0
    assert f"{seeded['id']}: applied" in capsys.readouterr().out
    assert seeder.live_digests(seeded["repo"]) == {seeded["kept"]}

    assert run_cli(cli, ["audit", "--since", "1d", "--format", "json", *common]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["outcome"] for r in rows].count("deleted") == 2
    assert {r["actor"] for r in rows} == {os_identity()}

    assert run_cli(cli, ["runs", "--kind", "apply", "--format", "json", *common]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert run["status"] == "ok" and run["counts"]["deleted"] == 2


def test_cli_apply_while_locked_exits_5(tmp_path, seeded, capsys) -> None:
    directory = rules_dir(tmp_path, [os_identity()])
    other = Store(seeded["url"])
    with other.lock("apply", holder="nightly@cron pid 7"):
        code = run_cli(cli, ["apply", "--rules-dir", str(directory), "--store", seeded["url"]])
    assert code == 5
    assert "nightly@cron pid 7" in capsys.readouterr().err


def test_cli_usage_errors(tmp_path, seeded, capsys) -> None:
    directory = rules_dir(tmp_path, [os_identity()])
    common = ["--rules-dir", str(directory), "--store", seeded["url"]]
    assert run_cli(cli, ["reject", seeded["id"], *common]) == 2  # --reason is required
    assert run_cli(cli, ["approve", *common]) == 2
    assert "give proposal ids" in capsys.readouterr().err
    assert run_cli(cli, ["approve", "p-unknown", *common]) == 2
    assert "unknown proposal id" in capsys.readouterr().err
    assert run_cli(cli, ["audit", "--since", "yesterday", *common]) == 2


def test_owner_may_object_to_proposals_of_their_namespace_only(tmp_path, seeded, capsys) -> None:
    """The weekly report tells owners to object with `hygiene reject`; they are not
    admins, so their SSO session name (their email) must be an owner of the namespace."""
    from hygiene.cli import proposals as proposals_cli

    directory = rules_dir(tmp_path, ["AdministratorAccess"])
    common = ["--rules-dir", str(directory), "--store", seeded["url"]]
    role = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Developer_abc"
    owner = f"{role}/joao.silva@lsd.ufcg.edu.br"
    stranger = f"{role}/ana.costa@lsd.ufcg.edu.br"
    store: Store = seeded["store"]
    original = proposals_cli.IDENTITY
    try:
        proposals_cli.IDENTITY = lambda config: stranger  # owner of ml, not of suporte
        assert run_cli(cli, ["reject", seeded["id"], "--reason", "mine", *common]) == 4
        assert "nor an owner or member of suporte" in capsys.readouterr().err
        assert store.get(seeded["id"]).state == ProposalState.PROPOSED
        assert run_cli(cli, ["approve", seeded["id"], *common]) == 4  # approving stays admin-only

        proposals_cli.IDENTITY = lambda config: owner  # joao owns suporte
        code = run_cli(cli, ["reject", seeded["id"], "--reason", "still used by CI", *common])
        assert code == 0, capsys.readouterr().err
    finally:
        proposals_cli.IDENTITY = original
    assert store.get(seeded["id"]).state == ProposalState.REJECTED
    assert store.approvals(seeded["id"])[-1]["approver"] == owner
