"""A proposal apply keeps for a ``retry`` does not wait in silence.

* A read refused by IAM (AccessDenied: the cleaner role lacks a permission the re-check
  needs) will not mend itself: the apply run is ``failed`` and names the proposal and the
  refused operation; a hand-run ``hygiene apply`` alerts the admins and exits 7.
* Any other retry (a repository that cannot be read again, an in-use source that cannot
  be read, ECR throttling) may pass: the proposal is reported once, by the apply that
  keeps it for the :data:`~hygiene.apply.KEPT_ALERT_AFTER`-th time in a row, not by every
  later one.

The embedded registry (moto server) behind a fault proxy that refuses or fails the
re-check's reads; a real SQLite store; a real SMTP server for the alerts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hygiene.apply import KEPT_ALERT_AFTER, apply
from hygiene.apply.retries import kept_in_a_row
from hygiene.authz.identity import DEMO_TOKEN_ENV, Identity
from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.config import Config
from hygiene.errors import ExitCode
from hygiene.model import ProposalState
from hygiene.store import Store
from tests import builders
from tests.apply.registry import Seeder
from tests.apply.test_apply_deletion_safety import newest
from tests.apply.test_apply_moto import ADMIN, approve_past_grace, propose
from tests.authz.world import (
    ADMIN_ROLE,
    MOTO_ACCOUNT,
    deployed_store,
    proposal_in_grace,
    signed_in,
    sts_as,
)
from tests.authz.world import rules as trust_rules
from tests.faults import FaultProxy

ADMINS = ["registry-admins@lsd.ufcg.edu.br"]


@pytest.fixture
def store(either_store: Store) -> Store:
    """The store, SQLite and the embedded PostgreSQL: the retry rows, the audit log the
    kept-again count reads, the failed run, on both."""
    return either_store


def stale_proposal(store: Store, seeder: Seeder, config: Config, now: datetime) -> tuple[str, str]:
    """An approved deletion past its grace period: (repository, digest)."""
    repo = seeder.repo("suporte/api")
    newest(seeder, repo)
    stale = seeder.image(repo, tag="v0")
    (proposal,) = propose(store, seeder, config, now, [seeder.finding("IM002", repo, stale)])
    approve_past_grace(store, [proposal], now)
    return repo, proposal.id


def test_a_read_refused_to_the_cleaner_fails_the_run_and_keeps_the_proposal(
    store: Store, seeder: Seeder, proxy: FaultProxy, config: Config, now: datetime
) -> None:
    repo, proposal_id = stale_proposal(store, seeder, config, now)
    before = seeder.live_digests(repo)
    client = proxy.client()
    proxy.fail("ListTagsForResource", "denied")  # the role lacks ecr:ListTagsForResource

    result = apply(store, lambda account, region: client, config, now, actor=ADMIN)

    assert ("ListTagsForResource", "denied") in proxy.seen
    assert seeder.live_digests(repo) == before  # nothing deleted
    assert store.get(proposal_id).state is ProposalState.APPROVED  # left for the next apply
    assert list(result.refused) == [proposal_id]
    assert "AccessDeniedException" in result.refused[proposal_id]
    (row,) = store.audit_log(proposal_id=proposal_id, outcome="retry")
    assert row.data == {"access_denied": True} and "ecr:ListTagsForResource" in row.detail
    (run,) = store.runs(kind="apply")
    assert run.status == "failed"
    assert run.errors[0].startswith(f"{proposal_id}: a read was refused (AccessDeniedException)")
    assert "hygiene iam policy --role cleaner" in run.errors[0]

    again = apply(store, lambda account, region: client, config, now, actor=ADMIN)
    assert again.refused == {} and again.states[proposal_id][0] == "applied"  # mended


def test_a_proposal_kept_for_retry_is_reported_once_when_it_is_kept_the_nth_time_in_a_row(
    store: Store, seeder: Seeder, proxy: FaultProxy, config: Config, now: datetime
) -> None:
    assert KEPT_ALERT_AFTER == 3 == config.policy.apply.kept_alert_after  # the default
    repo, proposal_id = stale_proposal(store, seeder, config, now)
    client = proxy.client()
    kept = []
    for night in range(KEPT_ALERT_AFTER + 1):
        proxy.fail("ListTagsForResource", "500")  # the repository cannot be read again
        result = apply(
            store, lambda account, region: client, config, now + timedelta(days=night), actor=ADMIN
        )
        assert result.refused == {}
        assert store.get(proposal_id).state is ProposalState.APPROVED
        kept.append(dict(result.kept))
        (run,) = store.runs(last=1, kind="apply")
        assert run.status == "ok"

    assert kept[:2] == [{}, {}] and kept[3] == {}  # once, the third time, not every night
    assert list(kept[2]) == [proposal_id]
    assert kept[2][proposal_id].startswith(
        f"kept for the next apply by {KEPT_ALERT_AFTER} applies in a row, nothing deleted: "
        "could not read suporte/api again (ListTagsForResource: ServerException"
    )
    (third,) = [r for r in store.runs(kind="apply") if r.started_at == now + timedelta(days=2)]
    assert third.errors == [f"{proposal_id}: {kept[2][proposal_id]}"]
    assert len(seeder.live_digests(repo)) == 4

    # a run that gets through ends the streak: the next trouble counts from one again
    done = apply(store, lambda a, r: client, config, now + timedelta(days=9), actor=ADMIN)
    assert done.states[proposal_id][0] == "applied"


@pytest.fixture
def hand_run(
    ecr: Any,
    seeder: Seeder,
    proxy: FaultProxy,
    config: Config,
    now: datetime,
    tmp_path: Path,
    smtp_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, Any]]:
    """An admin signed in, rules that e-mail the admins through a real SMTP server, an
    approved deletion past its grace period, the CLI pointed at the proxy."""
    monkeypatch.delenv(DEMO_TOKEN_ENV, raising=False)
    signed_in(monkeypatch, sts_as(ecr, ADMIN_ROLE, "alice@lsd.ufcg.edu.br"))
    with smtp_server() as smtp:
        smtp_settings = {
            "host": smtp.host,
            "port": smtp.port,
            "security": "none",
            "username_env": None,
        }
        directory = trust_rules(
            tmp_path / "rules",
            ["AdministratorAccess"],
            notify={"retries": 0, "admin_emails": ADMINS, "email": True, "smtp": smtp_settings},
            report={"out_dir": str(tmp_path / "out")},
            in_use={"aws_sources": []},
        )
        url = f"sqlite:///{tmp_path / 'hygiene.db'}"
        store = deployed_store(url, directory)
        seeded = proposal_in_grace(store, seeder, config, now)
        alice = f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/{ADMIN_ROLE}/alice@lsd.ufcg.edu.br"
        store.approve([seeded["id"]], Identity(alice, "sts"))
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint_url)
        yield {
            **seeded,
            "store": store,
            "smtp": smtp,
            "args": ["apply", "--rules-dir", str(directory), "--store", url],
        }


def test_a_hand_run_apply_refused_a_read_exits_7_and_alerts_the_admins(
    hand_run: dict[str, Any],
    seeder: Seeder,
    proxy: FaultProxy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, smtp = hand_run["store"], hand_run["smtp"]
    proxy.fail("ListTagsForResource", "denied")

    code = run_cli(cli, hand_run["args"])

    assert code == ExitCode.APPLY_FAILED == 7
    assert "a read was refused (AccessDeniedException)" in capsys.readouterr().out
    (run,) = store.runs(kind="apply")
    assert run.status == "failed" and hand_run["id"] in run.errors[0]
    (alert,) = smtp.messages
    assert alert.message["Subject"] == f"registry-hygiene: apply run {run.id} failed"
    assert alert.rcpt_tos == ADMINS
    assert "ecr:ListTagsForResource" in alert.message.get_body(("plain",)).get_content()
    assert store.get(hand_run["id"]).state.value == "approved"
    assert seeder.live_digests(hand_run["repo"]) == {*hand_run["digests"], hand_run["kept"]}


def test_a_hand_run_apply_that_keeps_a_proposal_the_third_time_alerts_once(
    hand_run: dict[str, Any], proxy: FaultProxy
) -> None:
    store, smtp = hand_run["store"], hand_run["smtp"]
    codes = []
    proxy.fail("ListTagsForResource", *["500"] * 40)  # botocore retries each call
    for _ in range(KEPT_ALERT_AFTER + 1):
        codes.append(run_cli(cli, hand_run["args"]))

    assert codes == [0] * (KEPT_ALERT_AFTER + 1)  # nothing failed: kept for a retry
    third = store.runs(kind="apply")[1]  # newest first
    (alert,) = smtp.messages
    subject = " ".join(str(alert.message["Subject"]).split())  # a long header is folded
    assert subject == f"registry-hygiene: apply run {third.id} kept 1 proposal(s) again"
    body = alert.message.get_body(("plain",)).get_content()
    assert f"{hand_run['id']}: kept for the next apply by {KEPT_ALERT_AFTER} applies" in body
    assert store.get(hand_run["id"]).state.value == "approved"


@pytest.mark.parametrize("after", [1, 2])
def test_the_kept_again_threshold_is_the_configured_one(
    store: Store, seeder: Seeder, proxy: FaultProxy, now: datetime, after: int
) -> None:
    """``apply.kept_alert_after``: the apply that keeps a proposal for that many times in
    a row reports it, once."""
    policy = builders.shipped_policy()
    policy["apply"]["kept_alert_after"] = after
    config = builders.config(policy)
    _, proposal_id = stale_proposal(store, seeder, config, now)
    client = proxy.client()
    kept = []
    for night in range(after + 1):
        proxy.fail("ListTagsForResource", "500")
        result = apply(
            store, lambda account, region: client, config, now + timedelta(days=night), actor=ADMIN
        )
        kept.append(list(result.kept))
    assert kept == [[]] * (after - 1) + [[proposal_id], []]
    (reported,) = [
        r for r in store.runs(kind="apply") if r.started_at == now + timedelta(days=after - 1)
    ]
    assert reported.errors[0].startswith(
        f"{proposal_id}: kept for the next apply by {after} applies in a row, nothing deleted"
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (0, "apply.kept_alert_after: Input should be greater than or equal to 1"),
        (366, "apply.kept_alert_after: Input should be less than or equal to 365"),
        ("often", "apply.kept_alert_after: Input should be a valid integer"),
    ],
)
def test_a_bad_kept_again_threshold_is_one_readable_error(
    tmp_path: Path, value: Any, problem: str
) -> None:
    from hygiene.config import load_config
    from hygiene.errors import ConfigError

    policy = builders.shipped_policy()
    policy["apply"]["kept_alert_after"] = value
    directory = builders.write_rules(tmp_path / "rules", policy)
    with pytest.raises(ConfigError) as error:
        load_config(directory)
    (line,) = error.value.lines()
    assert line.startswith(f"{directory / 'default.yaml'}:") and problem in line, line


@pytest.mark.integration  # the store is also the embedded PostgreSQL (either_store)
def test_a_notice_between_two_kept_applies_does_not_break_the_streak(store: Store) -> None:
    """An auto_safe proposal kept by the nightly job's apply, then announced by the same
    job's report (its grace-started row names the nightly run): the streak goes on."""
    proposal_id = "p-0123456789ab"
    store.audit("apply", "retry", run_id="apply-1", proposal_id=proposal_id, detail="x")
    store.audit("notify", "grace-started", run_id="nightly-1", proposal_id=proposal_id)
    store.audit("apply", "retry", run_id="apply-2", proposal_id=proposal_id, detail="x")
    assert kept_in_a_row(store, proposal_id) == 2
