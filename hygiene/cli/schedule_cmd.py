"""``hygiene schedule``: the scheduler daemon."""

from __future__ import annotations

from pathlib import Path

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
def schedule(rules_dir: Path, log_format: str, run_now: tuple[str, ...]) -> None:
    """Run the nightly and weekly jobs on the cron schedule in ``schedule`` (default.yaml).

    Jobs are kept in the store's database; a run missed while the daemon was down is made
    up once if it is at most ``schedule.misfire_grace_seconds`` late. SIGTERM or Ctrl-C
    lets the running job finish its current batch and record its state, then exits 0.
    The configuration is re-read at every run; a changed schedule needs a restart.
    """
    from hygiene.schedule import run_daemon

    configure_logging(log_format)
    config = load(rules_dir)
    click.get_current_context().exit(run_daemon(config, rules_dir, run_now=run_now))


def register(group: click.Group) -> None:
    group.add_command(schedule)
