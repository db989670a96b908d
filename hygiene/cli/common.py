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
from hygiene.text import escape_unsafe

if TYPE_CHECKING:
    from hygiene.config import Config

F = TypeVar("F", bound=Callable[..., Any])


def rules_dir_option(func: F) -> F:
    """``--rules-dir DIR``: where default.yaml and projects.yaml live."""
    return click.option(
        "--rules-dir",
        # checked by the loader, which says the same thing for every command
        type=click.Path(path_type=Path),
        metavar="DIRECTORY",
        envvar="HYGIENE_RULES_DIR",
        default=Path("rules"),
        show_default=True,
        help="Directory holding default.yaml and projects.yaml (env HYGIENE_RULES_DIR).",
    )(func)


class Checked(click.ParamType):
    """A command-line value checked by the same function as the configuration field
    (``check`` names a function of :mod:`hygiene.configtypes`, imported when a value is
    given: pydantic stays out of start-up): one line and exit 2 before anything runs."""

    def __init__(self, name: str, check: str) -> None:
        self.name = name
        self.check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from hygiene import configtypes

        try:
            return getattr(configtypes, self.check)(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


ACCOUNT = Checked("account", "check_account")
REGION = Checked("region", "check_region")
HTTP_URL = Checked("url", "check_http_url")
TEXT = Checked("text", "check_text")


def log_format_option(func: F) -> F:
    return click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Human-readable log lines or JSON lines.",
    )(func)


def load(rules_dir: Path) -> Config:
    """The configuration in ``rules_dir``, rule options, admins entries and channel
    settings included (exit 2 when invalid)."""
    from hygiene.authz.policy import check_admins
    from hygiene.checks import check_channels
    from hygiene.config import load_config
    from hygiene.rules import validate_config

    return load_config(rules_dir, checks=[validate_config, check_admins, check_channels])


MAX_ERROR_LINES = 20


def error_lines(problems: list[str]) -> list[str]:
    """Every problem, one per line, at most :data:`MAX_ERROR_LINES` lines in all."""
    if len(problems) <= MAX_ERROR_LINES:
        return problems
    rest = len(problems) - (MAX_ERROR_LINES - 1)
    return [
        *problems[: MAX_ERROR_LINES - 1],
        f"… and {rest} more errors (fix those above and run again to see them)",
    ]


def run_cli(group: click.Group, argv: list[str] | None = None) -> int:
    """Run ``group`` and turn domain errors into one line + a documented exit code."""
    try:
        result = group.main(args=argv, prog_name="hygiene", standalone_mode=False)
    except HygieneError as exc:
        for line in error_lines(exc.lines()):
            click.echo(f"error: {escape_unsafe(line)}", err=True)
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return int(ExitCode.USAGE)
    except click.UsageError as exc:
        # one line, like every other error (click's own adds the usage and a hint)
        hint = f" (see '{exc.ctx.command_path} -h')" if exc.ctx is not None else ""
        click.echo(f"error: {escape_unsafe(exc.format_message())}{hint}", err=True)
        return int(ExitCode.USAGE)
    except click.ClickException as exc:
        exc.show()
        return int(ExitCode.USAGE)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    return int(result or 0)


__all__ = [
    "ACCOUNT",
    "HTTP_URL",
    "REGION",
    "TEXT",
    "Checked",
    "configure_logging",
    "load",
    "log_format_option",
    "rules_dir_option",
    "run_cli",
]
