"""Deliver rendered reports to their audience, with retries; never raise into the scan.

Every attempt ends in a :class:`DeliveryResult` (ok or not, attempts, error text
without secrets). The caller records them in the store; failed ones come back in the
next nightly report as :class:`~hygiene.report.data.DeliveryFailure`. The HTML is
already on disk (:func:`hygiene.report.write_report`) before anything is sent.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hygiene.config import Config
from hygiene.errors import ConfigError
from hygiene.notify.email import EmailTransport, SesTransport, SmtpTransport, build_email
from hygiene.notify.slack import SlackNotifier
from hygiene.report.data import DeliveryFailure, ReportData
from hygiene.report.render import RenderedReport, ReportKind, generate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryResult:
    report: str  # "nightly" | "weekly-<namespace>"
    channel: str  # email | ses | slack | slack-webhook
    target: str  # addresses, channel or "webhook"
    ok: bool
    attempts: int
    error: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}

    def to_failure(self) -> DeliveryFailure:
        return DeliveryFailure(self.channel, self.target, self.report, self.error or "", self.at)


def attempt(
    action: Callable[[], object],
    *,
    report: str,
    channel: str,
    target: str,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryResult:
    """Run ``action`` up to ``1 + retries`` times (backoff doubling); catch everything."""
    error = ""
    for number in range(1, retries + 2):
        try:
            action()
        except ConfigError as exc:  # no recipient, no channel: retrying cannot help
            log.warning("cannot deliver %s by %s: %s", report, channel, exc.message)
            return DeliveryResult(report, channel, target, False, number, exc.message[:500])
        except Exception as exc:  # a failed delivery must never fail the scan
            error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "delivery of %s by %s to %s failed (attempt %d): %s",
                report,
                channel,
                target,
                number,
                error,
            )
            if number <= retries:
                sleep(backoff * 2 ** (number - 1))
            continue
        log.info("delivered %s by %s to %s", report, channel, target)
        return DeliveryResult(report, channel, target, True, number)
    return DeliveryResult(report, channel, target, False, retries + 1, error[:500])


def email_transport(
    config: Config, environ: Mapping[str, str] | None = None, ses_client: Any = None
) -> EmailTransport:
    """The configured e-mail transport (SES needs its boto3 client passed in)."""
    notify = config.policy.notify
    if notify.email_transport == "ses":
        if ses_client is None:
            import boto3

            ses_client = boto3.client("ses")
        return SesTransport(ses_client)
    return SmtpTransport.from_settings(notify.smtp, environ)


def audience(report: RenderedReport, config: Config) -> dict[str, Any]:
    """Who gets ``report``: e-mail to/cc/reply-to and Slack channel or DM e-mails."""
    notify = config.policy.notify
    if report.kind == "nightly":
        return {
            "to": list(notify.admin_emails),
            "cc": [],
            "reply_to": [],
            "channel": notify.slack_settings.admin_channel,
            "dm": [],
        }
    project = config.projects.projects.get(report.namespace or "")
    owners = list(project.owners) if project else list(notify.admin_emails)
    channel = project.slack_channel if project else None
    dm = owners if channel is None and notify.slack_settings.dm_owners_without_channel else []
    return {
        "to": owners,
        "cc": list(project.members) if project and notify.weekly_cc_members else [],
        "reply_to": list(notify.admin_emails),
        "channel": channel,
        "dm": dm,
    }


def deliver_report(
    report: RenderedReport,
    config: Config,
    *,
    email: EmailTransport | None = None,
    slack: SlackNotifier | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[DeliveryResult]:
    """Send ``report`` by every configured channel. Returns one result per delivery."""
    notify = config.policy.notify
    who = audience(report, config)
    send = functools.partial(
        attempt,
        report=report.name,
        retries=notify.retries,
        backoff=notify.retry_backoff_seconds,
        sleep=sleep,
    )
    results: list[DeliveryResult] = []
    if notify.email and email is not None:
        target = ", ".join(who["to"] + who["cc"]) or "(nobody)"

        def send_mail() -> None:
            message = build_email(
                report,
                sender=notify.smtp.sender,
                to=who["to"],
                cc=who["cc"],
                reply_to=who["reply_to"],
            )
            email.send(message)

        results.append(send(send_mail, channel=email.name, target=target))
    if notify.slack and slack is not None:
        notifier = slack
        if notifier.client is None:
            results.append(
                send(lambda: notifier.send(report), channel=notifier.mode, target="webhook")
            )
        elif who["channel"]:
            channel = str(who["channel"])
            results.append(
                send(
                    lambda: notifier.send(report, channel=channel),
                    channel=notifier.mode,
                    target=channel,
                )
            )
        else:
            for owner in who["dm"]:

                def send_dm(owner: str = owner) -> None:
                    notifier.send(report, email=owner)

                results.append(send(send_dm, channel=notifier.mode, target=f"dm:{owner}"))
    return results


def deliver_all(
    reports: list[RenderedReport],
    config: Config,
    *,
    environ: Mapping[str, str] | None = None,
    ses_client: Any = None,
    email: EmailTransport | None = None,
    slack: SlackNotifier | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[DeliveryResult]:
    """Deliver every report; transports are built from config unless passed in. A
    transport that cannot even be built (missing credentials) yields failed results."""
    notify = config.policy.notify
    results: list[DeliveryResult] = []
    if notify.email and email is None:
        try:
            email = email_transport(config, environ, ses_client)
        except Exception as exc:
            results += [_unbuilt(r, notify.email_transport, exc) for r in reports]
    if notify.slack and slack is None:
        try:
            slack = SlackNotifier.from_settings(notify.slack_settings, environ)
        except Exception as exc:
            results += [_unbuilt(r, "slack", exc) for r in reports]
    for report in reports:
        results += deliver_report(report, config, email=email, slack=slack, sleep=sleep)
    return results


def _unbuilt(report: RenderedReport, channel: str, exc: Exception) -> DeliveryResult:
    message = getattr(exc, "message", None) or str(exc)
    log.warning("cannot deliver %s by %s: %s", report.name, channel, message)
    return DeliveryResult(report.name, channel, "-", False, 0, message)


@dataclass
class Publication:
    """What :func:`publish` did: the reports on disk and every delivery's result."""

    reports: list[RenderedReport]
    deliveries: list[DeliveryResult]

    @property
    def failed(self) -> list[DeliveryResult]:
        return [d for d in self.deliveries if not d.ok]


