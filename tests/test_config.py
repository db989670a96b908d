"""Config errors: one message naming file, key path and line; exit code 2; no AWS call."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.config import load_config
from hygiene.errors import ConfigError, ExitCode
from tests.builders import RULES_DIR


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    return target


def _write(rules_dir: Path, name: str, text: str) -> None:
    (rules_dir / name).write_text(text, encoding="utf-8")


def test_shipped_config_is_valid() -> None:
    config = load_config(RULES_DIR)
    assert "suporte" in config.namespaces
    assert config.policy.protections.keep_newest == 3
    assert config.projects.projects["suporte"].language == "pt_BR"


def test_missing_file(rules_dir: Path) -> None:
    (rules_dir / "projects.yaml").unlink()
    with pytest.raises(ConfigError) as err:
        load_config(rules_dir)
    assert err.value.message.startswith(f"{rules_dir / 'projects.yaml'}: file not found; ")
    assert "--rules-dir" in err.value.message
    assert "HYGIENE_RULES_DIR" in err.value.message


def test_bad_yaml_names_line(rules_dir: Path) -> None:
    _write(rules_dir, "default.yaml", "collect:\n  max_workers: 4\n  retry_mode: [adaptive\n")
    with pytest.raises(ConfigError) as err:
        load_config(rules_dir)
    assert err.value.message.startswith(f"{rules_dir / 'default.yaml'}:4: invalid YAML:")


def test_unknown_key_names_path_and_line(rules_dir: Path) -> None:
    _write(rules_dir, "default.yaml", "collect:\n  max_workers: 4\n  max_wrokers: 5\n")
    with pytest.raises(ConfigError) as err:
        load_config(rules_dir)
    assert err.value.message == f"{rules_dir / 'default.yaml'}:3: collect.max_wrokers: unknown key"


def test_wrong_type_names_path_line_and_value(rules_dir: Path) -> None:
    _write(rules_dir, "default.yaml", "apply:\n  grace_days: soon\n")
    with pytest.raises(ConfigError) as err:
        load_config(rules_dir)
    assert err.value.message == (
        f"{rules_dir / 'default.yaml'}:2: apply.grace_days: Input should be a valid integer, "
        "unable to parse string as an integer (got 'soon')"
    )


def test_nested_project_error(rules_dir: Path) -> None:
    _write(rules_dir, "projects.yaml", "projects:\n  suporte:\n    owners: [not-an-email]\n")
    with pytest.raises(ConfigError) as err:
        load_config(rules_dir)
    assert err.value.message.startswith(
        f"{rules_dir / 'projects.yaml'}:3: projects.suporte.owners[0]: not an email address "
        "'not-an-email'"
    )


def test_cli_config_error_exit_code_2(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(rules_dir, "default.yaml", "schedule:\n  timezone: Mars/Olympus\n")
    code = run_cli(cli, ["config", "check", "--rules-dir", str(rules_dir)])
    assert code == ExitCode.USAGE == 2
    err = capsys.readouterr().err
    assert err.strip().startswith("error: ")
    assert "default.yaml:2: schedule.timezone" in err
    assert "unknown time zone 'Mars/Olympus'" in err


def test_cli_config_check_prints_effective_config(rules_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["config", "check", "--rules-dir", str(rules_dir)])
    assert result.exit_code == 0, result.output
    assert "keep_newest: 3" in result.output
    assert "suporte:" in result.output


def test_config_schema_lists_every_section() -> None:
    result = CliRunner().invoke(cli, ["config", "schema", "policy"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert set(schema["properties"]) >= {"registry", "collect", "rules", "apply", "schedule"}
    projects = json.loads(CliRunner().invoke(cli, ["config", "schema", "projects"]).output)
    assert "projects" in projects["properties"]


def _fields(model: type, prefix: str = "") -> list[tuple[str, str]]:
    from pydantic import BaseModel

    found = []
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        found.append((prefix + name, name))
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += _fields(annotation, prefix + name + ".")
    return found


def test_every_config_key_is_documented() -> None:
    from hygiene.config import Policy, Project

    docs = "".join(p.read_text(encoding="utf-8") for p in (RULES_DIR.parent / "docs").glob("*.md"))
    missing = [path for path, name in _fields(Policy) + _fields(Project) if f"`{name}`" not in docs]
    assert missing == [], f"document these keys in docs/: {missing}"
