"""``hygiene scan``: collect (or load a snapshot), evaluate, print the result."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hygiene.cli.common import ACCOUNT, HTTP_URL, REGION, load, log_format_option, rules_dir_option
from hygiene.errors import ConfigError, ExitCode
from hygiene.logs import configure_logging

if TYPE_CHECKING:
    from hygiene.config import Config
    from hygiene.scan import ScanResult

FAIL_ON = ["error", "warning", "info", "never"]
F = TypeVar("F", bound=Callable[..., Any])


def evaluation_options(run: str) -> Callable[[F], F]:
    """The options of a command that evaluates a run (``hygiene scan``, ``hygiene merge``):
    output format, where ``run``'s snapshot goes (or none), and the exit threshold."""

    def decorate(func: F) -> F:
        func = click.option(
            "--fail-on",
            type=click.Choice(FAIL_ON),
            default="error",
            show_default=True,
            help="Exit 1 when a finding has at least this severity.",
        )(func)
        func = click.option("--no-snapshot", is_flag=True, help="Do not write a snapshot.")(func)
        func = click.option(
            "--snapshot-dir",
            type=click.Path(path_type=Path, file_okay=False),
            default=Path("reports/out/snapshots"),
            show_default=True,
            help=f"Where to write {run} parquet snapshot.",
        )(func)
        return click.option(
            "--format",
            "fmt",
            type=click.Choice(["table", "json"]),
            help="Output format; default table on a terminal, json otherwise.",
        )(func)

    return decorate


def registry_options(func):  # type: ignore[no-untyped-def]
    """--profile / --region / --endpoint-url / --account, shared by every command that
    reads ECR."""
    func = click.option(
        "--account",
        "accounts",
        type=ACCOUNT,
        multiple=True,
        metavar="ID",
        help="Only this account of registry.accounts; repeat for several. Default: all.",
    )(func)
    func = click.option(
        "--endpoint-url",
        type=HTTP_URL,
        envvar="HYGIENE_ENDPOINT_URL",
        help="ECR endpoint (the embedded registry, or a VPC endpoint). "
        "AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_ECR are honoured too.",
    )(func)
    func = click.option(
        "--region",
        "regions",
        type=REGION,
        multiple=True,
        help="Region to scan; repeat for several. Default: registry.regions in the config.",
    )(func)
    func = click.option(
        "--profile",
        envvar="AWS_PROFILE",
        help="AWS profile (SSO profiles: run `aws sso login` first). Env: AWS_PROFILE.",
    )(func)
    return func


def exit_code_for(result: ScanResult, fail_on: str) -> int:
    """Linter-like: 3 incomplete, 1 findings at/above --fail-on, else 0."""
    from hygiene.rules import filter_exit

    if not result.inventory.run.complete:
        return int(ExitCode.INCOMPLETE)
    return ExitCode.FINDINGS if filter_exit(result.findings, fail_on) else ExitCode.OK


def emit(result: ScanResult, fmt: str | None) -> None:
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    if fmt == "json":
        from hygiene.dropbehind import stdout_writer

        with stdout_writer() as stream:  # a file's written pages let go (1.6 GiB at 1M)
            result.write_json(stream)
    else:
        from hygiene.cli.output import print_table

        print_table(result)


@click.command("scan")
@rules_dir_option
@registry_options
@evaluation_options("this run's")
@click.option(
    "--from-snapshot",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Re-evaluate a saved parquet snapshot offline instead of calling ECR.",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a TTY).")
