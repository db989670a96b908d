"""The lifecycle policy as a value: rules parsed from ECR's JSON text, and back.

Parsing here is *structural* (what the preview needs to run); every ECR constraint is
checked by :mod:`hygiene.lifecycle.validate`. Field names follow ECR's JSON so a rule
reads the same in code, in the policy text and in the AWS documentation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from hygiene.errors import LifecycleError

# The keys ECR knows, in the order ECR's documentation writes them (diff normalises to it).
RULE_KEYS = ("rulePriority", "description", "selection", "action")
SELECTION_KEYS = (
    "tagStatus",
    "tagPatternList",
    "tagPrefixList",
    "storageClass",
    "countType",
    "countUnit",
    "countNumber",
)
ACTION_KEYS = ("type", "targetStorageClass")

TAG_STATUSES = ("tagged", "untagged", "any")
COUNT_TYPES = (
    "imageCountMoreThan",
    "sinceImagePushed",
    "sinceImagePulled",
    "sinceImageTransitioned",
)
AGE_COUNT_TYPES = ("sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned")
STORAGE_CLASSES = ("standard", "archive")
ACTION_TYPES = ("expire", "transition")

MIN_POLICY_CHARS = 100
MAX_POLICY_CHARS = 30_720
MAX_RULES = 50
MAX_WILDCARDS = 4
MIN_ARCHIVE_DAYS = 90  # archived images cannot be expired by lifecycle before 90 days


@dataclass(frozen=True)
class LifecycleRule:
    """One lifecycle rule, with ECR's field names."""

    rule_priority: int
    tag_status: str
    count_type: str
    count_number: int
    action: str = "expire"
    description: str | None = None
    tag_prefix_list: tuple[str, ...] = ()
    tag_pattern_list: tuple[str, ...] = ()
    count_unit: str | None = None
    storage_class: str = "standard"
    target_storage_class: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        """ECR's JSON shape, keys in the order of the AWS documentation's template."""
        selection: dict[str, Any] = {"tagStatus": self.tag_status}
        if self.tag_pattern_list:
            selection["tagPatternList"] = list(self.tag_pattern_list)
        if self.tag_prefix_list:
            selection["tagPrefixList"] = list(self.tag_prefix_list)
        if self.storage_class != "standard":
            selection["storageClass"] = self.storage_class
        selection["countType"] = self.count_type
        if self.count_unit is not None:
            selection["countUnit"] = self.count_unit
        selection["countNumber"] = self.count_number
        action: dict[str, Any] = {"type": self.action}
        if self.target_storage_class is not None:
            action["targetStorageClass"] = self.target_storage_class
        rule: dict[str, Any] = {"rulePriority": self.rule_priority}
        if self.description is not None:
            rule["description"] = self.description
        rule["selection"] = selection
        rule["action"] = action
        return rule

    @property
    def selects_tags(self) -> tuple[str, tuple[str, ...]]:
        """The tag selection as a comparable value (kind, sorted entries)."""
        if self.tag_pattern_list:
            return ("pattern", tuple(sorted(self.tag_pattern_list)))
        if self.tag_prefix_list:
            return ("prefix", tuple(sorted(self.tag_prefix_list)))
        return ("none", ())


@dataclass(frozen=True)
class LifecyclePolicy:
    rules: tuple[LifecycleRule, ...]

    def ordered(self) -> list[LifecycleRule]:
        """Rules in the order ECR applies them: lowest rulePriority first."""
        return sorted(self.rules, key=lambda r: r.rule_priority)

    def to_json(self) -> dict[str, Any]:
        return {"rules": [r.to_json() for r in self.ordered()]}

    def to_text(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_json(), indent=indent)


def load_json(text: str) -> Any:
    """Parse policy text as JSON; a syntax error becomes a LifecycleError with position."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"policy text is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        raise LifecycleError(message) from exc


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return ()


def rule_from_json(data: dict[str, Any]) -> LifecycleRule:
    selection = data.get("selection") or {}
    action = data.get("action") or {}
    return LifecycleRule(
        rule_priority=int(data["rulePriority"]),
        description=data.get("description"),
        tag_status=str(selection.get("tagStatus")),
        tag_prefix_list=_strings(selection.get("tagPrefixList")),
        tag_pattern_list=_strings(selection.get("tagPatternList")),
        storage_class=str(selection.get("storageClass") or "standard"),
        count_type=str(selection.get("countType")),
        count_unit=selection.get("countUnit"),
        count_number=int(selection["countNumber"]),
        action=str(action.get("type")),
        target_storage_class=action.get("targetStorageClass"),
        extra={k: v for k, v in selection.items() if k not in SELECTION_KEYS},
    )


def parse_policy(text: str | dict[str, Any]) -> LifecyclePolicy:
    """Structural parse (no ECR constraint checks beyond what is needed to run rules).

    Raises :class:`LifecycleError` when the text is not JSON or a rule lacks
    rulePriority/countNumber. Use :func:`hygiene.lifecycle.validate.validate_policy`
    before any PUT.
    """
    data = load_json(text) if isinstance(text, str) else text
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise LifecycleError('policy must be a JSON object with a "rules" list')
    rules = []
    for index, raw in enumerate(data["rules"]):
        try:
            rules.append(rule_from_json(raw))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LifecycleError(f"rules[{index}]: cannot read rule: {exc!r}") from exc
    return LifecyclePolicy(tuple(rules))


@lru_cache(maxsize=1024)
def pattern_regex(pattern: str) -> re.Pattern[str]:
    """An ECR tag pattern (``*`` = any run of characters, anchored) as a regex."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def tag_matches_pattern(tag: str, pattern: str) -> bool:
    return pattern_regex(pattern).fullmatch(tag) is not None


def pattern_covers(outer: str, inner: str) -> bool:
    """True when every tag matching ``inner`` surely matches ``outer``.

    Conservative (may answer False for a true inclusion): exact equality, ``*``, or a
    literal-prefix pattern ``X*`` against a pattern whose literal start begins with X.
    """
    if outer == inner or outer == "*":
        return True
    if outer.endswith("*") and outer.count("*") == 1:
        prefix = outer[:-1]
        literal_start = inner.split("*", 1)[0]
        return literal_start.startswith(prefix)
    return False
