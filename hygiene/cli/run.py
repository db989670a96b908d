"""``hygiene run nightly|weekly``: one job, once (the run history, ``hygiene runs``, is in
:mod:`hygiene.cli.proposals`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hygiene.cli.common import configure_logging, load, log_format_option, rules_dir_option
from hygiene.cli.merge import parts_options, with_parts
from hygiene.errors import ConfigError

if TYPE_CHECKING:
    from hygiene.config import Config
    from hygiene.jobtypes import JobDeps, JobResult


@click.group("run")
def run_group() -> None:
    """Run one job now: for plain cron, systemd timers and Kubernetes CronJobs.

    Only one run at a time: if another run (the daemon's, cron's, a person's, or a hand-run
    `hygiene apply`) holds the registry lock, the command exits with code 5 and changes
    nothing. Each run first pins its configuration's admins and owners in the store (the
    deployed ones that approvals are checked against). SIGTERM/SIGINT let the scan finish
    its current batch of repositories, or apply the proposal in progress, then record the
    run as incomplete and exit with code 3.

    \b
    Exit codes: 0 ok, 3 incomplete (scan or stop), 5 locked, 6 registry unreachable,
    7 apply finished with failed actions, 8 degraded (a report reached no one),
    2 configuration error, 1 other failure.
    """


def _finish(result: JobResult) -> None:
    click.echo(result.summary())
    for error in result.errors:
        click.echo(f"  {error}", err=True)
    click.get_current_context().exit(result.exit_code)


@contextmanager
def _one_job(deps: JobDeps) -> Iterator[threading.Event]:
    """Run one job in this command: stopped by SIGTERM/SIGINT (the event), its store
    closed when it ends, whatever happens. When the process ends with the command (the
    console script, not a test calling it in-process), the job's objects are left to
    the operating system (hygiene.cli.ending): the garbage collector stays paused after
    the job (its first pass would walk every object the job made, about 1.4 s at a
    million images, only to free nothing) and the process ends without freeing them one
    by one. Everything the job writes is closed by then: the store here, its reports,
    snapshot and deliveries inside the job."""
    from hygiene.cli.ending import ends_with_process, keep_until_end, request_fast_end
    from hygiene.gcpause import paused_gc
    from hygiene.schedule import stop_on_signals

    try:
        with stop_on_signals() as stop, paused_gc(resume=not ends_with_process()):
            yield stop
    finally:
        deps.store.close()
    keep_until_end(deps)
    request_fast_end()


def parts_option(func: Any) -> Any:
    func = parts_options(func)
    return click.option(
        "--parts",
        "location",
        envvar="HYGIENE_PARTS",
        metavar="DIR|s3://BUCKET/PREFIX",
        help="Merge the parts of a sharded scan from there instead of scanning (docs/accounts.md).",
    )(func)


def _config(
    rules_dir: Path,
    location: str | None,
    run_id: str | None,
    wait: int | None,
    max_age: int | None,
) -> Config:
    config = load(rules_dir)
    if location is None:
        if run_id is not None or wait is not None or max_age is not None:
            raise ConfigError("--run-id, --wait and --max-age go with --parts")
        return config
    return with_parts(config, location, run_id, wait, max_age)  # type: ignore[no-any-return]


@run_group.command("nightly")
@rules_dir_option
@parts_option
@log_format_option
def nightly(
    rules_dir: Path,
    location: str | None,
    run_id: str | None,
    wait: int | None,
    max_age: int | None,
    log_format: str,
) -> None:
    """Collect → evaluate → plan → store → apply (if enabled) → admin report → notify.

    Safe fixes are applied only with ``apply.auto_safe: true``, approved proposals past
    their grace date only with ``apply.apply_approved: true``, and never from an account
    the scan could not read completely (the admins are alerted instead). With --parts,
    collect is the merge of a sharded scan's parts.
    """
    from hygiene.jobs import load_deps, run_nightly

    configure_logging(log_format)
    config = _config(rules_dir, location, run_id, wait, max_age)
    deps = load_deps(config)
    with _one_job(deps) as stop:
        result = run_nightly(deps, config, deps.clock(), stop)
    _finish(result)


@run_group.command("weekly")
@rules_dir_option
@parts_option
@log_format_option
@click.option("--namespace", help="Only this namespace's owners (default: every project).")
def weekly(
    rules_dir: Path,
    location: str | None,
    run_id: str | None,
    wait: int | None,
    max_age: int | None,
    log_format: str,
    namespace: str | None,
) -> None:
    """Scan (or with --parts, merge a sharded scan), then send each project's owners the
    report about their namespace."""
    from hygiene.jobs import load_deps, run_weekly

    configure_logging(log_format)
    config = _config(rules_dir, location, run_id, wait, max_age)
    deps = load_deps(config)
    with _one_job(deps) as stop:
        result = run_weekly(deps, config, deps.clock(), namespace, stop)
    _finish(result)


def register(group: click.Group) -> None:
    group.add_command(run_group)
