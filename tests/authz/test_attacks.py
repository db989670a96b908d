"""Who may approve, tried as an attacker would (issue: "approvals nobody can forge").

Each test is one way in: a forged login name, an endpoint that looks local, admins from
the caller's own rules, another account's role, a session name the caller picked, rows
written straight into the store. The registry is the embedded one (moto over HTTP); the
identities come from its STS, from the demo challenge, or (another account, which moto
cannot be) from a stubbed STS answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from sqlalchemy import text

from hygiene.apply import apply
from hygiene.authz.identity import DEMO_TOKEN_ENV, Identity, os_user
from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.config import load_config
from hygiene.errors import NotAuthorisedError
from hygiene.model import ProposalState
from hygiene.store import Store
from tests.apply.registry import Seeder
from tests.authz.world import (
    ADMIN_ROLE,
    DEVELOPER_ROLE,
    MOTO_ACCOUNT,
    OWNER_OF_SUPORTE,
    deployed_store,
    proposal_in_grace,
    rules,
    signed_in,
    sts_as,
)

ME = f"os:{os_user()}"


@pytest.fixture
def world(tmp_path: Path, seeder: Seeder, config, now, monkeypatch, ecr) -> dict[str, Any]:
    """The deployed rules (admins: the AdministratorAccess permission set and os:root, as
    shipped), a store the scheduled job pinned them in, one proposal past its grace."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", ecr.endpoint_url)
    monkeypatch.delenv(DEMO_TOKEN_ENV, raising=False)
    deployed = rules(tmp_path / "deployed", ["AdministratorAccess", "os:root"])
    url = f"sqlite:///{tmp_path / 'hygiene.db'}"
    store = deployed_store(url, deployed)
    return {
        **proposal_in_grace(store, seeder, config, now),
        "url": url,
        "store": store,
        "deployed": deployed,
        "config": load_config(deployed),
        "common": ["--rules-dir", str(deployed), "--store", url],
    }


def untouched(world: dict[str, Any], seeder: Seeder) -> bool:
    store: Store = world["store"]
    return (
        store.get(world["id"]).state == ProposalState.PROPOSED
        and store.approvals(world["id"]) == []
        and seeder.live_digests(world["repo"]) == {*world["digests"], world["kept"]}
    )


# --------------------------------------------------------------------------- the OS login