@click.option(
    "--shard",
    envvar="HYGIENE_SHARD",
    metavar="I/N",
    help="Read only shard I of N (from 0) and write it as a part to --parts; nothing is "
    "evaluated (hygiene merge does that once). Needs --run-id and --parts.",
)
@click.option(
    "--run-id",
    envvar="HYGIENE_RUN_ID",
    help="With --shard: the run the part belongs to, the same for all its shards.",
)
@click.option(
    "--parts",
    envvar="HYGIENE_PARTS",
    metavar="DIR|s3://BUCKET/PREFIX",
    help="With --shard: where to write the part (<parts>/<run-id>/part-<I>.parquet).",
)
@log_format_option
def scan_command(
    rules_dir: Path,
    profile: str | None,
    regions: tuple[str, ...],
    endpoint_url: str | None,
    accounts: tuple[str, ...],
    fmt: str | None,
    from_snapshot: Path | None,
    snapshot_dir: Path,
    no_snapshot: bool,
    fail_on: str,
    progress: bool | None,
    shard: str | None,
    run_id: str | None,
    parts: str | None,
    log_format: str,
) -> int:
    """Scan the registry (read-only) and report findings.

    With --shard I/N, read one shard's share of the repositories and write it as a part
    of a sharded run (docs/accounts.md); `hygiene merge` evaluates the parts together.

    Exit codes: 0 nothing at or above --fail-on (with --shard: the part is complete),
    1 findings, 2 usage or config error, 3 incomplete scan, 6 registry unreachable or
    no credentials.
    """
    from hygiene.cli.ending import ends_with_process, keep_until_end, request_fast_end
    from hygiene.gcpause import paused_gc

    # The collector is paused from here, the start-up included: the imports and the
    # configuration's models make objects that live as long as the process, which its
    # collections would only walk (hygiene.gcpause). A shard's read runs with it on.
    with paused_gc(resume=shard is not None or not ends_with_process()):
        import threading

        from hygiene.inventory import read_snapshot
        from hygiene.scan import collect, evaluate, evaluate_and_save, open_registry
        from hygiene.scanthreads import warm_up

        configure_logging(log_format)
        config = load(rules_dir)
        now = datetime.now(UTC)
        if shard is None:
            if run_id is not None or parts is not None:
                raise ConfigError("--run-id and --parts go with --shard I/N")
            # a scan is read-only: once its document is out, its process has nothing to
            # close
            request_fast_end()
            if from_snapshot is not None:
                inventory = read_snapshot(from_snapshot)
            else:
                handle = open_registry(
                    config,
                    profile=profile,
                    regions=regions,
                    endpoint_url=endpoint_url,
                    accounts=accounts,
                )
                reading = threading.Event()  # the imports wait for the first read (warm_up)
                warm_up(after=reading)
                inventory = collect(handle, config, now=now, progress=progress, reading=reading)
            if from_snapshot is None and not no_snapshot:
                result = evaluate_and_save(inventory, config, now, snapshot_dir)
            else:
                result = evaluate(inventory, config, now)
            emit(result, fmt)
            keep_until_end(result)  # its objects go with the process (hygiene.cli.ending)
            return exit_code_for(result, fail_on)
    return scan_shard(
        config, shard, run_id, parts, profile, regions, endpoint_url, accounts, progress, now
    )


def scan_shard(
    config: Config,
    spec: str,
    run_id: str | None,
    parts: str | None,
    profile: str | None,
    regions: tuple[str, ...],
    endpoint_url: str | None,
    accounts: tuple[str, ...],
    progress: bool | None,
    now: datetime,
) -> int:
    """``scan --shard``: collect one shard, write its part, print what it read."""
    from hygiene.collect.shards import Shard, check_run_id, part_store, write_part
    from hygiene.scan import collect, open_registry, parts_client

    shard = Shard.parse(spec)
    if run_id is None or parts is None:
        raise ConfigError("--shard needs --run-id (the same for every shard) and --parts")
    check_run_id(run_id)
    store = part_store(parts, lambda: parts_client(config))
    handle = open_registry(
        config, profile=profile, regions=regions, endpoint_url=endpoint_url, accounts=accounts
    )
    inventory = collect(handle, config, now=now, progress=progress, shard=shard)
    where = write_part(store, inventory, shard, run_id, inventory.run.scopes)
    click.echo(
        json.dumps(
            {
                "shard": {"index": shard.index, "count": shard.count, "run_id": run_id},
                "part": where,
                "run": inventory.run.to_json(),
                "inventory": inventory.summary(),
            },
            indent=2,
        )
    )
    return int(ExitCode.OK if inventory.run.complete else ExitCode.INCOMPLETE)


def register(group: click.Group) -> None:
    group.add_command(scan_command)
