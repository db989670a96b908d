"""E-mail: the compact report (text + HTML) with the full tables attached, by SMTP or SES.

The mailed HTML is the report's *mail* variant (:attr:`RenderedReport.mail_html`): a
summary, the actions and the top rows, always under the size at which Gmail clips a
message. The full tables go as the CSV exports (in one zip when large), and the full
HTML report as well when it fits (:func:`attachments`).

Credentials come from environment variables named in ``notify.smtp`` (or a secret file)
and live only in the transport; they are never logged, never part of a report, and their
``repr`` is masked.
"""

from __future__ import annotations

import io
import mimetypes
import os
import smtplib
import ssl
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from hygiene.errors import ConfigError, HygieneError
from hygiene.notify.channels.base import Audience, Sent, Target

if TYPE_CHECKING:
    from hygiene.config import NotifySettings, SmtpSettings
    from hygiene.report.render import RenderedReport


class DeliveryError(HygieneError):
    """A report could not be delivered (after the transport's own attempt)."""


class EmailTransport(Protocol):
    name: str

    def send(self, message: EmailMessage) -> list[str]:
        """Send ``message``; return the recipients the server accepted."""
        ...


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


# --------------------------------------------------------------------------- attachments


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes

    @property
    def mime(self) -> tuple[str, str]:
        kind = mimetypes.guess_type(self.filename)[0] or "application/octet-stream"
        if self.filename.endswith(".csv"):
            kind = "text/csv"
        main, _, sub = kind.partition("/")
        return main, sub


# Attached as they are up to this total; zipped above it.
ZIP_ABOVE_BYTES = 1024**2


def attachment_files(report: RenderedReport) -> list[Path]:
    """The files a mail carries: the CSV exports (the full tables), then the full HTML."""
    files = [path for key, path in report.files.items() if key.endswith("_csv")]
    if "html" in report.files:
        files.append(report.files["html"])
    return [path for path in files if path.is_file()]


def attachments(report: RenderedReport, limit_bytes: int) -> list[Attachment]:
    """The report's files as attachments, as they are when small, else in one zip;
    nothing when even the zip is over ``limit_bytes`` (the mail then says where the files
    are). The full HTML is left out first when it alone makes the difference."""
    files = attachment_files(report)
    for candidate in (files, [f for f in files if not f.name.endswith(".html")]):
        plain = sum(path.stat().st_size for path in candidate)
        if not candidate:
            return []
        if plain <= min(ZIP_ABOVE_BYTES, limit_bytes):
            return [Attachment(path.name, path.read_bytes()) for path in candidate]
        packed = _zip(candidate)
        if len(packed) <= limit_bytes:
            return [Attachment(f"{report.name}.zip", packed)]
    return []


def _zip(files: Sequence[Path]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in files:
            zf.write(path, arcname=path.name)
    return buffer.getvalue()


# --------------------------------------------------------------------------- the message


def build_email(
    report: RenderedReport,
    *,
    sender: str,
    to: Sequence[str],
    cc: Sequence[str] = (),
    reply_to: Sequence[str] = (),
    attached: Sequence[Attachment] = (),
) -> EmailMessage:
    """text/plain + text/html alternatives of the report's mail variant (which names
    the attached files), with the attachments; replies go to ``reply_to``."""
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
    html, text = report.mail([attachment.filename for attachment in attached])
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    for attachment in attached:
        main, sub = attachment.mime
        message.add_attachment(
            attachment.data, maintype=main, subtype=sub, filename=attachment.filename
        )
    return message


def recipients_of(message: EmailMessage) -> list[str]:
    fields = [str(v) for key in ("To", "Cc", "Bcc") for v in message.get_all(key, [])]
    return [address for _, address in getaddresses(fields) if address]


# --------------------------------------------------------------------------- transports


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
        from hygiene.authz.identity import is_loopback_host

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

    def send(self, message: EmailMessage) -> list[str]:
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
            refused = smtp.send_message(message)  # raises when every recipient is refused
        return [r for r in recipients_of(message) if r not in refused]


class SesTransport:
    """Amazon SES ``SendRawEmail`` with a boto3 ``ses`` client passed in."""

    name = "ses"

    def __init__(self, client: Any, *, configuration_set: str | None = None) -> None:
        self.client = client
        self.configuration_set = configuration_set

    def send(self, message: EmailMessage) -> list[str]:
        recipients = recipients_of(message)
        kwargs: dict[str, Any] = {
            "Source": str(message["From"]),
            "Destinations": recipients,
            "RawMessage": {"Data": message.as_bytes()},
        }
        if self.configuration_set:
            kwargs["ConfigurationSetName"] = self.configuration_set
        self.client.send_raw_email(**kwargs)
        return recipients


def email_transport(
    notify: NotifySettings, environ: Mapping[str, str] | None = None, ses_client: Any = None
) -> EmailTransport:
    """The configured e-mail transport (SES builds a boto3 client unless one is passed)."""
    if notify.email_transport == "ses":
        if ses_client is None:
            import boto3

            ses_client = boto3.client("ses")
        return SesTransport(ses_client)
    return SmtpTransport.from_settings(notify.smtp, environ)


# --------------------------------------------------------------------------- the channel


class EmailChannel:
    """``notify.email: true``: one message per report to its audience's addresses."""

    name: ClassVar[str] = "email"

    def __init__(
        self,
        transport: EmailTransport,
        *,
        sender: str,
        attachment_max_bytes: int = 10_000_000,
    ) -> None:
        self.transport = transport
        self.sender = sender
        self.attachment_max_bytes = attachment_max_bytes

    @classmethod
    def from_settings(
        cls, notify: NotifySettings, environ: Mapping[str, str], *, ses_client: Any = None
    ) -> EmailChannel | None:
        if not notify.email:
            return None
        return cls(
            email_transport(notify, environ, ses_client),
            sender=notify.smtp.sender,
            attachment_max_bytes=notify.attachment_max_bytes,
        )

    def targets(self, report: RenderedReport, audience: Audience) -> list[Target]:
        people = tuple(audience.to) + tuple(audience.cc)
        return [
            Target(
                address=", ".join(people) or "(nobody)",
                people=people,
                options={"to": audience.to, "cc": audience.cc, "reply_to": audience.reply_to},
            )
        ]

    def send(self, report: RenderedReport, target: Target) -> Sent:
        message = build_email(
            report,
            sender=self.sender,
            to=target.options.get("to", ()),
            cc=target.options.get("cc", ()),
            reply_to=target.options.get("reply_to", ()),
            attached=attachments(report, self.attachment_max_bytes),
        )
        accepted = self.transport.send(message)
        refused = [r for r in recipients_of(message) if r not in accepted]
        note = f"{self.transport.name} server refused {', '.join(refused)}" if refused else ""
        return Sent(tuple(f"mailto:{address}" for address in accepted), note)


CHANNEL = EmailChannel