def test_a_forged_logname_and_a_local_endpoint_earn_no_identity(
    world, seeder: Seeder, ecr, subprocess_env
) -> None:
    """`AWS_ENDPOINT_URL=http://localhost:… LOGNAME=root hygiene approve ID` with no AWS
    credentials approved as os:root. Now the identity comes from STS (none: exit 6)."""
    env = {
        k: v for k, v in subprocess_env.items() if not k.startswith("AWS_") and k != DEMO_TOKEN_ENV
    }
    env.update(
        LOGNAME="root",
        USER="root",
        AWS_ENDPOINT_URL=ecr.endpoint_url,  # the embedded registry: local, and real
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
    )
    done = subprocess.run(
        [sys.executable, "-m", "hygiene", "approve", world["id"], *world["common"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 6, done.stderr
    assert "GetCallerIdentity" in done.stderr and "os:root" not in done.stderr + done.stdout
    assert untouched(world, seeder)


def test_a_forged_logname_inside_the_demo_is_still_the_real_user(
    world, seeder: Seeder, ecr, monkeypatch, capsys
) -> None:
    """Even with the demo's secret, the OS identity is the uid's user, never $LOGNAME."""
    policy_dir = rules(Path(world["deployed"]).parent / "mallory", ["os:mallory"])
    store = deployed_store(world["url"], policy_dir)
    monkeypatch.setenv(DEMO_TOKEN_ENV, ecr.demo_token)
    monkeypatch.setenv("LOGNAME", "mallory")
    monkeypatch.setenv("USER", "mallory")
    common = ["--rules-dir", str(policy_dir), "--store", world["url"]]
    assert run_cli(cli, ["approve", world["id"], *common]) == 4
    assert f"{ME} may not approve" in capsys.readouterr().err
    assert store.approvals(world["id"]) == []


def test_a_demo_secret_that_the_endpoint_does_not_know_is_refused(
    world, seeder: Seeder, monkeypatch, capsys
) -> None:
    monkeypatch.setenv(DEMO_TOKEN_ENV, "a-guess")
    assert run_cli(cli, ["approve", world["id"], *world["common"]]) == 4
    assert "does not know this token" in capsys.readouterr().err
    assert untouched(world, seeder)


def test_the_demo_secret_counts_only_on_a_loopback_endpoint(world, ecr, monkeypatch) -> None:
    from hygiene.authz.identity import prove_demo

    with pytest.raises(NotAuthorisedError, match="not the embedded registry"):
        prove_demo("https://api.ecr.us-east-1.amazonaws.com", ecr.demo_token)
    assert prove_demo(ecr.endpoint_url, ecr.demo_token) == ecr.demo_id


def test_os_approvals_never_count_outside_the_demo_that_issued_them(
    world, seeder: Seeder, ecr, clients, now
) -> None:
    """An os: approval made in the demo is in the store; an apply that is not running
    against that demo (no proven secret) skips it, with an audit row, and deletes
    nothing, although os:root is in the deployed admins and the endpoint is local."""
    store: Store = world["store"]
    store.approve([world["id"]], Identity("os:root", f"demo:{ecr.demo_id}"), now=now)
    assert store.get(world["id"]).state == ProposalState.APPROVED

    result = apply(store, clients, world["config"], now, actor="cron")
    assert "only inside the demo" in result.not_eligible[world["id"]]
    (row,) = store.audit_log(outcome="unverified")
    assert row.proposal_id == world["id"] and "os:root" in row.detail
    assert seeder.live_digests(world["repo"]) == {*world["digests"], world["kept"]}

    other_demo = apply(store, clients, world["config"], now, actor="demo", demo_id="another")
    assert "not in this demo" in other_demo.not_eligible[world["id"]]

    same_demo = apply(store, clients, world["config"], now, actor="demo", demo_id=ecr.demo_id)
    assert same_demo.states[world["id"]][0] == "applied"
    assert seeder.live_digests(world["repo"]) == {world["kept"]}


# --------------------------------------------------------------------------- whose admins


def test_admins_from_the_callers_rules_do_not_count(
    world, seeder: Seeder, ecr, clients, monkeypatch, capsys, tmp_path
) -> None:
    """A copy of the rules listing the caller lets nobody approve: the deployed admins
    (pinned by the scheduled job) decide, and apply refuses rules that are not them."""
    deployed = rules(tmp_path / "deployed-sso", ["AdministratorAccess"])  # no os: admin
    deployed_store(world["url"], deployed)
    monkeypatch.setenv(DEMO_TOKEN_ENV, ecr.demo_token)  # a verified os:<me>, not an admin
    wildcard = rules(tmp_path / "wild", ["os:*"])
    assert run_cli(cli, ["approve", world["id"], "--rules-dir", str(wildcard)]) == 2
    assert "admins[0]" in capsys.readouterr().err

    mine = rules(tmp_path / "mine", [ME])
    common = ["--rules-dir", str(mine), "--store", world["url"]]
    assert run_cli(cli, ["approve", world["id"], *common]) == 4
    err = capsys.readouterr().err
    assert f"{ME} may not approve: not in the deployed `admins`" in err
    assert "(AdministratorAccess;" in err
    assert untouched(world, seeder)

    # the approval written straight into the store: the CLI's apply refuses the caller,
    # and apply itself refuses rules that are not the deployed ones, demo or not
    world["store"].approve([world["id"]], Identity(ME, f"demo:{ecr.demo_id}"))
    assert run_cli(cli, ["apply", *common]) == 4
    assert f"{ME} may not apply" in capsys.readouterr().err
    with pytest.raises(NotAuthorisedError, match="is not the deployed one"):
        apply(world["store"], clients, load_config(mine), actor=ME, demo_id=ecr.demo_id)
    assert seeder.live_digests(world["repo"]) == {*world["digests"], world["kept"]}
    assert world["store"].runs(kind="apply") == []


def test_no_pin_no_approval(tmp_path, world, ecr, monkeypatch, capsys, now) -> None:
    """A store the scheduled job never ran on has no deployed admins: nobody approves."""
    signed_in(monkeypatch, sts_as(ecr, ADMIN_ROLE, "alice@lsd.ufcg.edu.br"))
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    Store(empty).upsert_proposals([world["store"].get(world["id"]).proposal], now)
    common = ["--rules-dir", str(world["deployed"]), "--store", empty]
    assert run_cli(cli, ["approve", world["id"], *common]) == 4
    assert "no deployed configuration is pinned" in capsys.readouterr().err
    assert Store(empty).approvals(world["id"]) == []


# --------------------------------------------------------------------------- which accounts


def test_another_accounts_admin_role_is_not_an_admin(world, seeder: Seeder, monkeypatch, capsys):
    """The same permission set in an account that is not the registry's (moto has one
    account per server, so STS's answer is stubbed here)."""
    mallory = f"arn:aws:sts::999999999999:assumed-role/{ADMIN_ROLE}/mallory"
    sts = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x").client(
        "sts", region_name="us-east-1"
    )
    stub = Stubber(sts)
    stub.add_response(
        "get_caller_identity", {"Arn": mallory, "Account": "999999999999", "UserId": "AROA:m"}
    )
    signed_in(monkeypatch, sts)
    with stub:
        assert run_cli(cli, ["approve", world["id"], *world["common"]]) == 4
    assert f"{mallory} may not approve" in capsys.readouterr().err
    assert untouched(world, seeder)
    # and apply never counts such an approval, even written into the store
    world["store"].approve([world["id"]], Identity(mallory, "sts"))
    result = apply(world["store"], lambda a, r: None, world["config"], actor="cron")
    assert "not an admin" in result.not_eligible[world["id"]]


def test_an_arn_pattern_for_any_account_is_a_config_error(tmp_path, capsys) -> None:
    directory = rules(tmp_path / "r", ["arn:aws:sts::*:assumed-role/AdministratorAccess/*"])
    assert run_cli(cli, ["config", "check", "--rules-dir", str(directory)]) == 2
    assert "12 literal digits" in capsys.readouterr().err
    other = rules(tmp_path / "o", [f"arn:aws:sts::999999999999:assumed-role/{ADMIN_ROLE}/*"])
    assert run_cli(cli, ["config", "check", "--rules-dir", str(other)]) == 2
    assert "not a configured registry account" in capsys.readouterr().err


# --------------------------------------------------------------------------- which owners


def test_a_session_name_the_caller_picked_is_not_an_owner(
    world, seeder: Seeder, ecr, monkeypatch, capsys
) -> None:
    """sts:AssumeRole --role-session-name joao.silva@… on any role is not joao."""
    signed_in(monkeypatch, sts_as(ecr, "CIDeployer", OWNER_OF_SUPORTE))
    assert run_cli(cli, ["reject", world["id"], "--reason", "x", *world["common"]]) == 4
    assert "signed in through IAM Identity Center" in capsys.readouterr().err
    assert untouched(world, seeder)
    signed_in(monkeypatch, sts_as(ecr, DEVELOPER_ROLE, OWNER_OF_SUPORTE))
    assert run_cli(cli, ["reject", world["id"], "--reason", "x", *world["common"]]) == 0


# --------------------------------------------------------------------------- forged rows


def test_an_approval_by_someone_who_is_not_an_admin_is_skipped_and_audited(
    world, seeder: Seeder, clients, now
) -> None:
    store: Store = world["store"]
    bob = f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/{DEVELOPER_ROLE}/bob"
    store.approve([world["id"]], Identity(bob, "sts"), now=now)
    result = apply(store, clients, world["config"], now, actor="cron")
    assert "not an admin of the deployed configuration" in result.not_eligible[world["id"]]
    assert [e.outcome for e in store.audit_log(proposal_id=world["id"])] == [
        "grace-started",  # the owners' notice (world: proposal_in_grace)
        "approved",
        "unverified",
    ]
    assert store.get(world["id"]).state == ProposalState.APPROVED  # left for a real admin
    assert seeder.live_digests(world["repo"]) == {*world["digests"], world["kept"]}


def test_an_approval_does_not_follow_a_proposal_whose_target_was_changed(
    world, seeder: Seeder, clients, now
) -> None:
    """Approve what was shown, then point the proposal at the kept image in the store."""
    store: Store = world["store"]
    alice = Identity(f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/{ADMIN_ROLE}/alice", "sts")
    store.approve([world["id"]], alice, now=now)
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE proposals SET target = :t WHERE id = :i"),
            {"t": json.dumps({"digests": [world["kept"]]}), "i": world["id"]},
        )
    result = apply(store, clients, world["config"], now, actor="cron")
    assert "no approval on record matches" in result.not_eligible[world["id"]]
    assert world["kept"] in seeder.live_digests(world["repo"])


def test_a_state_set_to_approved_without_a_decision_is_not_an_approval(
    world, seeder: Seeder, clients, now
) -> None:
    store: Store = world["store"]
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE proposals SET state = 'approved', decided_by = :a WHERE id = :i"),
            {"a": "arn:aws:sts::123456789012:assumed-role/x/y", "i": world["id"]},
        )
    result = apply(store, clients, world["config"], now, actor="cron")
    assert "no approval on record" in result.not_eligible[world["id"]]
    assert seeder.live_digests(world["repo"]) == {*world["digests"], world["kept"]}
