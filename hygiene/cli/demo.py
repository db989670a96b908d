"""``hygiene demo``: the whole job on the embedded, lab-shaped registry.

Starts moto's server on 127.0.0.1 (ephemeral port), seeds it like the lab's registry,
then runs the nightly pipeline through the same code path as production (the only
difference is the endpoint URL and dummy credentials).

The command's library is the separate ``hygiene_demo`` package, and moto comes with the
optional ``demo`` extra: both are imported only when the command runs, so a production
install (no extras) has the command, its help, and a one-line message on how to get it.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from hygiene.cli.common import load, log_format_option, rules_dir_option
from hygiene.errors import HygieneError
from hygiene.logs import configure_logging

INSTALL_HINT = "python -m pip install 'registry-hygiene[demo]'"


def require_demo_extra() -> None:
    """Fail with one line (exit 2) when moto's server, from the ``demo`` extra, is missing."""
    try:
        import moto.server  # noqa: F401
    except ImportError as missing:
        raise HygieneError(
            f"hygiene demo needs the optional 'demo' extra ({missing.name or 'moto'} is "
            f"not installed); install it with: {INSTALL_HINT}"
        ) from None


@click.command("demo")
@rules_dir_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Output directory for reports and snapshots (default: report.out_dir).",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    help="Store URL for the demo run (default: a fresh demo.db in the output directory, "
    "replacing the previous run's).",
)
@click.option(
    "--keep-running",
    is_flag=True,
    help="Leave the embedded registry up (Ctrl-C to stop) so you can point the AWS CLI "
    "or other hygiene commands at it.",
)
@click.option("--seed", "rng_seed", default=7, show_default=True, help="Random seed of the data.")
@click.option(
    "--grace-days",
    type=click.IntRange(0, 365),
    default=None,
    help="Grace period of every proposal of this run (default: apply.grace_days). "
    "0 lets you approve and apply right away against --keep-running.",
)
@click.option("--verbose", "-v", is_flag=True, help="Log every step (default: warnings only).")
@log_format_option
def demo_command(
    rules_dir: Path,
    out: Path | None,
    store_url: str | None,
    keep_running: bool,
    rng_seed: int,
    grace_days: int | None,
    verbose: bool,
    log_format: str,
) -> int:
    """Run the nightly and weekly jobs on the embedded registry and write the reports.

    The registry is seeded like the lab's (40 repositories, ~1,500 images); everything
    after seeding is the production code path. Reports, exports, the snapshot, the
    demo's store (demo.db, fresh for each run unless --store is given) and its
    configuration (rules/: yours, with you as an admin) go to --out; the newest reports
    are also in --out/latest/. With --keep-running the export lines include
    HYGIENE_DEMO_TOKEN: the secret that makes `hygiene approve` in that shell act as
    os:<you>, and only against this demo's registry.
    """
    require_demo_extra()
    from hygiene.cli.output import print_table
    from hygiene_demo.registry import EmbeddedRegistry
    from hygiene_demo.run import demo_rules, run_demo

    configure_logging(log_format, logging.INFO if verbose else logging.WARNING)
    given = load(rules_dir)
    out_dir = out or given.policy.report.out_dir
    # the demo's deployed configuration: yours, with you (this uid) as an admin, the
    # embedded registry's account and --grace-days; written down for the second shell
    demo_dir = demo_rules(rules_dir, out_dir / "rules", grace_days=grace_days)
    config = load(demo_dir)
    now = datetime.now(UTC)
    account = config.policy.registry.account or "123456789012"
    with EmbeddedRegistry(account, prove=True) as registry:
        outcome = run_demo(
            registry, config, now=now, out_dir=out_dir, store_url=store_url, rng_seed=rng_seed
        )
        click.echo(f"seeded: {outcome.seeded}")
        for job in outcome.jobs:
            click.echo(job.summary())
        print_table(outcome.result)
        for label, path in outcome.outputs:
            click.echo(f"{label}: {path}")
        click.echo(f"store: {outcome.store_url}")
        if keep_running:
            click.echo(
                "\n"
                + keep_running_hints(
                    registry.endpoint_url, outcome.store_url, demo_dir, registry.demo_token
                )
            )
            os.environ["AWS_ENDPOINT_URL"] = registry.endpoint_url
            stop_on_signals()
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return max((job.exit_code for job in outcome.jobs), default=0)


def stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and ``kill`` (SIGTERM) stop a demo kept running, whatever the
    process inherited: a process started in the background of a script inherits SIGINT
    ignored, and Python then leaves it so; the demo would run until killed."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def keep_running_hints(
    endpoint_url: str, store_url: str, rules_dir: Path, token: str | None
) -> str:
    """What to type in another shell to use the embedded registry and the demo's store:
    every line works as printed (tests/test_demo.py runs them)."""
    from hygiene_demo.registry import DUMMY_CREDENTIALS, REGION

    return (
        "embedded registry is up. In another shell:\n"
        f"  export AWS_ENDPOINT_URL={endpoint_url}\n"
        f"  export AWS_ACCESS_KEY_ID={DUMMY_CREDENTIALS['aws_access_key_id']} "
        f"AWS_SECRET_ACCESS_KEY={DUMMY_CREDENTIALS['aws_secret_access_key']}\n"
        f"  export AWS_DEFAULT_REGION={REGION}\n"
        f"  export HYGIENE_STORE_URL={store_url}\n"
        f"  export HYGIENE_RULES_DIR={rules_dir.resolve()}\n"
        + (f"  export HYGIENE_DEMO_TOKEN={token}\n" if token else "")
        + "  hygiene proposals --namespace ml       # or: aws ecr describe-repositories\n"
        "Ctrl-C to stop."
    )


def register(group: click.Group) -> None:
    group.add_command(demo_command)
