"""publish(): the one call of the nightly/weekly jobs: files first, then deliveries."""

from __future__ import annotations

import json
from pathlib import Path

from hygiene.config import Config
from hygiene.notify import EmailChannel, SmtpTransport, publish
from tests.notify.conftest import with_notify
from tests.report import sample


def test_publish_weekly_by_email_and_slack(
    config: Config, tmp_path: Path, smtp_server, slack_server
) -> None:
    with smtp_server() as server, slack_server() as slack:
        cfg = with_notify(
            config,
            email=True,
            slack=True,
            smtp={"host": server.host, "port": server.port, "security": "none",
                  "username_env": None},
            slack_settings={"base_url": slack.base + "api/"},
        )  # fmt: skip
        publication = publish(
            sample.report_data(),
            cfg,
            "weekly",
            namespaces=["suporte", "ml"],
            out_dir=tmp_path,
            environ={"HYGIENE_SLACK_TOKEN": "xoxb-1"},
        )
    assert [r.name for r in publication.reports] == ["weekly-suporte", "weekly-ml"]
    assert publication.failed == []
    assert sorted((d.report, d.channel) for d in publication.deliveries) == [
        ("weekly-ml", "email"), ("weekly-ml", "slack"),
        ("weekly-suporte", "email"), ("weekly-suporte", "slack"),
    ]  # fmt: skip
    reached = {(d.report, d.channel): d.reached for d in publication.deliveries}
    assert reached[("weekly-ml", "email")] == ("mailto:ana.costa@lsd.ufcg.edu.br",)
    assert reached[("weekly-ml", "slack")] == ("slack:CML-RESEARCH",)
    assert sorted(m.rcpt_tos[0] for m in server.messages) == [
        "ana.costa@lsd.ufcg.edu.br",
        "joao.silva@lsd.ufcg.edu.br",
    ]
    channels = sorted(c.params["channel"] for c in slack.called("chat.postMessage"))
    assert channels == ["#ml-research", "#suporte-infra"]
    record = publication.reports[0].files["html"].parent / "deliveries.json"
    recorded = json.loads(record.read_text())
    assert [d["ok"] for d in recorded] == [True] * 4
    assert {tuple(d["reached"]) for d in recorded} == {
        tuple(d.reached) for d in publication.deliveries
    }


def test_publish_never_raises_on_delivery_and_keeps_the_files(
    config: Config, tmp_path: Path
) -> None:
    class Broken(SmtpTransport):
        def send(self, message: object) -> None:  # type: ignore[override]
            raise RuntimeError("mail relay on fire")

    cfg = with_notify(config, email=True, slack=True, retries=1,
                      admin_emails=["admin@lsd.ufcg.edu.br"])  # fmt: skip
    publication = publish(
        sample.report_data(),
        cfg,
        "nightly",
        out_dir=tmp_path,
        environ={},
        channels=[EmailChannel(Broken(cfg.policy.notify.smtp), sender="h@lsd.ufcg.edu.br")],
        sleep=lambda _: None,
    )
    assert [(d.channel, d.ok, d.attempts) for d in publication.deliveries] == [("email", False, 2)]
    assert "mail relay on fire" in (publication.deliveries[0].error or "")
    assert publication.reports[0].files["html"].is_file()
    failure = publication.failed[0].to_failure()
    next_night = sample.report_data()
    next_night.delivery_failures = [failure]
    from hygiene.report import render_nightly

    assert (
        "could not be delivered by email to admin@lsd.ufcg.edu.br"
        in render_nightly(next_night, cfg).text
    )
