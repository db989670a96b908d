"""Channels as a protocol: the three shipped ones, chat webhooks against a local HTTP
server, and a fourth channel that is one module and nothing else."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import hygiene.notify.channels as channels_package
from hygiene.config import Config
from hygiene.errors import ConfigError
from hygiene.notify import WebhookChannel, build_channels, channel_types, deliver_all, publish
from hygiene.notify.channels.email import ZIP_ABOVE_BYTES, attachments
from hygiene.notify.channels.webhook import payload
from hygiene.report import RenderedReport
from tests.notify.conftest import with_notify
from tests.report import sample


def test_the_shipped_channels_follow_the_protocol() -> None:
    names = [c.name for c in channel_types()]
    assert names == ["email", "slack", "webhook"]
    for channel in channel_types():
        for method in ("from_settings", "targets", "send"):
            assert callable(getattr(channel, method)), (channel.name, method)


def test_switched_off_channels_are_not_built(config: Config) -> None:
    built, broken = build_channels(with_notify(config), environ={})
    assert built == [] and broken == []


@pytest.mark.parametrize("fmt", ["teams", "mattermost", "google-chat"])
def test_webhook_posts_each_services_payload(
    config: Config, weekly_ml: RenderedReport, nightly: RenderedReport, fmt: str, webhook_server
) -> None:
    with webhook_server() as hook:
        cfg = with_notify(
            config,
            channels={"webhook": {"format": fmt, "url_env": "HOOK_ADMINS",
                                  "namespaces": {"ml": "HOOK_ML"}}},
        )  # fmt: skip
        env = {"HOOK_ADMINS": hook.url("admins"), "HOOK_ML": hook.url("ml")}
        results = deliver_all([nightly, weekly_ml], cfg, environ=env)
    assert [(r.report, r.channel, r.target, r.ok) for r in results] == [
        ("nightly", "webhook", f"{fmt}:admins", True),
        ("weekly-ml", "webhook", f"{fmt}:ml", True),
    ]
    assert results[1].reached == (f"webhook:{fmt}:ml",)
    assert [p.path for p in hook.posts] == ["/hooks/admins", "/hooks/ml"]
    assert hook.posts[0].headers["Content-Type"].startswith("application/json")
    body = hook.posts[1].payload
    if fmt == "teams":
        card = body["attachments"][0]
        assert body["type"] == "message"
        assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
        content = card["content"]
        assert content["type"] == "AdaptiveCard" and content["version"] == "1.4"
        assert content["body"][0]["text"] == weekly_ml.subject
        facts = {f["title"]: f["value"] for f in content["body"][1]["facts"]}
        assert facts["Repositories"] == "2" and facts["Images"] == "7"
        texts = json.dumps(content["body"])
    else:
        assert set(body) <= {"text", "username"}
        texts = body["text"]
        bold = "**" if fmt == "mattermost" else "*"
        assert texts.startswith(f"{bold}{weekly_ml.subject}{bold}")
        assert f"{bold}Repositories{bold}: 2" in texts
    assert "IM002" in texts and "stale-image" in texts  # top findings
    assert "hygiene reject PROPOSAL_ID --reason" in texts  # the owners' action
    nightly_text = json.dumps(hook.posts[0].payload)
    assert "hygiene approve --namespace ml --rule IM002" in nightly_text


def test_webhook_is_retried_then_recorded_and_the_url_stays_secret(
    config: Config, weekly_ml: RenderedReport, webhook_server
) -> None:
    with webhook_server(status=500) as hook:
        cfg = with_notify(
            config,
            retries=2,
            channels={"webhook": {"format": "mattermost", "url_env": None,
                                  "namespaces": {"ml": "HOOK_ML"}}},
        )  # fmt: skip
        secret = hook.url("T0/B0/very-secret-token")
        results = deliver_all([weekly_ml], cfg, environ={"HOOK_ML": secret}, sleep=lambda _: None)
    assert [(r.ok, r.attempts) for r in results] == [(False, 3)]
    assert len(hook.posts) == 3
    assert "HTTP 500" in (results[0].error or "")
    assert "very-secret-token" not in (results[0].error or "")


def test_webhook_answering_after_a_failure_counts_once(
    config: Config, weekly_ml: RenderedReport, webhook_server
) -> None:
    with webhook_server(status=202, fail_first=1) as hook:  # Teams workflows answer 202
        cfg = with_notify(
            config,
            channels={"webhook": {"format": "teams", "url_env": None,
                                  "namespaces": {"ml": "HOOK_ML"}}},
        )  # fmt: skip
        results = deliver_all(
            [weekly_ml], cfg, environ={"HOOK_ML": hook.url("ml")}, sleep=lambda _: None
        )
    assert [(r.ok, r.attempts) for r in results] == [(True, 2)]


def test_webhook_settings_are_checked_and_name_the_key(config: Config) -> None:
    bad = with_notify(config, channels={"webhook": {"format": "irc"}})
    with pytest.raises(ConfigError, match=r"notify\.channels\.webhook\.format"):
        WebhookChannel.from_settings(bad.policy.notify, {})
    unknown = with_notify(config, channels={"webhook": {"format": "teams", "colour": "red"}})
    with pytest.raises(ConfigError, match=r"notify\.channels\.webhook\.colour"):
        WebhookChannel.from_settings(unknown.policy.notify, {})
    unset = with_notify(config, channels={"webhook": {"format": "teams"}})
    built, broken = build_channels(unset, environ={})
    assert built == [] and broken == [
        ("webhook", "notify.channels.webhook: $HYGIENE_WEBHOOK_URL is not set")
    ]


def test_a_project_without_a_webhook_gets_no_post(
    config: Config, weekly_suporte: RenderedReport
) -> None:
    cfg = with_notify(config, channels={"webhook": {"format": "teams"}})
    channel = WebhookChannel.from_settings(cfg.policy.notify, {"HYGIENE_WEBHOOK_URL": "http://x"})
    assert channel is not None
    from hygiene.notify import audience

    assert channel.targets(weekly_suporte, audience(weekly_suporte, cfg)) == []


def test_payload_of_a_run_alert_is_its_text(weekly_ml: RenderedReport) -> None:
    alert = RenderedReport(kind="nightly", namespace=None, locale="en", subject="Run failed",
                           html="<p>x</p>", text="scan stopped: AccessDenied")  # fmt: skip
    body = payload(alert, "google-chat")
    assert body["text"].startswith("*Run failed*") and "scan stopped: AccessDenied" in body["text"]


FOURTH = '''
"""Pager: a made-up fourth channel, to show one module is all a channel needs."""

from typing import ClassVar

from hygiene.notify.channels.base import Sent, Target

SENT: list[tuple[str, str]] = []


class PagerChannel:
    name: ClassVar[str] = "pager"

    @classmethod
    def from_settings(cls, notify, environ):
        settings = notify.channels.get("pager")
        return None if settings is None else cls(settings["number"])

    def __init__(self, number):
        self.number = number

    def targets(self, report, audience):
        return [Target(f"pager:{self.number}", audience.to)]

    def send(self, report, target):
        SENT.append((report.name, report.subject))
        return Sent(tuple(f"mailto:{person}" for person in target.people))


CHANNEL = PagerChannel
'''


def test_a_fourth_channel_is_one_module(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "more_channels"
    folder.mkdir()
    (folder / "pager.py").write_text(textwrap.dedent(FOURTH))
    monkeypatch.setattr(channels_package, "__path__", [*channels_package.__path__, str(folder)])
    channel_types.cache_clear()
    try:
        assert [c.name for c in channel_types()] == ["email", "pager", "slack", "webhook"]
        cfg = with_notify(config, channels={"pager": {"number": "+55 83 0000"}})
        publication = publish(
            sample.report_data(), cfg, "weekly", namespaces=["ml"], out_dir=tmp_path / "out",
            environ={},
        )  # fmt: skip
        module: Any = sys.modules["hygiene.notify.channels.pager"]
        assert [("weekly-ml", publication.reports[0].subject)] == module.SENT
        [result] = publication.deliveries
        assert (result.channel, result.target, result.ok) == ("pager", "pager:+55 83 0000", True)
        assert result.people == ["ana.costa@lsd.ufcg.edu.br"]
        recorded = json.loads((publication.reports[0].files["html"].parent
                               / "deliveries.json").read_text())  # fmt: skip
        assert recorded[0]["channel"] == "pager"
    finally:
        sys.modules.pop("hygiene.notify.channels.pager", None)
        channel_types.cache_clear()


# --------------------------------------------------------------------------- e-mail


def test_small_exports_are_attached_as_they_are(weekly_ml: RenderedReport) -> None:
    attached = attachments(weekly_ml, 10_000_000)
    names = [a.filename for a in attached]
    assert "weekly-ml-images.csv" in names and "weekly-ml-proposals.csv" in names
    assert names[-1] == "weekly-ml.html"  # the full report goes too
    csv = next(a for a in attached if a.filename == "weekly-ml-images.csv")
    assert csv.mime == ("text", "csv")
    assert csv.data == weekly_ml.files["images_csv"].read_bytes()


def test_large_exports_go_zipped_or_not_at_all(weekly_ml: RenderedReport) -> None:
    import io
    import zipfile

    big = weekly_ml.files["findings_csv"]
    big.write_text("code,message\n" + "IM002,stale image never pulled\n" * 60_000)
    assert big.stat().st_size > ZIP_ABOVE_BYTES
    [packed] = attachments(weekly_ml, 10_000_000)
    assert packed.filename == "weekly-ml.zip" and packed.mime == ("application", "zip")
    with zipfile.ZipFile(io.BytesIO(packed.data)) as archive:
        assert archive.read("weekly-ml-findings.csv") == big.read_bytes()
    assert attachments(weekly_ml, 1_000) == []  # even zipped it would not fit: none
    _html, text = weekly_ml.mail([])
    assert "on the report host at" in text  # then the mail says where the files are


def test_config_check_refuses_bad_channel_settings(tmp_path: Path) -> None:
    """Loading the configuration (every CLI command, the scheduler) checks
    notify.channels: an unknown channel or a bad webhook setting is exit 2, naming it."""
    from hygiene.cli import cli
    from hygiene.cli.common import run_cli
    from tests import builders

    for channels, expected in (
        ({"pager": {}}, "notify.channels.pager: no such channel (known: email, slack, webhook)"),
        ({"webhook": {"format": "irc"}}, "notify.channels.webhook.format"),
    ):
        policy = builders.shipped_policy()
        policy["notify"]["channels"] = channels
        rules = builders.write_rules(tmp_path / "rules", policy)
        assert run_cli(cli, ["config", "check", "--rules-dir", str(rules)]) == 2
        from hygiene.checks import check_channels
        from hygiene.config import load_config

        with pytest.raises(ConfigError, match=re.escape(expected)):
            load_config(rules, checks=[check_channels])
