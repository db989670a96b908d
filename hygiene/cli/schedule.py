"""``hygiene schedule``: the scheduler daemon."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from hygiene.cli.common import configure_logging, load, log_format_option, rules_dir_option


@click.command("schedule")
@rules_dir_option
@log_format_option
@click.option(
    "--run-now",
    type=click.Choice(["nightly", "weekly"]),
    multiple=True,
    help="Also run this job once right after start (e.g. after a deploy); repeatable.",
)
@click.option(
    "--next",
    "show_next",
    type=click.IntRange(1, 100),
    default=None,
    help="Print the next N fire times of each job (in schedule.timezone) and exit.",
)
def schedule(
    rules_dir: Path, log_format: str, run_now: tuple[str, ...], show_next: int | None
) -> None:
    """Run the nightly and weekly jobs on the cron schedule in ``schedule`` (default.yaml).

    Jobs are kept in the store's database; a run missed while the daemon was down is made
    up once if it is at most ``schedule.misfire_grace_seconds`` late. SIGTERM or Ctrl-C
    lets the running job finish what it is doing (a scan its current batch of
    repositories, apply the proposal in progress) and record its state, then exits 0.
    The configuration is re-read at every run; a changed schedule needs a restart.
    """
    from hygiene.schedule import next_fire_times, run_daemon

    configure_logging(log_format)
    config = load(rules_dir)
    if show_next:
        settings = config.policy.schedule
        now = datetime.now(ZoneInfo(settings.timezone))
        for kind, times in next_fire_times(settings, now, show_next).items():
            expression = getattr(settings, kind)
            click.echo(f"{kind} ({expression!r}, {settings.timezone}):")
            for moment in times:
                click.echo(f"  {moment.isoformat()}")
        return
    click.get_current_context().exit(run_daemon(config, rules_dir, run_now=run_now))


def register(group: click.Group) -> None:
    group.add_command(schedule)
