"""Run statuses that tell the truth, end to end: real jobs on the embedded registry, a
real SMTP server and the Slack stand-in (issue: "statuses that never lie")."""

from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hygiene.authz.identity import DEMO_TOKEN_ENV, Identity
from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.config import SmtpSettings
from hygiene.errors import ConfigError, ExitCode
from hygiene.notify.channels.email import SmtpCredentials, SmtpTransport
from hygiene.store import Store
from tests import builders
from tests.apply.registry import Seeder
from tests.authz.world import (
    ADMIN_ROLE,
    MOTO_ACCOUNT,
    deployed_store,
    proposal_in_grace,
    signed_in,
    sts_as,
)
from tests.authz.world import rules as trust_rules

ADMINS = ["registry-admins@lsd.ufcg.edu.br"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nobody listens once it is closed


def rules(tmp_path: Path, **notify: Any) -> Path:
    return trust_rules(
        tmp_path / "rules",
        ["AdministratorAccess"],
        notify={"retries": 0, "admin_emails": ADMINS, **notify},
        report={"out_dir": str(tmp_path / "out")},
    )


@pytest.fixture
def registry(ecr, seeder: Seeder, monkeypatch, tmp_path) -> Seeder:
    monkeypatch.setenv("AWS_ENDPOINT_URL", ecr.endpoint_url)
    monkeypatch.setenv("HYGIENE_STORE_URL", f"sqlite:///{tmp_path / 'hygiene.db'}")
    monkeypatch.delenv(DEMO_TOKEN_ENV, raising=False)
    monkeypatch.setenv("HYGIENE_SLACK_TOKEN", "xoxb-test")
    repo = seeder.repo("bigsea/api")
    seeder.image(repo, tag="v1")
    return seeder


def test_all_channels_failing_makes_the_run_degraded(
    registry, tmp_path, smtp_server, slack_server, monkeypatch, capsys
) -> None:
    """Every delivery of the admin report fails (the relay refuses the login, Slack
    refuses the post): the run is degraded, exit 8, the alert was tried on both."""
    monkeypatch.setenv("HYGIENE_SMTP_USER", "hygiene")
    monkeypatch.setenv("HYGIENE_SMTP_PASSWORD", "wrong")
    with smtp_server(users={"hygiene": "right"}) as smtp, slack_server() as slack:
        slack.fail.add("chat.postMessage")
        directory = rules(
            tmp_path,
            email=True,
            slack=True,
            smtp={"host": smtp.host, "port": smtp.port, "security": "none"},  # loopback
            slack_settings={
                "base_url": slack.base + "api/",
                "upload_html": False,
                "admin_channel": "#registry-admins",
            },
        )
        code = run_cli(cli, ["run", "nightly", "--rules-dir", str(directory)])
    assert code == ExitCode.DEGRADED == 8
    assert smtp.messages == [] and smtp.logins  # the relay refused the report and the alert
    assert set(smtp.logins) == {("hygiene", "wrong")}
    posts = slack.called("chat.postMessage")
    assert [p.params["channel"] for p in posts] == ["#registry-admins"] * 2
    store = Store(str(tmp_path / "hygiene.db"))
    (run,) = store.runs()
    assert run.status == "degraded"
    assert "admin report: the report reached no one" in run.errors[0]
    failed = store.audit_log(outcome="failed")
    assert {e.action for e in failed} == {"notify"} and len(failed) == 2
    capsys.readouterr()
    assert run_cli(cli, ["runs", "--rules-dir", str(directory)]) == 0
    assert "degraded" in capsys.readouterr().out


def test_the_alert_goes_out_on_the_channel_that_works(
    registry, tmp_path, slack_server, capsys
) -> None:
    """The owner report of bigsea (no Slack channel: a DM to an owner Slack does not
    know) reaches no one; the admins' channel works, so the alert reaches them."""
    with slack_server() as slack:
        directory = rules(
            tmp_path,
            slack=True,
            slack_settings={
                "base_url": slack.base + "api/",
                "upload_html": False,
                "admin_channel": "#registry-admins",
            },
        )
        args = ["run", "weekly", "--namespace", "bigsea", "--rules-dir", str(directory)]
        code = run_cli(cli, args)
    assert code == ExitCode.DEGRADED
    assert [c.params.get("email") for c in slack.called("users.lookupByEmail")] == [
        "fabio.morais@lsd.ufcg.edu.br"
    ]
    (alert,) = slack.called("chat.postMessage")
    assert alert.params["channel"] == "#registry-admins"
    assert "degraded" in json.dumps(alert.params)
    (run,) = Store(str(tmp_path / "hygiene.db")).runs()
    assert run.status == "degraded"
    assert "owner report bigsea: the report reached no one" in run.errors[0]


def test_apply_against_an_unreachable_registry_fails_exits_6_and_alerts(
    ecr, seeder: Seeder, config, now, tmp_path, smtp_server, monkeypatch, capsys
) -> None:
    monkeypatch.delenv(DEMO_TOKEN_ENV, raising=False)
    signed_in(monkeypatch, sts_as(ecr, ADMIN_ROLE, "alice@lsd.ufcg.edu.br"))
    with smtp_server() as smtp:
        directory = rules(
            tmp_path,
            email=True,
            smtp={"host": smtp.host, "port": smtp.port, "security": "none", "username_env": None},
        )
        url = f"sqlite:///{tmp_path / 'hygiene.db'}"
        store = deployed_store(url, directory)
        seeded = proposal_in_grace(store, seeder, config, now)
        alice = f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/{ADMIN_ROLE}/alice@lsd.ufcg.edu.br"
        store.approve([seeded["id"]], Identity(alice, "sts"))
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
        code = run_cli(cli, ["apply", "--rules-dir", str(directory), "--store", url])
    assert code == ExitCode.UNREACHABLE == 6
    assert "unreachable" in capsys.readouterr().err
    (run,) = store.runs(kind="apply")
    assert run.status == "failed" and "unreachable" in run.errors[0]
    assert run.api_calls == {"DescribeImages": 1}
    (alert,) = smtp.messages
    assert alert.message["Subject"] == f"registry-hygiene: apply run {run.id} failed"
    assert alert.rcpt_tos == ADMINS
    assert store.get(seeded["id"]).state.value == "approved"  # left for the next apply
    assert seeder.live_digests(seeded["repo"]) == {*seeded["digests"], seeded["kept"]}


def test_runs_shows_times_in_the_schedule_time_zone(tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = Store(url)
    run_id = store.record_run("nightly", started_at=builders.NOW)  # 12:00 UTC
    store.finish_run(run_id, "ok", finished_at=builders.NOW + timedelta(minutes=2))
    policy = builders.shipped_policy()
    policy["schedule"]["timezone"] = "Asia/Tokyo"
    directory = builders.write_rules(tmp_path / "rules", policy)
    assert run_cli(cli, ["runs", "--rules-dir", str(directory), "--store", url]) == 0
    out = capsys.readouterr().out
    assert "2026-11-28 21:00" in out and "Asia/Tokyo" in out and "12:00" not in out


@pytest.mark.parametrize(
    ("host", "allow", "refused"),
    [
        ("smtp.lsd.ufcg.edu.br", False, True),
        ("10.0.0.5", False, True),
        ("smtp.lsd.ufcg.edu.br", True, False),
        ("localhost", False, False),
        ("127.0.0.1", False, False),
        ("::1", False, False),
    ],
)
def test_a_clear_text_smtp_login_is_refused_off_this_machine(host, allow, refused) -> None:
    settings = SmtpSettings(host=host, security="none", allow_plaintext_auth=allow)
    credentials = SmtpCredentials("hygiene", "secret")
    if refused:
        with pytest.raises(ConfigError, match="clear text") as caught:
            SmtpTransport(settings, credentials=credentials)
        assert "secret" not in caught.value.message
    else:
        SmtpTransport(settings, credentials=credentials)
    SmtpTransport(settings)  # no login: nothing to protect
    SmtpTransport(settings.model_copy(update={"security": "starttls"}), credentials=credentials)


def test_a_snapshot_that_cannot_be_written_fails_the_nightly_run_at_collect(
    registry, tmp_path, capsys
) -> None:
    """The snapshot is written in a thread while the rules run; when it cannot be
    written the run fails at collect, exit 1, nothing counted, stored or reported: as
    when collect wrote it before returning."""
    directory = rules(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "snapshots").write_text("a file where the directory should be")
    code = run_cli(cli, ["run", "nightly", "--rules-dir", str(directory)])
    assert code == 1
    store = Store(str(tmp_path / "hygiene.db"))
    (run,) = store.runs()
    assert run.status == "failed"
    assert run.errors == [f"collect: FileExistsError: [Errno 17] File exists: "
                          f"'{tmp_path / 'out' / 'snapshots'}'"]  # fmt: skip
    assert run.counts == {} and run.api_calls == {}
    assert store.proposals() == []
    # no report: only the alert the failure sent (to a file: no channel is configured)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["alerts", "snapshots"]
    capsys.readouterr()


def test_the_snapshot_written_alongside_the_rules_is_the_collected_inventory(
    registry, tmp_path, now
) -> None:
    from hygiene.config import load_config
    from hygiene.inventory import write_snapshot
    from hygiene.jobs import run_nightly
    from hygiene.wiring import build_job_deps

    config = load_config(rules(tmp_path))
    deps = build_job_deps(config, out_dir=tmp_path / "out", send=False)
    assert run_nightly(deps, config, now, threading.Event()).exit_code == 0
    wired = deps.context
    (written,) = (tmp_path / "out" / "snapshots").iterdir()
    assert wired.snapshot == written
    again = write_snapshot(wired.inventory, tmp_path / "again.parquet")  # after the job
    assert again.read_bytes() == written.read_bytes()
