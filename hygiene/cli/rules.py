"""``hygiene rules [CODE]``: list the rule catalogue or print one rule's documentation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hygiene.cli.common import load, rules_dir_option

if TYPE_CHECKING:
    from hygiene.config import Config
    from hygiene.rules import Rule
    from hygiene.rules.settings import RuleSettings


def _config(rules_dir: Path) -> Config:
    """The configured rules: like every command, an error (exit 2) naming --rules-dir and
    HYGIENE_RULES_DIR when the rules directory is not there (never silent defaults)."""
    return load(rules_dir)


def _option_rows(rule: Rule, settings: RuleSettings, namespace: str | None) -> list[dict[str, Any]]:
    effective = (
        settings.options_for(rule.code, namespace) if namespace else settings.options[rule.code]
    )
    return [
        {
            "name": o.name,
            "default": o.default,
            "value": effective[o.name],
            "range": o.describe_range(),
            "help": o.help,
        }
        for o in rule.options
    ]


def _overrides(rule: Rule, settings: RuleSettings) -> list[dict[str, Any]]:
    out = []
    for override in settings.overrides:
        entry: dict[str, Any] = {"namespaces": list(override.namespaces)}
        if rule.code in override.rules:
            entry["options"] = override.rules[rule.code]
        if rule.code in override.ignore:
            entry["ignored"] = True
        if len(entry) > 1:
            out.append(entry)
    return out


def rule_json(rule: Rule, settings: RuleSettings, namespace: str | None = None) -> dict[str, Any]:
    enabled = (
        settings.enabled_for(rule.code, namespace) if namespace else rule.code in settings.enabled
    )
    return {
        "code": rule.code,
        "name": rule.name,
        "family": rule.family,
        "severity": rule.severity.value,
        "fix_safety": rule.fix_safety.value,
        "scope": rule.scope.value,
        "enabled": enabled,
        "summary": rule.summary,
        "doc": rule.doc_sections(),
        "fix": rule.fix,
        "options": _option_rows(rule, settings, namespace),
        "overrides": _overrides(rule, settings),
    }


def _render(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _print_rule(data: dict[str, Any]) -> None:
    state = "enabled" if data["enabled"] else "disabled by the configuration"
    click.echo(f"{data['code']} {data['name']}  ({data['family']})")
    click.echo(f"  severity {data['severity']} · fix {data['fix_safety']} · {state}")
    click.echo("")
    click.echo(data["summary"])
    for section, body in data["doc"].items():
        click.echo("")
        click.echo(click.style(section + ":", bold=True))
        for line in body.replace("``", "`").splitlines():
            click.echo(f"    {line}" if line else "")
    click.echo("")
    click.echo(click.style("Options:", bold=True))
    if not data["options"]:
        click.echo("    (none)")
    for option in data["options"]:
        changed = (
            ""
            if option["value"] == option["default"]
            else (f"  (default {_render(option['default'])})")
        )
        click.echo(
            f"    {option['name']} = {_render(option['value'])}{changed}  [{option['range']}]"
        )
        click.echo(f"        {option['help']}")
    if data["overrides"]:
        click.echo("")
        click.echo(click.style("Per-namespace overrides:", bold=True))
        for override in data["overrides"]:
            what = (
                "ignored"
                if override.get("ignored")
                else ", ".join(f"{k}={_render(v)}" for k, v in override["options"].items())
            )
            click.echo(f"    {', '.join(override['namespaces'])}: {what}")


@click.command("rules")
@click.argument("code", required=False)
@rules_dir_option
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--namespace", help="Show the options in effect for this namespace.")
def rules_command(code: str | None, rules_dir: Path, fmt: str, namespace: str | None) -> None:
    """List every rule, or print the documentation and effective options of CODE.

    The list shows code, name, family, severity, fix safety and whether the
    configuration (selection.select / selection.ignore) enables the rule.
    """
    from hygiene.rules import RULES, resolve
    from hygiene.rules.base import catalogue_order
    from hygiene.rules.settings import rule_for

    settings = resolve(_config(rules_dir))
    if code is not None:
        data = rule_json(rule_for(code), settings, namespace)
        if fmt == "json":
            click.echo(json.dumps(data, indent=2))
        else:
            _print_rule(data)
        return
    rows = [rule_json(RULES[c], settings, namespace) for c in sorted(RULES, key=catalogue_order)]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    header = ("CODE", "NAME", "FAMILY", "SEVERITY", "FIX", "ON", "SUMMARY")
    table = [header] + [
        (
            r["code"],
            r["name"],
            r["family"],
            r["severity"],
            r["fix_safety"],
            "yes" if r["enabled"] else "no",
            r["summary"],
        )
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header) - 1)]
    for row in table:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, str(row[-1])]).rstrip())


def register(group: click.Group) -> None:
    group.add_command(rules_command)
