"""E-mail delivery: a multipart/alternative message (text + HTML) sent by SMTP or SES.

Credentials come from environment variables named in ``notify.smtp`` (or a secret file)
and live only in the transport; they are never logged, never part of a report, and their
``repr`` is masked.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Protocol

from hygiene.authz.identity import is_loopback_host
from hygiene.config import SmtpSettings
from hygiene.errors import ConfigError, HygieneError
from hygiene.report.render import RenderedReport


class DeliveryError(HygieneError):
    """A report could not be delivered (after the transport's own attempt)."""


class EmailTransport(Protocol):
    name: str

    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class SmtpCredentials:
    username: str
    password: str = field(repr=False)


def smtp_credentials(
    settings: SmtpSettings, environ: Mapping[str, str] | None = None
) -> SmtpCredentials | None:
    """User from ``username_env``; password from ``password_file`` or ``password_env``.

    No user configured → no login (a relay on localhost). Errors name the variable or
    file, never a value."""
    env = os.environ if environ is None else environ
    username = env.get(settings.username_env, "") if settings.username_env else ""
    if not username:
        return None
    password = ""
    if settings.password_file is not None:
        path = Path(settings.password_file)
        try:
            password = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"notify.smtp.password_file: cannot read {path}: {exc.strerror}"
            ) from exc
    elif settings.password_env:
        password = env.get(settings.password_env, "")
    if not password:
        where = (
            f"file {settings.password_file}"
            if settings.password_file
            else f"${settings.password_env}"
        )
        raise ConfigError(
            f"notify.smtp: ${settings.username_env} is set but no password in {where}"
        )
    return SmtpCredentials(username, password)


def build_email(
    report: RenderedReport,
    *,
    sender: str,
    to: Sequence[str],
    cc: Sequence[str] = (),
    reply_to: Sequence[str] = (),
) -> EmailMessage:
    """text/plain + text/html alternatives of ``report``; replies go to ``reply_to``."""
    if not to:
        raise ConfigError(f"{report.name}: no e-mail recipients")
    message = EmailMessage()
    message["Subject"] = report.subject
    message["From"] = sender
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    if reply_to:
        message["Reply-To"] = ", ".join(reply_to)
    message["Date"] = formatdate(localtime=False)
    domain = sender.rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(idstring=report.name, domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = report.locale.replace("_", "-")
    message.set_content(report.text, subtype="plain", charset="utf-8")
    message.add_alternative(report.html, subtype="html", charset="utf-8")
    return message


def recipients_of(message: EmailMessage) -> list[str]:
    from email.utils import getaddresses

    fields = [str(v) for key in ("To", "Cc", "Bcc") for v in message.get_all(key, [])]
    return [address for _, address in getaddresses(fields) if address]


class SmtpTransport:
    """SMTP with STARTTLS, implicit TLS (``ssl``) or neither (``none``, for a local relay).

    A login over ``none`` (the password in clear text) is refused with a
    :class:`ConfigError` unless the host is a loopback address or
    ``allow_plaintext_auth`` is set."""

    name = "email"

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        credentials: SmtpCredentials | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if (
            credentials is not None
            and settings.security == "none"
            and not settings.allow_plaintext_auth
            and not is_loopback_host(settings.host)
        ):
            raise ConfigError(
                f"notify.smtp: security: none would send the SMTP password in clear text to "
                f"{settings.host}:{settings.port}; use starttls or ssl, a relay on this machine "
                "(localhost), or set notify.smtp.allow_plaintext_auth: true if the network "
                "in between is trusted"
            )
        self.settings = settings
        self.credentials = credentials
        self.ssl_context = ssl_context

    @classmethod
    def from_settings(
        cls, settings: SmtpSettings, environ: Mapping[str, str] | None = None
    ) -> SmtpTransport:
        return cls(settings, credentials=smtp_credentials(settings, environ))

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"SmtpTransport({s.host}:{s.port}, {s.security}, login={self.credentials is not None})"
        )

    def send(self, message: EmailMessage) -> None:
        s = self.settings
        context = self.ssl_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if s.security == "ssl":
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        with smtp:
            smtp.ehlo()
            if s.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.credentials is not None:
                smtp.login(self.credentials.username, self.credentials.password)
            refused = smtp.send_message(message)
        if refused:
            raise DeliveryError(f"SMTP server refused {', '.join(sorted(refused))}")


class SesTransport:
    """Amazon SES ``SendRawEmail`` with a boto3 ``sesv1`` client passed in."""

    name = "ses"

    def __init__(self, client: Any, *, configuration_set: str | None = None) -> None:
        self.client = client
        self.configuration_set = configuration_set

    def send(self, message: EmailMessage) -> None:
        kwargs: dict[str, Any] = {
            "Source": str(message["From"]),
            "Destinations": recipients_of(message),
            "RawMessage": {"Data": message.as_bytes()},
        }
        if self.configuration_set:
            kwargs["ConfigurationSetName"] = self.configuration_set
        self.client.send_raw_email(**kwargs)
