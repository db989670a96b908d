"""The ``hygiene`` command: a thin shell over the library.

Each command or command group lives in a module named for it (``hygiene rules`` in
``hygiene/cli/rules.py``; the proposal workflow's commands together in ``proposals.py``,
their tables in ``tables.py``)
and is registered in ``COMMAND_MODULES``; commands only parse options, call library
functions and format the result. Every
:class:`~hygiene.errors.HygieneError` becomes one readable line on stderr and its
documented exit code (see :mod:`hygiene.errors`).
"""

from __future__ import annotations

import importlib
import sys

import click

from hygiene.cli.common import run_cli

# Modules that define click commands; each exposes ``register(group)``.
COMMAND_MODULES = [
    "hygiene.cli.scan",
    "hygiene.cli.merge",
    "hygiene.cli.config",
    "hygiene.cli.demo",
    "hygiene.cli.run",
    "hygiene.cli.schedule",
    "hygiene.cli.iam",
    "hygiene.cli.report",
    "hygiene.cli.lifecycle",
    "hygiene.cli.proposals",
    "hygiene.cli.rules",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="registry-hygiene")
def cli() -> None:
    """registry-hygiene: lint, report and carefully clean an Amazon ECR registry."""


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(cli)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``argv`` given: called in-process, as tests do)."""
    if argv is not None:
        sys.exit(run_cli(cli, argv))
    from hygiene.cli.ending import begin_process, end_process, fast_end_requested

    begin_process()
    code = run_cli(cli, argv)
    if fast_end_requested():
        end_process(code)
    sys.exit(code)
