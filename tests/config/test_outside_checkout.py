"""Run from outside the checkout (no ./rules): every command says the same one line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from hygiene.cli import cli
from hygiene.cli.common import run_cli


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        elif any(p.name == "rules_dir" for p in command.params):
            yield (*path, name)


def _required(command: click.Command, tmp_path: Path) -> list[str]:
    """Plausible values for the command's required parameters, so that only the missing
    rules directory can stop it."""
    args: list[str] = []
    for param in command.params:
        if not param.required:
            continue
        if isinstance(param.type, click.Choice):
            value = str(param.type.choices[0])
        elif isinstance(param.type, click.File):
            value = str(tmp_path / "empty.json")
            Path(value).write_text("{}", encoding="utf-8")
        else:
            value = "p-0000000000"
        if isinstance(param, click.Option):
            args += [param.opts[0], value]
        else:
            args.append(value)
    return args


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


COMMANDS = list(_commands(cli))


def test_every_command_with_a_rules_dir_is_covered() -> None:
    assert len(COMMANDS) >= 15
    assert ("rules",) in COMMANDS and ("scan",) in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_no_rules_directory_is_the_same_error_for_every_command(
    path: tuple[str, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYGIENE_RULES_DIR", raising=False)
    code = run_cli(cli, [*path, *_required(_command(path), tmp_path)])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "error: rules: rules directory not found; hygiene reads default.yaml and "
        "projects.yaml from ./rules unless --rules-dir DIR or the environment variable "
        "HYGIENE_RULES_DIR names another directory"
    ]


def test_the_environment_variable_names_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYGIENE_RULES_DIR", str(tmp_path / "elsewhere"))
    assert run_cli(cli, ["rules"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'elsewhere'}: rules directory")
