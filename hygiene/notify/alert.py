"""Alerts: tell the admins that a run was not ok (failed, incomplete, degraded).

The alert goes wherever the nightly admin report goes, on *every* configured channel, so
a channel that fails (the reason a run is degraded, often) does not keep the others from
carrying it. It is also written to ``<out_dir>/alerts/<run id>.html`` first.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from hygiene.config import Config
from hygiene.notify.deliver import DeliveryResult, deliver_all
from hygiene.report.render import RenderedReport


def send_alert(
    config: Config,
    *,
    run_id: str,
    subject: str,
    text: str,
    out_dir: Path | None = None,
    send: bool = True,
) -> list[DeliveryResult]:
    """Write the alert to disk, then (``send``) deliver it to the admins."""
    report = RenderedReport(
        kind="nightly",
        namespace=None,
        locale=config.policy.report.locale,
        subject=subject,
        html=f"<html><body><h1>{escape(subject)}</h1><pre>{escape(text)}</pre></body></html>",
        text=text,
    )
    directory = (out_dir or config.policy.report.out_dir) / "alerts"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{run_id}.html"
    path.write_text(report.html, encoding="utf-8")
    report.files["html"] = path
    return deliver_all([report], config) if send else []
