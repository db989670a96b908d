"""E-mail: a real aiosmtpd server on loopback (plain, STARTTLS + AUTH, implicit TLS), SES
with a botocore Stubber, and retries that end in a recorded failure."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber

from hygiene.config import Config, SmtpSettings
from hygiene.errors import ConfigError
from hygiene.notify import (
    EmailChannel,
    SesTransport,
    SmtpCredentials,
    SmtpTransport,
    build_email,
    deliver_all,
    deliver_report,
    smtp_credentials,
)
from hygiene.report import RenderedReport
from tests.notify.conftest import with_notify
from tests.notify.servers import free_port, self_signed_cert


def mail(transport: SmtpTransport | SesTransport, config: Config) -> list[EmailChannel]:
    return [EmailChannel(transport, sender=config.policy.notify.smtp.sender)]


def parts(message):  # type: ignore[no-untyped-def]
    """(text, HTML) of a report mail: text and HTML alternatives, then the attachments."""
    assert message.get_content_type() == "multipart/mixed"
    alternative = next(message.iter_parts())
    assert alternative.get_content_type() == "multipart/alternative"
    types = [p.get_content_type() for p in alternative.iter_parts()]
    assert types == ["text/plain", "text/html"]
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
    return text, html


def test_weekly_report_reaches_owners_over_plain_smtp(
    config: Config, weekly_ml: RenderedReport, smtp_server
) -> None:
    with smtp_server() as server:
        cfg = with_notify(
            config,
            email=True,
            admin_emails=["registry-admins@lsd.ufcg.edu.br"],
            weekly_cc_members=True,
            smtp={
                "host": server.host,
                "port": server.port,
                "security": "none",
                "sender": "hygiene@lsd.ufcg.edu.br",
                "username_env": None,
            },
        )
        results = deliver_report(weekly_ml, cfg, mail(SmtpTransport(cfg.policy.notify.smtp), cfg))
    assert [r.ok for r in results] == [True]
    assert results[0].people == ["ana.costa@lsd.ufcg.edu.br", "lucas.alves@lsd.ufcg.edu.br"]
    assert len(server.messages) == 1
    received = server.messages[0]
    assert received.mail_from == "hygiene@lsd.ufcg.edu.br"
    assert sorted(received.rcpt_tos) == ["ana.costa@lsd.ufcg.edu.br", "lucas.alves@lsd.ufcg.edu.br"]
    message = received.message
    assert message["Subject"] == weekly_ml.subject
    assert message["Subject"].endswith("Registry hygiene: weekly report for ml")
    assert message["Reply-To"] == "registry-admins@lsd.ufcg.edu.br"
    assert message["Auto-Submitted"] == "auto-generated"
    text, html = parts(message)
    attached = [p.get_filename() for p in message.iter_attachments()]
    # the mail variant, naming the attachments it comes with
    mailed = weekly_ml.mail(attached)
    assert (html.strip(), text.strip()) == (mailed[0].strip(), mailed[1].strip())
    assert "hygiene reject PROPOSAL_ID" in text
    assert all(name in text for name in attached)
    assert "<html" in html and 'style="' in html
    assert "weekly-ml-images.csv" in attached and "weekly-ml.html" in attached


def test_starttls_with_login_and_no_secret_in_logs(
    config: Config,
    nightly: RenderedReport,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    smtp_server,
) -> None:
    cert, key, pem = self_signed_cert(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cadata=pem)
    secret = "s3cr3t-Passw0rd!"
    env = {"SMTP_USER": "hygiene-bot", "SMTP_PASS": secret}
    caplog.set_level(logging.DEBUG)
    with smtp_server(starttls=server_context, users={"hygiene-bot": secret}) as server:
        settings = SmtpSettings(
            host=server.host,
            port=server.port,
            security="starttls",
            username_env="SMTP_USER",
            password_env="SMTP_PASS",
        )
        cfg = with_notify(
            config, email=True, admin_emails=["admin@lsd.ufcg.edu.br"], smtp=settings.model_dump()
        )
        transport = SmtpTransport(
            settings, credentials=smtp_credentials(settings, env), ssl_context=client_context
        )
        results = deliver_report(nightly, cfg, mail(transport, cfg))
    assert results[0].ok, results[0].error
    assert server.logins == [("hygiene-bot", secret)]
    assert server.messages[0].rcpt_tos == ["admin@lsd.ufcg.edu.br"]
    assert secret not in repr(transport) and secret not in repr(transport.credentials)
    assert secret not in caplog.text
    assert secret not in nightly.html and secret not in nightly.text


def test_starttls_rejects_an_untrusted_certificate(
    config: Config, nightly: RenderedReport, tmp_path: Path, smtp_server
) -> None:
    cert, key, _ = self_signed_cert(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    with smtp_server(starttls=server_context) as server:
        cfg = with_notify(
            config,
            email=True,
            admin_emails=["admin@lsd.ufcg.edu.br"],
            retries=0,
            smtp={
                "host": server.host,
                "port": server.port,
                "security": "starttls",
                "username_env": None,
            },
        )
        results = deliver_report(nightly, cfg, mail(SmtpTransport(cfg.policy.notify.smtp), cfg))
    assert not results[0].ok
    assert "CERTIFICATE_VERIFY_FAILED" in (results[0].error or "")
    assert server.messages == []


def test_implicit_tls(config: Config, nightly: RenderedReport, tmp_path: Path, smtp_server) -> None:
    cert, key, pem = self_signed_cert(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    with smtp_server(implicit_tls=server_context) as server:
        settings = SmtpSettings(
            host=server.host, port=server.port, security="ssl", username_env=None
        )
        transport = SmtpTransport(settings, ssl_context=ssl.create_default_context(cadata=pem))
        message = build_email(nightly, sender="hygiene@lsd.ufcg.edu.br", to=["a@lsd.ufcg.edu.br"])
        transport.send(message)
    assert server.messages[0].message["Subject"] == nightly.subject


def test_failed_delivery_is_retried_then_recorded_and_html_stays(
    config: Config, weekly_suporte: RenderedReport
) -> None:
    port = free_port()  # nothing listens here
    cfg = with_notify(
        config,
        email=True,
        retries=2,
        retry_backoff_seconds=1.5,
        smtp={
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "username_env": None,
            "timeout": 2,
        },
    )
    sleeps: list[float] = []
    results = deliver_report(
        weekly_suporte, cfg, mail(SmtpTransport(cfg.policy.notify.smtp), cfg), sleep=sleeps.append
    )
    assert len(results) == 1
    result = results[0]
    assert not result.ok and result.attempts == 3
    assert "ConnectionRefusedError" in (result.error or "")
    assert sleeps == [1.5, 3.0]
    assert result.to_failure().report == "weekly-suporte"
    assert weekly_suporte.files["html"].is_file()
    assert result.target == "joao.silva@lsd.ufcg.edu.br"


def test_missing_password_is_a_failed_result_not_an_exception(
    config: Config, nightly: RenderedReport
) -> None:
    cfg = with_notify(
        config, email=True, smtp={"username_env": "SMTP_USER", "password_env": "SMTP_PASS"}
    )
    results = deliver_all([nightly], cfg, environ={"SMTP_USER": "bot"}, sleep=lambda _: None)
    assert [(r.ok, r.channel) for r in results] == [(False, "email")]
    assert "$SMTP_PASS" in (results[0].error or "")


def test_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("from-file\n")
    settings = SmtpSettings(username_env="U", password_file=secret)
    assert smtp_credentials(settings, {"U": "bot"}) == SmtpCredentials("bot", "from-file")
    assert smtp_credentials(settings, {}) is None
    with pytest.raises(ConfigError, match="password_file"):
        smtp_credentials(
            SmtpSettings(username_env="U", password_file=tmp_path / "nope"), {"U": "x"}
        )


def test_ses_send_raw_email(config: Config, weekly_ml: RenderedReport) -> None:
    client = boto3.client("ses", region_name="us-east-1")
    cfg = with_notify(
        config, email=True, email_transport="ses", smtp={"sender": "hygiene@lsd.ufcg.edu.br"}
    )
    with Stubber(client) as stub:
        stub.add_client_error("send_raw_email", "Throttling", "Rate exceeded")
        stub.add_response(
            "send_raw_email",
            {"MessageId": "0100-abc"},
            {
                "Source": "hygiene@lsd.ufcg.edu.br",
                "Destinations": ["ana.costa@lsd.ufcg.edu.br"],
                "RawMessage": {"Data": ANY},
            },
        )
        channel = EmailChannel.from_settings(cfg.policy.notify, {}, ses_client=client)
        assert channel is not None
        results = deliver_all([weekly_ml], cfg, channels=[channel], sleep=lambda _: None)
        stub.assert_no_pending_responses()
    assert [(r.channel, r.ok, r.attempts) for r in results] == [("email", True, 2)]
    assert results[0].reached == ("mailto:ana.costa@lsd.ufcg.edu.br",)


def test_ses_raw_message_is_the_multipart_report(weekly_ml: RenderedReport) -> None:
    sent: dict[str, object] = {}

    class Client:
        def send_raw_email(self, **kwargs: object) -> dict[str, str]:
            sent.update(kwargs)
            return {"MessageId": "x"}

    message = build_email(
        weekly_ml,
        sender="h@lsd.ufcg.edu.br",
        to=["ana.costa@lsd.ufcg.edu.br"],
        cc=["lucas.alves@lsd.ufcg.edu.br"],
    )
    SesTransport(Client()).send(message)
    assert sent["Destinations"] == ["ana.costa@lsd.ufcg.edu.br", "lucas.alves@lsd.ufcg.edu.br"]
    from email import message_from_bytes, policy

    raw = sent["RawMessage"]["Data"]  # type: ignore[index]
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == weekly_ml.subject
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]


def test_no_recipients_is_not_retried(config: Config, nightly: RenderedReport) -> None:
    cfg = with_notify(config, email=True, admin_emails=[], retries=3)
    sleeps: list[float] = []
    results = deliver_report(
        nightly, cfg, mail(SmtpTransport(cfg.policy.notify.smtp), cfg), sleep=sleeps.append
    )
    assert [(r.ok, r.attempts) for r in results] == [(False, 1)]
    assert "no e-mail recipients" in (results[0].error or "")
    assert sleeps == []
