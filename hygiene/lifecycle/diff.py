"""Compare a generated policy with the repository's current one.

Both sides are normalised first (rules sorted by priority, keys in the documentation's
order, two-space JSON) so the diff shows meaning, not formatting. ``equivalent`` also
ignores rule descriptions: a policy that does the same thing is not re-proposed.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from hygiene.lifecycle.policy import ACTION_KEYS, RULE_KEYS, SELECTION_KEYS


def _ordered(data: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    known = {k: data[k] for k in order if k in data}
    rest = {k: data[k] for k in sorted(data) if k not in order}
    return known | rest


def normalise(text: str, *, descriptions: bool = True) -> str:
    """Canonical JSON of a policy; text that is not JSON is returned unchanged."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text if text.endswith("\n") else text + "\n"
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        return json.dumps(data, indent=2, sort_keys=True) + "\n"
    rules = []
    for rule in data["rules"]:
        if not isinstance(rule, dict):
            rules.append(rule)
            continue
        rule = dict(rule)
        if not descriptions:
            rule.pop("description", None)
        selection = rule.get("selection")
        if isinstance(selection, dict):
            selection = dict(selection)
            if selection.get("storageClass") == "standard":
                del selection["storageClass"]  # the default, written or not
            rule["selection"] = _ordered(selection, SELECTION_KEYS)
        if isinstance(rule.get("action"), dict):
            rule["action"] = _ordered(rule["action"], ACTION_KEYS)
        rules.append(_ordered(rule, RULE_KEYS))

    def priority(rule: Any) -> tuple[int, Any]:
        value = rule.get("rulePriority") if isinstance(rule, dict) else None
        return (0, value) if isinstance(value, int) else (1, 0)

    rules.sort(key=priority)
    return json.dumps({**data, "rules": rules}, indent=2) + "\n"


def equivalent(current: str | None, generated: str) -> bool:
    """Same rules (ignoring descriptions, order and formatting)."""
    if current is None:
        return False
    return normalise(current, descriptions=False) == normalise(generated, descriptions=False)


@dataclass(frozen=True)
class PolicyDiff:
    repository: str
    changed: bool
    text: str  # unified diff; empty when unchanged

    def to_json(self) -> dict[str, Any]:
        return {"repository": self.repository, "changed": self.changed, "diff": self.text}


def diff_policies(current: str | None, generated: str, *, repository: str = "") -> PolicyDiff:
    """Unified diff current → generated (``/dev/null`` when there is no current policy)."""
    before = [] if current is None else normalise(current).splitlines(keepends=True)
    after = normalise(generated).splitlines(keepends=True)
    name = repository or "policy"
    lines = difflib.unified_diff(
        before,
        after,
        fromfile="/dev/null" if current is None else f"current/{name}",
        tofile=f"generated/{name}",
    )
    text = "".join(lines)
    return PolicyDiff(repository, not equivalent(current, generated), text)
