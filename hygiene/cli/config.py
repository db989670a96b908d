"""``hygiene config check``: validate the configuration and print the effective values."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hygiene.cli.common import load, rules_dir_option


@click.group("config")
def config_group() -> None:
    """Inspect and validate the configuration (rules/*.yaml)."""


@config_group.command("check")
@rules_dir_option
@click.option("--quiet", "-q", is_flag=True, help="Only validate; print nothing on success.")
def check(rules_dir: Path, quiet: bool) -> None:
    """Validate default.yaml and projects.yaml; print the effective configuration.

    Exit code 2 with one message naming the file, key and line when anything is wrong.
    No AWS call is made.
    """
    import yaml

    from hygiene.config import effective_config_dict

    config = load(rules_dir)
    if not quiet:
        click.echo(yaml.safe_dump(effective_config_dict(config), sort_keys=False))
        click.echo(f"# OK: {config.policy_path} and {config.projects_path} are valid", err=True)


@config_group.command("schema")
@click.argument("which", type=click.Choice(["policy", "projects"]), default="policy")
def schema(which: str) -> None:
    """Print the JSON Schema of default.yaml (policy) or projects.yaml (projects).

    Point your editor's YAML language server at it for completion and validation.
    """
    from hygiene.config import Policy, ProjectsRegistry

    model = Policy if which == "policy" else ProjectsRegistry
    click.echo(json.dumps(model.model_json_schema(), indent=2))


def register(group: click.Group) -> None:
    group.add_command(config_group)
