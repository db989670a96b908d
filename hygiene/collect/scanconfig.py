"""The registry's scanning configuration (GetRegistryScanningConfiguration): which
repositories its rules scan on push or continuously, whatever each repository's own
``scanOnPush`` says."""

from __future__ import annotations

import fnmatch
from typing import Any


def registry_scan_rules(client: Any) -> list[tuple[str, list[str]]]:
    """(frequency, wildcard filters) of the registry scanning configuration.

    Registry-level rules (basic scan-on-push filters, or enhanced scanning on push or
    continuously) satisfy Security Hub ECR.1 even when a repository's own
    ``scanOnPush`` is false, so SC001 must know them.
    """
    config = client.get_registry_scanning_configuration().get("scanningConfiguration", {})
    rules = []
    for rule in config.get("rules", []):
        filters = [f["filter"] for f in rule.get("repositoryFilters", [])]
        rules.append((str(rule.get("scanFrequency", "MANUAL")), filters))
    return rules


def scan_frequency_for(repository: str, rules: list[tuple[str, list[str]]]) -> str | None:
    """The strongest registry scanning rule matching ``repository`` (or None)."""
    matched = {
        freq for freq, filters in rules if any(fnmatch.fnmatchcase(repository, f) for f in filters)
    }
    if "CONTINUOUS_SCAN" in matched:
        return "continuous"
    if "SCAN_ON_PUSH" in matched:
        return "on-push"
    return None
