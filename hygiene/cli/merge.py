"""``hygiene merge``: the parts of a sharded scan, merged and evaluated once.

The shards are ``hygiene scan --shard I/N --run-id ID --parts LOCATION`` (see
docs/accounts.md, "Sharded scans"); the nightly and weekly jobs merge by themselves with
``hygiene run nightly|weekly --parts LOCATION``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from hygiene.cli.common import configure_logging, load, log_format_option, rules_dir_option
from hygiene.cli.scan import emit, evaluation_options, exit_code_for


def parts_options(func: Any) -> Any:
    """--parts / --run-id / --wait / --max-age, shared by merge and run nightly|weekly."""
    func = click.option(
        "--max-age",
        type=click.IntRange(min=1),
        default=None,
        metavar="SECONDS",
        help="Without --run-id: the newest run whose first part arrived at most this long "
        "ago (default 43200, 12 hours).",
    )(func)
    func = click.option(
        "--wait",
        type=click.IntRange(min=0),
        default=None,
        metavar="SECONDS",
        help="Wait up to this long for missing parts (default 0: merge what is there).",
    )(func)
    func = click.option(
        "--run-id",
        envvar="HYGIENE_RUN_ID",
        help="The sharded run to merge (default: the newest, see --max-age).",
    )(func)
    return func


@click.command("merge")
@rules_dir_option
@click.option(
    "--parts",
    "location",
    envvar="HYGIENE_PARTS",
    required=True,
    help="Where the shards wrote their parts: a directory or s3://BUCKET/PREFIX "
    "(env HYGIENE_PARTS).",
)
@parts_options
@evaluation_options("the merged run's")
@log_format_option
def merge_command(
    rules_dir: Path,
    location: str,
    run_id: str | None,
    wait: int | None,
    max_age: int | None,
    fmt: str | None,
    snapshot_dir: Path,
    no_snapshot: bool,
    fail_on: str,
    log_format: str,
) -> int:
    """Merge the parts of a sharded scan and evaluate the whole registry once.

    The run is complete only when every shard's part arrived (complete itself, and
    reading the same accounts and regions as the others); a missing part makes it
    incomplete (exit 3).

    Exit codes: 0 nothing at or above --fail-on, 1 findings, 2 usage or config error,
    3 incomplete (a part missing, or a part incomplete), 6 the parts cannot be read.
    """
    from hygiene.cli.ending import ends_with_process, request_fast_end
    from hygiene.gcpause import paused_gc
    from hygiene.scan import (
        add_in_use,
        evaluate,
        evaluate_and_save,
        merge_parts_of,
        open_registry,
    )

    configure_logging(log_format)
    config = load(rules_dir)
    config = with_parts(config, location, run_id, wait, max_age)
    now = datetime.now(UTC)
    # read-only, like `hygiene scan`: once the document is out, nothing is left to close
    request_fast_end()
    with paused_gc(resume=not ends_with_process()):  # see hygiene.gcpause
        merged = merge_parts_of(config)
        # the workloads are asked once for the whole run, here (shards do not)
        add_in_use(merged.inventory, open_registry(config).discover(config))
        if no_snapshot:
            result = evaluate(merged.inventory, config, now)
        else:
            result = evaluate_and_save(merged.inventory, config, now, snapshot_dir)
        emit(result, fmt)
        return exit_code_for(result, fail_on)


def with_parts(
    config: Any, location: str, run_id: str | None, wait: int | None, max_age: int | None
) -> Any:
    """``config`` with ``collect.parts`` set from the command line."""
    from hygiene.collect.shards import check_run_id
    from hygiene.config import PartsSettings

    current = config.policy.collect.parts
    values: dict[str, Any] = current.model_dump() if current is not None else {}
    values["location"] = location
    if run_id is not None:
        values["run_id"] = check_run_id(run_id)
    if wait is not None:
        values["wait_seconds"] = wait
    if max_age is not None:
        values["max_age_seconds"] = max_age
    collect = config.policy.collect.model_copy(update={"parts": PartsSettings(**values)})
    policy = config.policy.model_copy(update={"collect": collect})
    return config.model_copy(update={"policy": policy})


def register(group: click.Group) -> None:
    group.add_command(merge_command)
