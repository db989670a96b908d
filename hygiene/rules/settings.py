"""Rule configuration: selection, options, per-namespace overrides, the mutelist.

``validate_config`` runs when the configuration is loaded (the CLI and the scheduler pass
it to :func:`hygiene.config.load_config` as a check) so a bad rule code, option name,
value out of range or bad regex is a :class:`~hygiene.errors.ConfigError` naming the
file, key and line, exit code 2, before anything reads the registry.

Selection works like ruff: ``select`` and ``ignore`` take ``ALL``, a family (``images``),
a prefix (``IM``, ``IM00``) or a code (``IM002``); the most specific matching entry wins,
and at equal specificity ``ignore`` wins.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hygiene.errors import ConfigError
from hygiene.rules.base import FAMILIES, RULES, Rule
from hygiene.yamlfile import KeyPath, dotted, read_mapping

if TYPE_CHECKING:
    from hygiene.config import Config


def selector_codes(selector: str) -> set[str]:
    """The codes a selector names; raises ValueError for a selector that names none."""
    if selector == "ALL":
        return set(RULES)
    if selector in FAMILIES:
        return {c for c, r in RULES.items() if r.family == selector}
    codes = {c for c in RULES if c.startswith(selector)} if selector.isupper() else set()
    if not codes or not selector[:2].isalpha():
        families = ", ".join(FAMILIES)
        raise ValueError(
            f"unknown rule code, prefix or family {selector!r} (families: {families}; "
            "run `hygiene rules` for the codes)"
        )
    return codes


def specificity(selector: str) -> int:
    if selector == "ALL":
        return 0
    if selector in FAMILIES:
        return 1
    return 1 + len(selector)


def select_codes(select: Sequence[str], ignore: Sequence[str] = ()) -> set[str]:
    """Codes enabled by ``select`` minus ``ignore`` (most specific entry wins)."""
    enabled = set()
    for code in RULES:
        best_select = max((specificity(s) for s in select if code in selector_codes(s)), default=-1)
        best_ignore = max((specificity(s) for s in ignore if code in selector_codes(s)), default=-1)
        if best_select >= 0 and best_select > best_ignore:
            enabled.add(code)
    return enabled


@dataclass(frozen=True)
class Override:
    namespaces: tuple[str, ...]
    rules: dict[str, dict[str, Any]]
    ignore: frozenset[str]
    protected_tags: tuple[str, ...] | None

    def matches(self, namespace: str | None) -> bool:
        return namespace is not None and any(
            fnmatch.fnmatchcase(namespace, p) for p in self.namespaces
        )


@dataclass(frozen=True)
class MuteRule:
    index: int
    repository: str
    digest: str | None
    codes: frozenset[str]
    reason: str
    expires: date | None

    def expired(self, today: date) -> bool:
        return self.expires is not None and self.expires < today

    def describe(self) -> str:
        target = self.repository + (f"@{self.digest}" if self.digest else "")
        return f"mutelist[{self.index}] ({target}: {', '.join(sorted(self.codes))})"


@dataclass(frozen=True)
class RuleSettings:
    """The rule part of a configuration, resolved and validated."""

    enabled: frozenset[str]
    options: dict[str, dict[str, Any]]  # code → global effective options
    overrides: tuple[Override, ...]
    mutelist: tuple[MuteRule, ...]
    protected_tags: tuple[str, ...]
    source: str

    def options_for(self, code: str, namespace: str | None) -> dict[str, Any]:
        options = dict(self.options[code])
        for override in self.overrides:
            if override.matches(namespace) and code in override.rules:
                options.update(override.rules[code])
        return options

    def enabled_for(self, code: str, namespace: str | None) -> bool:
        if code not in self.enabled:
            return False
        return not any(o.matches(namespace) and code in o.ignore for o in self.overrides)

    def protected_tags_for(self, namespace: str | None) -> tuple[str, ...]:
        tags = self.protected_tags
        for override in self.overrides:
            if override.matches(namespace) and override.protected_tags is not None:
                tags = override.protected_tags
        return tags

    def options_key(self, code: str, namespace: str | None) -> str:
        return json.dumps(self.options_for(code, namespace), sort_keys=True, default=str)


class _Invalid(ValueError):
    """A bad value in the rule configuration, at ``key_path`` in the policy file."""

    def __init__(self, key_path: KeyPath, message: str) -> None:
        super().__init__(f"{dotted(key_path)}: {message}")
        self.key_path = key_path


class _Problems:
    """Collects every problem of the rule configuration, so one run reports them all."""

    def __init__(self) -> None:
        self.found: list[_Invalid] = []

    def add(self, key_path: KeyPath, message: str) -> None:
        self.found.append(_Invalid(key_path, message))


def _check_options(code: str, options: Any, where: KeyPath, problems: _Problems) -> dict[str, Any]:
    rule = RULES[code]
    if not isinstance(options, dict):
        problems.add(where, "expected a mapping of option names to values")
        return {}
    checked = {}
    for name, value in options.items():
        try:
            option = rule.option(name)
        except KeyError:
            known = ", ".join(o.name for o in rule.options) or "none"
            problems.add((*where, name), f"unknown option of {code} {rule.name} (options: {known})")
            continue
        try:
            checked[name] = option.check(value)
        except ValueError as exc:
            problems.add((*where, name), str(exc))
    return checked


def _known_code(code: str, where: KeyPath, problems: _Problems) -> bool:
    if code not in RULES:
        problems.add(where, f"unknown rule code {code!r} (run `hygiene rules`)")
        return False
    return True


def _selectors(values: Iterable[str], where: KeyPath, problems: _Problems) -> frozenset[str]:
    codes: set[str] = set()
    for i, selector in enumerate(values):
        try:
            codes |= selector_codes(selector)
        except ValueError as exc:
            problems.add((*where, i), str(exc))
    return frozenset(codes)


def resolve(config: Config) -> RuleSettings:
    """Validate and resolve the rule configuration; raises ConfigError (exit 2) listing
    every problem, each with the file, line and key path."""
    problems = _Problems()
    settings = _resolve(config, problems)
    if problems.found:
        lines = _locate(config.policy_path, problems.found)
        raise ConfigError(lines[0], lines)
    return settings


def validate_config(config: Config) -> None:
    """Raise :class:`ConfigError` if the rule part of ``config`` is invalid.

    A check for :func:`hygiene.config.load_config` (``checks=[validate_config]``).
    """
    resolve(config)


def _resolve(config: Config, problems: _Problems) -> RuleSettings:
    policy = config.policy
    selection = policy.selection
    _selectors(selection.select, ("selection", "select"), problems)
    _selectors(selection.ignore, ("selection", "ignore"), problems)
    options: dict[str, dict[str, Any]] = {code: rule.defaults for code, rule in RULES.items()}
    for code, values in policy.rules.items():
        if _known_code(code, ("rules", code), problems):
            options[code].update(_check_options(code, values, ("rules", code), problems))
    overrides = []
    for i, override in enumerate(policy.overrides):
        where: KeyPath = ("overrides", i)
        rules = {}
        for code, values in override.rules.items():
            if _known_code(code, (*where, "rules", code), problems):
                rules[code] = _check_options(code, values, (*where, "rules", code), problems)
        overrides.append(
            Override(
                namespaces=tuple(override.namespaces),
                rules=rules,
                ignore=_selectors(override.ignore, (*where, "ignore"), problems),
                protected_tags=(
                    tuple(override.protected_tags) if override.protected_tags is not None else None
                ),
            )
        )
    mutes = []
    for i, entry in enumerate(policy.mutelist):
        mutes.append(
            MuteRule(
                index=i,
                repository=entry.repository,
                digest=entry.digest,
                codes=_selectors(entry.rules, ("mutelist", i, "rules"), problems),
                reason=entry.reason,
                expires=entry.expires,
            )
        )
    enabled: frozenset[str] = frozenset()
    if not problems.found:
        enabled = frozenset(select_codes(selection.select, selection.ignore))
        if not enabled:
            problems.add(
                ("selection",),
                "select and ignore leave no rule enabled: a scan would check nothing",
            )
    return RuleSettings(
        enabled=enabled,
        options=options,
        overrides=tuple(overrides),
        mutelist=tuple(mutes),
        protected_tags=tuple(policy.protections.protected_tags),
        source=str(config.policy_path) if config.policy_path else "policy",
    )


def _locate(path: Path | None, errors: list[_Invalid]) -> list[str]:
    """``file:line: key.path: message`` for each error (the line when the key is found)."""
    if path is None:
        return [str(error) for error in errors]
    try:
        source = read_mapping(path)
    except (ConfigError, OSError, ValueError):  # changed or unreadable since it was loaded
        return [f"{path}: {error}" for error in errors]
    return [f"{source.where(error.key_path)}: {error}" for error in errors]


def rule_for(code: str) -> Rule:
    try:
        return RULES[code.upper()]
    except KeyError:
        raise ConfigError(f"unknown rule code {code!r}; `hygiene rules` lists them") from None
