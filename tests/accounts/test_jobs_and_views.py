"""Several accounts in the jobs, the store's views, the CLI and the reports."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import boto3
from botocore.stub import Stubber
from click.testing import CliRunner

from hygiene.cli import cli
from hygiene.config import ApplySettings, Config, load_config
from hygiene.inventory import Inventory, RunInfo, ScanError
from hygiene.jobs import run_nightly
from hygiene.model import Action, ProposalState
from hygiene.report.data import build_report_data
from hygiene.report.views import compliance_scores, reclaimable_bytes
from hygiene.store import Store
from tests import builders
from tests.jobs.fakes import World, new_world

A, B = "111111111111", "222222222222"
REGION = builders.REGION


def two_accounts(world: World, *, b_readable: bool) -> None:
    """The registry spans accounts A and B; B's role cannot be assumed when not readable."""
    collect = getattr(world.registry, "original_collect", world.registry.collect)
    world.registry.original_collect = collect  # type: ignore[attr-defined]

    def collect_both(config: Config, stop: threading.Event) -> Inventory:
        inventory = collect(config, stop)
        images = [
            {**row, "account": A}
            for row in inventory.images.to_dict("records")
        ]  # fmt: skip
        if b_readable:
            images += [
                builders.image_row("sha256:" + "e" * 64, "ml/train", account=B, tags=[]),
            ]
        run = RunInfo(id="scan", started_at=inventory.run.started_at, source="fake")
        run.scopes = [(A, REGION), (B, REGION)] if b_readable else [(A, REGION)]
        if not b_readable:
            run.errors.append(
                ScanError(REGION, None, "AssumeRole", "AccessDenied: not authorised", B)
            )
        run.finished_at = inventory.run.finished_at
        return builders.inventory(images, run=run)

    world.registry.collect = collect_both  # type: ignore[method-assign]


def with_apply(config: Config, **settings: bool) -> Config:
    policy = config.policy.model_copy(update={"apply": ApplySettings(**settings)})
    return config.model_copy(update={"policy": policy})


def test_an_unreadable_account_keeps_only_its_own_proposals_back(
    config: Config, now: datetime
) -> None:
    world = new_world()
    two_accounts(world, b_readable=True)
    deps = world.deps()
    run_nightly(deps, with_apply(config), now, threading.Event())  # proposes in A and B
    accounts = {p.account for p in world.store.proposals.values()}
    assert accounts == {A, B}
    for proposal in list(world.store.proposals.values()):
        world.store.proposals[proposal.id] = replace(
            proposal, state=ProposalState.APPROVED, grace_until=now - timedelta(hours=1)
        )

    two_accounts(world, b_readable=False)  # tonight B's role cannot be assumed
    deps = world.deps()
    result = run_nightly(deps, with_apply(config, apply_approved=True), now, threading.Event())

    [applied] = world.applied_calls
    assert {world.store.proposals[i].account for i in applied} == {A}
    assert all(p.state is ProposalState.APPROVED for p in world.store.proposals.values()
               if p.account == B)  # fmt: skip
    assert result.status.value == "incomplete" and result.exit_code == 3
    assert any(B in e and "AssumeRole" in e for e in result.errors)
    assert any(e.startswith("apply: skipped for the accounts") and B in e for e in result.errors)
    [alert] = world.alerts
    assert B in alert.summary


def test_a_run_incomplete_as_a_whole_applies_nothing(config: Config, now: datetime) -> None:
    world = new_world()
    two_accounts(world, b_readable=True)
    collect = world.registry.collect

    def missing_part(config: Config, stop: threading.Event) -> Inventory:
        inventory = collect(config, stop)
        inventory.run.errors.append(ScanError("", None, "merge", "part 1/3 did not arrive"))
        return inventory

    world.registry.collect = missing_part  # type: ignore[method-assign]
    result = run_nightly(world.deps(), with_apply(config, auto_safe=True), now, threading.Event())
    assert world.applied_calls == []
    assert "apply: skipped because the scan is incomplete" in result.errors


def stored_in_two_accounts(tmp_path: Path, now: datetime) -> tuple[Store, str]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    proposals = [
        builders.proposal(
            Action.DELETE_IMAGES, "ml/train", digests=[f"sha256:{n * 64}"], account=account
        )
        for account, n in ((A, "1"), (B, "2"))
    ]
    store.upsert_proposals(proposals, now)
    return store, url


