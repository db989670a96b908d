"""Every CLI command has help text and is documented in docs/cli.md (sqlite-utils habit)."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from hygiene.cli import cli
from tests.builders import REPO_ROOT


def _walk(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        yield path
        if isinstance(command, click.Group):
            yield from _walk(command, path)


COMMANDS = list(_walk(cli))


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_command_has_help_and_docs(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert (command.help or "").strip(), f"hygiene {' '.join(path)} has no help text"
    docs = (REPO_ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert f"hygiene {' '.join(path)}" in docs, f"hygiene {' '.join(path)} missing in docs/cli.md"


def test_cli_reference_is_generated_and_current() -> None:
    from hygiene.cli.docgen import render

    committed = (REPO_ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert committed == render(cli), "run: python -m hygiene.cli.docgen > docs/cli.md"
