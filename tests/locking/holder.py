"""A real run that holds the registry lock until told to go on (for the lock tests).

``python -m tests.locking.holder nightly|weekly|apply ARGS…`` runs the real command
(``hygiene run nightly|weekly`` or ``hygiene apply``) in this process, with one hook: its
first registry read (the scan's collect, or apply's first ECR call) writes
``$HOLD_READY`` and waits until ``$HOLD_RELEASE`` exists. Everything else (the CLI, the
lock, the run record, the registry calls) is the production code.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from hygiene.config import Config
from hygiene.jobtypes import JobDeps


def hold() -> None:
    """Say "I hold the lock" and wait to be released (at most 120 s)."""
    Path(os.environ["HOLD_READY"]).write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while not Path(os.environ["HOLD_RELEASE"]).exists():
        if time.monotonic() > deadline:
            raise SystemExit("holder: never released")
        time.sleep(0.05)


def blocking_deps(config: Config) -> JobDeps:
    """``HYGIENE_JOB_DEPS`` factory: the production dependencies, collect held first."""
    from hygiene.wiring import build_job_deps

    deps = build_job_deps(config, send=False)
    collect = deps.collect

    def held_collect(config: Config, stop: Any) -> Any:
        hold()
        return collect(config, stop)

    deps.collect = held_collect
    return deps


def main(argv: list[str]) -> int:
    from hygiene.cli import cli
    from hygiene.cli import proposals as proposals_cli
    from hygiene.cli.common import run_cli

    kind, rest = argv[0], argv[1:]
    if kind == "apply":
        real = proposals_cli.CLIENTS
        held: list[bool] = []

        def before_call(**_: Any) -> None:
            if not held:  # the first ECR call: apply holds the lock by now
                held.append(True)
                hold()

        def clients(config: Config) -> Any:
            factory = real(config)

            def client(account: str, region: str) -> Any:
                ecr = factory(account, region)
                ecr.meta.events.register("before-call.ecr.*", before_call, unique_id="hold")
                return ecr

            return client

        proposals_cli.CLIENTS = clients
        return run_cli(cli, ["apply", *rest])
    os.environ["HYGIENE_JOB_DEPS"] = "tests.locking.holder:blocking_deps"
    return run_cli(cli, ["run", kind, *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
