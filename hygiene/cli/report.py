"""``hygiene report nightly|weekly``: render the reports, write them, optionally send them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hygiene.cli.common import configure_logging, load, log_format_option, rules_dir_option
from hygiene.errors import ConfigError

if TYPE_CHECKING:
    from hygiene.report.data import ReportData

# The report locales (``hygiene.report.i18n.LOCALES``, which imports babel); written out
# so ``hygiene --help`` stays light. tests/test_startup.py checks they are the same.
LOCALES = ("en", "pt_BR")


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what} {path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc


def load_report_data(
    from_json: Path, history_json: Path | None, snapshot: Path | None = None
) -> ReportData:
    """A saved scan JSON contract (plus, optionally, the run's parquet snapshot for
    per-repository sizes and image ages), or a saved :class:`ReportData` (``schema``)."""
    from hygiene.inventory import read_snapshot
    from hygiene.report.data import HistoryRun, ReportData, build_report_data

    data = read_json(from_json, "--from-json")
    if not isinstance(data, dict):
        raise ConfigError(f"--from-json {from_json}: expected a JSON object")
    history: list[HistoryRun] = []
    if history_json is not None:
        entries = read_json(history_json, "--history-json")
        if not isinstance(entries, list):
            raise ConfigError(f"--history-json {history_json}: expected a JSON list of runs")
        try:
            history = [HistoryRun.from_json(e) for e in entries]
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"--history-json {history_json}: malformed run: {exc}") from exc
    if "schema" in data:
        report = ReportData.from_json(data)
        if history:
            report.history = history
        return report
    inventory = read_snapshot(snapshot) if snapshot is not None else None
    return build_report_data(data, inventory=inventory, history=history)


@click.command("report")
@click.argument("kind", type=click.Choice(["nightly", "weekly"]))
@click.option(
    "--namespace",
    "-n",
    "namespaces",
    multiple=True,
    help="Weekly: only this namespace (repeatable). Default: every registered project.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Output directory (default: report.out_dir in default.yaml).",
)
@click.option("--send", is_flag=True, help="Deliver by e-mail/Slack as configured in notify.")
@click.option(
    "--locale",
    type=click.Choice(LOCALES),
    help="Language of every report (default: the project's language; nightly: report.locale).",
)
@click.option(
    "--from-json",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Render from a saved `hygiene scan --format json` (or a saved report-data JSON).",
)
@click.option(
    "--history-json",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Earlier runs (JSON list of {id, finished_at, status, images, bytes, ...}).",
)
@click.option(
    "--snapshot",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The scan's parquet snapshot: adds repository sizes, scores and image ages.",
)
@rules_dir_option
@log_format_option
def report_command(
    kind: str,
    namespaces: tuple[str, ...],
    out_dir: Path | None,
    send: bool,
    locale: str | None,
    from_json: Path | None,
    history_json: Path | None,
    snapshot: Path | None,
    rules_dir: Path,
    log_format: str,
) -> None:
    """Render the nightly admin report or the weekly owner reports (HTML, text, CSV, JSON).

    Files go to OUT/<date>_<run id>/, and the newest of each report to OUT/latest/. With
    --send they are delivered afterwards; a failed delivery is retried, reported here and
    in the next nightly report, and never removes the files.
    """
    configure_logging(log_format)
    config = load(rules_dir)
    if kind == "nightly" and namespaces:
        raise click.UsageError("--namespace applies to weekly reports only")
    if from_json is not None:
        data = load_report_data(from_json, history_json, snapshot)
    else:
        from hygiene.wiring import live_report_data

        data = live_report_data(config)
    from hygiene.notify import publish

    publication = publish(
        data,
        config,
        "nightly" if kind == "nightly" else "weekly",
        namespaces=list(namespaces) or None,
        out_dir=out_dir,
        locale=locale,
        send=send,
    )
    for report in publication.reports:
        click.echo(f"{report.name}: {report.files['html']}")
    if publication.reports:
        latest = publication.reports[0].files["html"].parent.parent / "latest"
        click.echo(f"latest: {latest}/")
    if send and not publication.deliveries:
        click.echo(
            "nothing sent: no channel is on for these reports (notify in default.yaml)", err=True
        )
    for result in publication.deliveries:
        status = "sent" if result.ok else f"FAILED after {result.attempts} attempts: {result.error}"
        click.echo(f"{result.report} by {result.channel} to {result.target}: {status}", err=True)


def register(group: click.Group) -> None:
    group.add_command(report_command)
