"""The admin commands end to end (proposals, approve, reject, apply, audit, runs), with
identities from the moto server's STS: an IAM Identity Center admin and a developer."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from hygiene.authz.identity import Identity, os_user, sts_client, sts_identity
from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.errors import CollectError
from hygiene.model import ProposalState
from hygiene.store import Store
from tests.apply.registry import Seeder
from tests.authz.world import (
    ADMIN_ROLE,
    DEVELOPER_ROLE,
    MOTO_ACCOUNT,
    OWNER_OF_ML,
    OWNER_OF_SUPORTE,
    signed_in,
    sts_as,
)

ALICE = f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/{ADMIN_ROLE}/alice@lsd.ufcg.edu.br"


def test_sts_identity_comes_from_get_caller_identity_and_fails_with_exit_6() -> None:
    sts = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x").client(
        "sts", region_name="us-east-1"
    )
    with Stubber(sts) as stub:
        stub.add_response(
            "get_caller_identity", {"Arn": ALICE, "Account": MOTO_ACCOUNT, "UserId": "AROA:a"}
        )
        assert sts_identity(sts) == Identity(ALICE, "sts")
        stub.add_client_error("get_caller_identity", "ExpiredToken", "expired")
        with pytest.raises(CollectError, match="GetCallerIdentity") as caught:
            sts_identity(sts)
    assert caught.value.exit_code == 6


def test_the_sts_client_ignores_endpoint_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A look-alike STS named by the environment would answer any ARN it likes."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x")
    assert sts_client(session, "us-east-1").meta.endpoint_url == (
        "https://sts.us-east-1.amazonaws.com"
    )
    assert sts_client(session, "cn-north-1").meta.endpoint_url.endswith(".amazonaws.com.cn")


def test_admin_lists_approves_applies_and_audits(
    seeded, seeder: Seeder, ecr, monkeypatch, capsys
) -> None:
    signed_in(monkeypatch, sts_as(ecr, ADMIN_ROLE, "alice@lsd.ufcg.edu.br"))
    common = seeded["common"]
    assert run_cli(cli, ["proposals", "--state", "proposed", "--format", "json", *common]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["id"] for p in listed] == [seeded["id"]]
    assert run_cli(cli, ["proposals", "--id", seeded["id"], "--format", "json", *common]) == 0
    (one,) = json.loads(capsys.readouterr().out)
    assert sorted(i["digest"] for i in one["evidence"]["images"]) == sorted(seeded["digests"])
    assert listed[0]["grace_until"] is not None

    args = ["proposals", "--namespace", "suporte", "--rule", "IM002", "--format", "csv"]
    assert run_cli(cli, [*args, *common]) == 0
    assert seeded["id"] in capsys.readouterr().out.splitlines()[1]

    assert run_cli(cli, ["approve", "--namespace", "suporte", "--rule", "IM002", *common]) == 0
    assert f"approved {seeded['id']}" in capsys.readouterr().out
    (decision,) = seeded["store"].approvals(seeded["id"])
    assert decision["approver"] == ALICE and decision["source"] == "sts"

    assert run_cli(cli, ["apply", "--dry-run", *common]) == 0
    assert "would delete 2 image(s)" in capsys.readouterr().out
    assert seeder.live_digests(seeded["repo"]) == {*seeded["digests"], seeded["kept"]}

    assert run_cli(cli, ["apply", *common]) == 0
    assert f"{seeded['id']}  suporte/api: applied" in capsys.readouterr().out
    assert seeder.live_digests(seeded["repo"]) == {seeded["kept"]}

    assert run_cli(cli, ["audit", "--since", "1d", "--format", "json", *common]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["outcome"] for r in rows].count("deleted") == 2
    assert {r["actor"] for r in rows if r["proposal_id"]} == {ALICE}

    assert run_cli(cli, ["runs", "--kind", "apply", "--format", "json", *common]) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert run["status"] == "ok" and run["counts"]["deleted"] == 2
    # apply counts its own AWS calls: the re-read, the manifests, the delete
    assert run["api_calls"]["BatchDeleteImage"] == 1
    assert run["api_calls"]["DescribeImages"] >= 1 and run["api_calls"]["BatchGetImage"] >= 1


def test_non_admin_approval_is_refused_and_changes_nothing(
    seeded, seeder: Seeder, ecr, monkeypatch, capsys
) -> None:
    bob = f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/{DEVELOPER_ROLE}/bob@lsd.ufcg.edu.br"
    signed_in(monkeypatch, sts_as(ecr, DEVELOPER_ROLE, "bob@lsd.ufcg.edu.br"))
    common = seeded["common"]
    assert run_cli(cli, ["approve", seeded["id"], *common]) == 4
    err = capsys.readouterr().err
    assert f"{bob} may not approve" in err and "nothing was changed" in err
    store: Store = seeded["store"]
    assert store.get(seeded["id"]).state == ProposalState.PROPOSED
    assert store.approvals(seeded["id"]) == []
    assert run_cli(cli, ["reject", seeded["id"], "--reason", "no", *common]) == 4
    assert run_cli(cli, ["apply", *common]) == 4
    assert seeder.live_digests(seeded["repo"]) == {*seeded["digests"], seeded["kept"]}
    assert run_cli(cli, ["apply", "--dry-run", *common]) == 0  # looking is allowed
    assert store.runs(kind="apply") == []


def test_cli_apply_while_locked_exits_5(seeded, ecr, monkeypatch, capsys) -> None:
    signed_in(monkeypatch, sts_as(ecr, ADMIN_ROLE, "alice@lsd.ufcg.edu.br"))
    other = Store(seeded["url"])
    with other.lock(holder="nightly@cron pid 7"):
        assert run_cli(cli, ["apply", *seeded["common"]]) == 5
    assert "nightly@cron pid 7" in capsys.readouterr().err


def test_cli_usage_errors(seeded, ecr, monkeypatch, capsys) -> None:
    signed_in(monkeypatch, sts_as(ecr, ADMIN_ROLE, "alice@lsd.ufcg.edu.br"))
    common = seeded["common"]
    assert run_cli(cli, ["reject", seeded["id"], *common]) == 2  # --reason is required
    assert run_cli(cli, ["approve", *common]) == 2
    assert "give proposal ids" in capsys.readouterr().err
    assert run_cli(cli, ["approve", "p-unknown", *common]) == 2
    assert "unknown proposal id" in capsys.readouterr().err
    assert run_cli(cli, ["audit", "--since", "yesterday", *common]) == 2


def test_owner_may_object_to_proposals_of_their_namespace_only(
    seeded, ecr, monkeypatch, capsys
) -> None:
    """The weekly report tells owners to object with `hygiene reject`; they are not
    admins: their IAM Identity Center user (their e-mail) must own the namespace."""
    common = seeded["common"]
    store: Store = seeded["store"]
    signed_in(monkeypatch, sts_as(ecr, DEVELOPER_ROLE, OWNER_OF_ML))  # owns ml, not suporte
    assert run_cli(cli, ["reject", seeded["id"], "--reason", "mine", *common]) == 4
    assert "an owner or member of suporte" in capsys.readouterr().err
    assert store.get(seeded["id"]).state == ProposalState.PROPOSED

    signed_in(monkeypatch, sts_as(ecr, DEVELOPER_ROLE, OWNER_OF_SUPORTE))
    assert run_cli(cli, ["approve", seeded["id"], *common]) == 4  # approving stays admin-only
    code = run_cli(cli, ["reject", seeded["id"], "--reason", "still used by CI", *common])
    assert code == 0, capsys.readouterr().err
    assert store.get(seeded["id"]).state == ProposalState.REJECTED
    (decision,) = store.approvals(seeded["id"])
    assert decision["approver"].endswith(f"/{OWNER_OF_SUPORTE}")
    assert os_user() not in decision["approver"]


def test_reasons_reach_the_terminal_as_text(seeded, ecr, monkeypatch, capsys) -> None:
    """An owner's reject reason is shown by `hygiene audit` and `hygiene proposals`:
    rich markup in it (`[/oops]` was a MarkupError) is printed as written, and a control
    character is refused at the command line."""
    common = seeded["common"]
    signed_in(monkeypatch, sts_as(ecr, DEVELOPER_ROLE, OWNER_OF_SUPORTE))
    code = run_cli(cli, ["reject", seeded["id"], "--reason", "ok\x1b[2J", *common])
    assert code == 2
    err = capsys.readouterr().err
    assert "--reason" in err and "U+001B" in err and "\x1b" not in err
    assert seeded["store"].get(seeded["id"]).state == ProposalState.PROPOSED

    reason = "[/oops] [bold]still[/] used"
    code = run_cli(cli, ["reject", seeded["id"], "--reason", reason, *common])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    monkeypatch.setenv("COLUMNS", "200")  # room for the detail column on one line
    assert run_cli(cli, ["audit", *common]) == 0
    assert reason in capsys.readouterr().out
    assert run_cli(cli, ["proposals", "--state", "rejected", *common]) == 0
    assert seeded["id"] in capsys.readouterr().out
