"""Deliver rendered reports on every configured channel, with retries; never raise into
the scan.

The channels are the modules of :mod:`hygiene.notify.channels` (e-mail, Slack, chat
webhooks; see :mod:`hygiene.notify.channels.base` for the protocol). For each report this
module works out its :class:`Audience` once, asks each channel where the report goes
(``targets``) and sends it there (``send``), retrying failures. Every attempt ends in a
:class:`DeliveryResult` (ok or not, attempts, error text without secrets, and who or
what the delivery reached). The caller records them in the store; failed ones come back
in the next nightly report as :class:`~hygiene.report.data.DeliveryFailure`. The HTML is
already on disk (:func:`hygiene.report.write_report`) before anything is sent.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hygiene.config import Config
from hygiene.errors import ConfigError
from hygiene.notify.channels import Audience, Channel, Sent, Target, channel_types, people_in
from hygiene.report.data import DeliveryFailure, ReportData
from hygiene.report.render import RenderedReport, ReportKind, generate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryResult:
    """One delivery of one report on one channel to one target.

    ``reached`` says who or what accepted it (see :class:`~.channels.base.Sent`):
    ``mailto:<address>``, ``slack-dm:<address>``, ``slack:<channel>``,
    ``webhook:<format>:<where>``; :attr:`people` lists the people among them.
    """

    report: str  # "nightly" | "weekly-<namespace>"
    channel: str  # email | slack | webhook | … (the channel's name)
    target: str  # addresses, channel or webhook
    ok: bool
    attempts: int
    error: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    reached: tuple[str, ...] = ()
    note: str = ""

    @property
    def people(self) -> list[str]:
        """E-mail addresses of the people this delivery reached (mail, direct message)."""
        return people_in(self.reached)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat(), "reached": list(self.reached)}

    def to_failure(self) -> DeliveryFailure:
        return DeliveryFailure(self.channel, self.target, self.report, self.error or "", self.at)


def utc_now() -> datetime:
    """The wall clock, in UTC: the default ``clock`` of the deliveries."""
    return datetime.now(UTC)


def attempt(
    action: Callable[[], Sent],
    *,
    report: str,
    channel: str,
    target: str,
    retries: int,
    backoff: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = utc_now,
) -> DeliveryResult:
    """Run ``action`` up to ``1 + retries`` times (backoff doubling); catch everything.

    The result's ``at`` is read from ``clock`` when the last attempt ended: for a
    delivery that went through, right after the channel accepted it (a grace period
    starts then, not when the job started: :meth:`hygiene.wiring.Wired.notify`)."""
    error = ""
    for number in range(1, retries + 2):
        try:
            sent = action()
        except ConfigError as exc:  # no recipient, no channel: retrying cannot help
            log.warning("cannot deliver %s by %s: %s", report, channel, exc.message)
            return DeliveryResult(
                report, channel, target, False, number, exc.message[:500], at=clock()
            )
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
        delivered_at = clock()
        log.info("delivered %s by %s to %s", report, channel, target)
        return DeliveryResult(
            report,
            channel,
            target,
            True,
            number,
            at=delivered_at,
            reached=tuple(sent.reached),
            note=sent.note,
        )
    return DeliveryResult(report, channel, target, False, retries + 1, error[:500], at=clock())


def audience(report: RenderedReport, config: Config) -> Audience:
    """Who ``report`` is for: the admins (nightly), or the project's owners (weekly; the
    admins stand in for an unregistered namespace), copying members when configured."""
    notify = config.policy.notify
    if report.kind == "nightly":
        return Audience("nightly", None, tuple(notify.admin_emails))
    project = config.projects.projects.get(report.namespace or "")
    owners = tuple(project.owners) if project else tuple(notify.admin_emails)
    return Audience(
        kind="weekly",
        namespace=report.namespace,
        to=owners,
        cc=tuple(project.members) if project and notify.weekly_cc_members else (),
        reply_to=tuple(notify.admin_emails),
        project=project,
    )


def build_channels(
    config: Config, environ: Mapping[str, str] | None = None
) -> tuple[list[Channel], list[tuple[str, str]]]:
    """Every configured channel, and (name, why) for those that could not be built."""
    env = os.environ if environ is None else environ
    built: list[Channel] = []
    broken: list[tuple[str, str]] = []
    for kind in channel_types():
        try:
            channel = kind.from_settings(config.policy.notify, env)
        except Exception as exc:
            broken.append((kind.name, getattr(exc, "message", None) or str(exc)))
            continue
        if channel is not None:
            built.append(channel)
    return built, broken


def deliver_report(
    report: RenderedReport,
    config: Config,
    channels: Sequence[Channel],
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = utc_now,
) -> list[DeliveryResult]:
    """Send ``report`` on every channel to every target. One result per delivery, each
    with the time ``clock`` said when it ended (:func:`attempt`)."""
    notify = config.policy.notify
    who = audience(report, config)
    results: list[DeliveryResult] = []
    for channel in channels:
        for target in channel.targets(report, who):
            results.append(
                attempt(
                    _sender(channel, report, target),
                    report=report.name,
                    channel=channel.name,
                    target=target.address,
                    retries=notify.retries,
                    backoff=notify.retry_backoff_seconds,
                    sleep=sleep,
                    clock=clock,
                )
            )
    return results


def _sender(channel: Channel, report: RenderedReport, target: Target) -> Callable[[], Sent]:
    return lambda: channel.send(report, target)


def deliver_all(
    reports: list[RenderedReport],
    config: Config,
    *,
    environ: Mapping[str, str] | None = None,
    channels: Sequence[Channel] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = utc_now,
) -> list[DeliveryResult]:
    """Deliver every report; channels are built from config unless passed in. A channel
    that cannot even be built (a missing token) yields a failed result per report.
    ``clock`` stamps each result (:func:`attempt`)."""
    results: list[DeliveryResult] = []
    if channels is None:
        built, broken = build_channels(config, environ)
        for name, why in broken:
            log.warning("cannot deliver by %s: %s", name, why)
            results += [
                DeliveryResult(r.name, name, "-", False, 0, why[:500], at=clock()) for r in reports
            ]
        channels = built
    for report in reports:
        results += deliver_report(report, config, channels, sleep=sleep, clock=clock)
    return results


@dataclass
class Publication:
    """What :func:`publish` did: the reports on disk and every delivery's result."""

    reports: list[RenderedReport]
    deliveries: list[DeliveryResult]

    @property
    def failed(self) -> list[DeliveryResult]:
        return [d for d in self.deliveries if not d.ok]


DELIVERIES_FILE = "deliveries.json"


def record_deliveries(directory: Path, deliveries: Sequence[DeliveryResult]) -> Path:
    """Append ``deliveries`` to ``<directory>/deliveries.json`` (a JSON list)."""
    record = directory / DELIVERIES_FILE
    previous = json.loads(record.read_text()) if record.is_file() else []
    record.write_text(json.dumps(previous + [d.to_json() for d in deliveries], indent=2) + "\n")
    return record


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
    channels: Sequence[Channel] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Publication:
    """Render and write the reports, then (``send``) deliver them; what ``hygiene report
    --send`` does. Files are on disk before any delivery starts; delivery results are
    also written to ``deliveries.json`` beside them. Only rendering errors (bad data, a
    broken template) raise; delivery problems are results."""
    reports = generate(data, config, kind, namespaces=namespaces, out_dir=out_dir, locale=locale)
    deliveries: list[DeliveryResult] = []
    if send:
        deliveries = deliver_all(reports, config, environ=environ, channels=channels, sleep=sleep)
        if reports:
            record_deliveries(reports[0].files["html"].parent, deliveries)
    return Publication(reports, deliveries)