def publish(
    data: ReportData,
    config: Config,
    kind: ReportKind,
    *,
    namespaces: list[str] | None = None,
    out_dir: Path | None = None,
    locale: str | None = None,
    send: bool = True,
    environ: Mapping[str, str] | None = None,
    ses_client: Any = None,
    email: EmailTransport | None = None,
    slack: SlackNotifier | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Publication:
    """Render and write the reports, then (``send``) deliver them; the one call the
    nightly/weekly jobs make. Files are on disk before any delivery starts; delivery
    results are also written to ``deliveries.json`` beside them. Only rendering errors
    (bad data, a broken template) raise; delivery problems are results."""
    reports = generate(data, config, kind, namespaces=namespaces, out_dir=out_dir, locale=locale)
    deliveries: list[DeliveryResult] = []
    if send:
        deliveries = deliver_all(
            reports,
            config,
            environ=environ,
            ses_client=ses_client,
            email=email,
            slack=slack,
            sleep=sleep,
        )
        if reports:
            record = reports[0].files["html"].parent / "deliveries.json"
            previous = json.loads(record.read_text()) if record.is_file() else []
            record.write_text(
                json.dumps(previous + [d.to_json() for d in deliveries], indent=2) + "\n"
            )
    return Publication(reports, deliveries)
