"""Options and error handling shared by every command.

Start-up time: ``hygiene --help`` imports every command module, so a command module
imports only click and light modules at the top (this one, :mod:`hygiene.errors`,
:mod:`hygiene.logs`); the library a command runs (pandas, SQLAlchemy, boto3, …) is
imported inside the command's function. ``tests/test_startup.py`` keeps it so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hygiene.errors import ExitCode, HygieneError
from hygiene.logs import configure_logging

if TYPE_CHECKING:
    from hygiene.config import Config

F = TypeVar("F", bound=Callable[..., Any])


def rules_dir_option(func: F) -> F:
    """``--rules-dir DIR``: where default.yaml and projects.yaml live."""
    return click.option(
        "--rules-dir",
        type=click.Path(path_type=Path, file_okay=False),
        envvar="HYGIENE_RULES_DIR",
        default=Path("rules"),
        show_default=True,
        help="Directory holding default.yaml and projects.yaml (env HYGIENE_RULES_DIR).",
    )(func)


def log_format_option(func: F) -> F:
    return click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Human-readable log lines or JSON lines.",
    )(func)


def load(rules_dir: Path) -> Config:
    """The configuration in ``rules_dir``, rule options and admins entries included
    (exit 2 when invalid)."""
    from hygiene.authz.policy import check_admins
    from hygiene.config import load_config
    from hygiene.rules import validate_config

    return load_config(rules_dir, checks=[validate_config, check_admins])


def run_cli(group: click.Group, argv: list[str] | None = None) -> int:
    """Run ``group`` and turn domain errors into one line + a documented exit code."""
    try:
        result = group.main(args=argv, prog_name="hygiene", standalone_mode=False)
    except HygieneError as exc:
        click.echo(f"error: {exc.message}", err=True)
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return int(ExitCode.USAGE)
    except click.ClickException as exc:
        exc.show()
        return int(ExitCode.USAGE)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    return int(result or 0)


__all__ = ["configure_logging", "load", "log_format_option", "rules_dir_option", "run_cli"]