def test_proposals_of_a_namespace_span_accounts_and_account_narrows_them(
    tmp_path: Path, now: datetime
) -> None:
    store, url = stored_in_two_accounts(tmp_path, now)
    assert {s.proposal.account for s in store.proposals(namespace="ml")} == {A, B}
    assert [s.proposal.account for s in store.proposals(namespace="ml", account=B)] == [B]
    runner = CliRunner()
    result = runner.invoke(cli, ["proposals", "--store", url, "--format", "csv"])
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()  # the CSV; logs go to stderr
    assert "account,region" in header and len(rows) == 2
    result = runner.invoke(cli, ["proposals", "--store", url, "--account", A, "--format", "csv"])
    assert len(result.stdout.splitlines()) == 2 and A in result.stdout.splitlines()[1]
    table = runner.invoke(cli, ["proposals", "--store", url], env={"COLUMNS": "250"})
    assert "account/region" in table.output and f"{B}/{REGION}" in table.output


def test_approve_a_namespace_in_one_account(tmp_path: Path, now: datetime, monkeypatch) -> None:
    import hygiene.cli.proposals as commands

    store, url = stored_in_two_accounts(tmp_path, now)
    policy = {"registry": {"account": A}, "admins": ["AdministratorAccess"]}
    rules = builders.write_rules(tmp_path / "rules", policy)
    builders.deployed(store, load_config(rules))  # the scheduled job pinned these admins
    admin = f"arn:aws:sts::{A}:assumed-role/{builders.SSO_ADMIN_ROLE}/alice"
    sts = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x").client(
        "sts", region_name="us-east-1"
    )
    stub = Stubber(sts)
    for _ in range(2):  # one answer per command
        stub.add_response("get_caller_identity", {"Arn": admin, "Account": A, "UserId": "AROA:a"})
    stub.activate()
    monkeypatch.setattr(commands, "STS", lambda config: sts)
    monkeypatch.delenv("HYGIENE_DEMO_TOKEN", raising=False)
    argv = ["approve", "--rules-dir", str(rules), "--store", url, "--namespace", "ml"]
    result = CliRunner().invoke(cli, [*argv, "--account", B])
    assert result.exit_code == 0, result.output
    states = {s.proposal.account: s.state for s in store.proposals(namespace="ml")}
    assert states == {A: ProposalState.PROPOSED, B: ProposalState.APPROVED}
    result = CliRunner().invoke(cli, ["approve", "--rules-dir", str(rules), "--store", url,
                                      "--account", B])  # fmt: skip
    assert result.exit_code != 0 and "--account needs --namespace" in str(result.exception)


def test_reports_keep_one_repository_name_in_two_accounts_apart(now: datetime) -> None:
    digest = "sha256:" + "f" * 64
    images = [builders.image_row(digest, "ml/api", account=account, tags=[]) for account in (A, B)]
    inventory = builders.inventory(images)
    finding = builders.finding("IM001", "ml/api", digest=digest, account=A, bytes=1000)
    same_in_b = builders.finding("IM001", "ml/api", digest=digest, account=B, bytes=1000)
    scan = {
        "run": inventory.run.to_json(),
        "inventory": inventory.summary(),
        "findings": [finding.to_json()],
        "proposals": [],
    }
    data = build_report_data(scan, inventory=inventory, now=now)
    scores = {(r["account"], r["repository"]): r["score"] for r in compliance_scores(data)}
    assert scores[(B, "ml/api")] == 100 and scores[(A, "ml/api")] < 100
    # the same digest in two accounts is two images, each reclaimable
    assert reclaimable_bytes([finding.to_json(), same_in_b.to_json()]) == 2000


def test_lifecycle_proposals_only_where_rp002_flagged_that_account(
    config: Config, now: datetime
) -> None:
    from hygiene.scan import evaluate_rules, plan_all

    policy = '{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}, "action": {"type": "expire"}}]}'  # noqa: E501
    images = [builders.image_row(f"sha256:{a[0] * 64}", "ml/api", account=a) for a in (A, B)]
    repositories = [
        builders.repository_row("ml/api", account=A, lifecycle_policy=None),
        builders.repository_row("ml/api", account=B, lifecycle_policy=policy),
    ]
    inventory = builders.inventory(images, repositories)
    # replacing existing policies is on: B's own policy would be replaced if B were planned
    lifecycle_settings = config.policy.lifecycle.model_copy(update={"replace_existing": True})
    config = config.model_copy(
        update={"policy": config.policy.model_copy(update={"lifecycle": lifecycle_settings})}
    )
    evaluation = evaluate_rules(inventory, config, now)
    assert {(f.account, f.repository) for f in evaluation.findings if f.code == "RP002"} == {
        (A, "ml/api")
    }
    lifecycle = [
        p for p in plan_all(evaluation, inventory, config, now)
        if p.action is Action.PUT_LIFECYCLE_POLICY
    ]  # fmt: skip
    assert [(p.account, p.repository) for p in lifecycle] == [(A, "ml/api")]
