"""Check lifecycle policy text against every ECR constraint before any PUT.

The constraints are those listed in docs/ecr-facts.md, "Lifecycle policies", from the AWS
user guide's "Lifecycle policy properties" and "How lifecycle policies work"; each is a
case in ``tests/lifecycle/cases/validation.yaml``. Every violation is reported, each as
one line naming the rule (index in ``rules`` and its ``rulePriority``) and the field::

    rules[2] (rulePriority 30): selection.tagPatternList[0]: pattern 'a*b*c*d*e*f'
    has 5 '*' wildcards; ECR allows at most 4

:func:`check_policy` returns the list; :func:`validate_policy` raises
:class:`~hygiene.errors.LifecycleError` (exit code 2) with all of them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, TypeGuard

from hygiene.errors import LifecycleError
from hygiene.lifecycle.policy import (
    ACTION_KEYS,
    ACTION_TYPES,
    AGE_COUNT_TYPES,
    COUNT_TYPES,
    MAX_POLICY_CHARS,
    MAX_RULES,
    MAX_WILDCARDS,
    MIN_ARCHIVE_DAYS,
    MIN_POLICY_CHARS,
    RULE_KEYS,
    SELECTION_KEYS,
    STORAGE_CLASSES,
    TAG_STATUSES,
    LifecyclePolicy,
    load_json,
    parse_policy,
)

ALLOW_PULLED_EXPIRE = "lifecycle.allow_since_image_pulled_expire"


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _choices(values: tuple[str, ...]) -> str:
    return " | ".join(values)


class _Checker:
    def __init__(self, allow_since_image_pulled_expire: bool) -> None:
        self.allow_pulled_expire = allow_since_image_pulled_expire
        self.problems: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}" if where else message)

    # ------------------------------------------------------------------ whole policy
    def policy(self, text: str) -> None:
        length = len(text)
        if length < MIN_POLICY_CHARS:
            self.add(
                "", f"policy text is {length} characters; ECR requires at least {MIN_POLICY_CHARS}"
            )
        if length > MAX_POLICY_CHARS:
            self.add(
                "", f"policy text is {length} characters; ECR allows at most {MAX_POLICY_CHARS}"
            )
        try:
            data = load_json(text)
        except LifecycleError as exc:
            self.add("", exc.message)
            return
        if not isinstance(data, dict):
            self.add("", f"policy must be a JSON object, got {type(data).__name__}")
            return
        for key in sorted(set(data) - {"rules"}):
            self.add(key, "unknown property (a policy has only 'rules')")
        rules = data.get("rules")
        if rules is None:
            self.add("rules", "missing (a policy needs a 'rules' list)")
            return
        if not isinstance(rules, list):
            self.add("rules", f"must be a list, got {type(rules).__name__}")
            return
        if not rules:
            self.add("rules", "must contain at least one rule")
        if len(rules) > MAX_RULES:
            self.add("rules", f"has {len(rules)} rules; ECR allows at most {MAX_RULES}")
        labels = []
        for index, rule in enumerate(rules):
            labels.append(self.rule(index, rule))
        self.across_rules(rules, labels)

    # ------------------------------------------------------------------ one rule
    def rule(self, index: int, rule: Any) -> str:
        label = f"rules[{index}]"
        if not isinstance(rule, dict):
            self.add(label, f"must be an object, got {type(rule).__name__}")
            return label
        priority = rule.get("rulePriority")
        if _is_int(priority):
            label = f"rules[{index}] (rulePriority {priority})"
        for key in sorted(set(rule) - set(RULE_KEYS)):
            self.add(f"{label}: {key}", "unknown property")
        if "rulePriority" not in rule:
            self.add(f"{label}: rulePriority", "missing (a unique integer is required)")
        elif not _is_int(priority):
            self.add(f"{label}: rulePriority", f"must be an integer, got {priority!r}")
        elif priority < 1:
            self.add(f"{label}: rulePriority", f"must be a positive integer, got {priority}")
        if "description" in rule and not isinstance(rule["description"], str):
            self.add(f"{label}: description", "must be a string")
        selection = rule.get("selection")
        action = rule.get("action")
        if not isinstance(selection, dict):
            self.add(f"{label}: selection", "missing or not an object")
            selection = {}
        else:
            self.selection(label, selection)
        if not isinstance(action, dict):
            self.add(f"{label}: action", "missing or not an object")
        else:
            self.action(label, action, selection)
        return label

    def selection(self, label: str, sel: dict[str, Any]) -> None:
        where = f"{label}: selection"
        for key in sorted(set(sel) - set(SELECTION_KEYS)):
            self.add(f"{where}.{key}", "unknown property")
        status = sel.get("tagStatus")
        if status is None:
            self.add(f"{where}.tagStatus", f"missing (one of {_choices(TAG_STATUSES)})")
        elif status not in TAG_STATUSES:
            self.add(f"{where}.tagStatus", f"{status!r} is not one of {_choices(TAG_STATUSES)}")
        has_prefix = "tagPrefixList" in sel
        has_pattern = "tagPatternList" in sel
        if has_prefix and has_pattern:
            self.add(
                f"{where}",
                "tagPrefixList and tagPatternList cannot both be given; use one of them",
            )
        if status == "tagged" and not (has_prefix or has_pattern):
            self.add(
                f"{where}",
                "tagStatus 'tagged' requires a tagPrefixList or a tagPatternList",
            )
        if status in ("untagged", "any"):
            for key in ("tagPrefixList", "tagPatternList"):
                if key in sel:
                    self.add(f"{where}.{key}", f"not allowed with tagStatus {status!r}")
        if has_prefix:
            self.tag_list(f"{where}.tagPrefixList", sel["tagPrefixList"], prefix=True)
        if has_pattern:
            self.tag_list(f"{where}.tagPatternList", sel["tagPatternList"], prefix=False)

        storage = sel.get("storageClass", "standard")
        if storage not in STORAGE_CLASSES:
            self.add(
                f"{where}.storageClass", f"{storage!r} is not one of {_choices(STORAGE_CLASSES)}"
            )
        count_type = sel.get("countType")
        if count_type is None:
            self.add(f"{where}.countType", f"missing (one of {_choices(COUNT_TYPES)})")
        elif count_type not in COUNT_TYPES:
            self.add(f"{where}.countType", f"{count_type!r} is not one of {_choices(COUNT_TYPES)}")
        unit = sel.get("countUnit")
        if count_type in AGE_COUNT_TYPES:
            if unit is None:
                self.add(f"{where}.countUnit", f"required with countType {count_type!r}: 'days'")
            elif unit != "days":
                self.add(f"{where}.countUnit", f"{unit!r} is not allowed; the only unit is 'days'")
        elif count_type == "imageCountMoreThan" and "countUnit" in sel:
            self.add(f"{where}.countUnit", "not allowed with countType 'imageCountMoreThan'")
        number = sel.get("countNumber")
        if "countNumber" not in sel:
            self.add(f"{where}.countNumber", "missing (a positive integer is required)")
        elif not _is_int(number):
            self.add(f"{where}.countNumber", f"must be an integer, got {number!r}")
        elif number < 1:
            self.add(f"{where}.countNumber", f"must be a positive integer, got {number}")
        if storage == "archive":
            if count_type is not None and count_type != "sinceImageTransitioned":
                self.add(
                    f"{where}.countType",
                    f"{count_type!r} is not allowed with storageClass 'archive'; "
                    "use 'sinceImageTransitioned'",
                )
            if (
                _is_int(number)
                and count_type == "sinceImageTransitioned"
                and number < MIN_ARCHIVE_DAYS
            ):
                self.add(
                    f"{where}.countNumber",
                    f"archived images cannot be expired before {MIN_ARCHIVE_DAYS} days "
                    f"in archive, got {number}",
                )
        elif count_type == "sinceImageTransitioned":
            self.add(
                f"{where}.countType", "'sinceImageTransitioned' requires storageClass 'archive'"
            )

    def tag_list(self, where: str, values: Any, *, prefix: bool) -> None:
        if not isinstance(values, list):
            self.add(where, f"must be a list of strings, got {type(values).__name__}")
            return
        if not values:
            self.add(where, "must not be empty")
        seen: set[str] = set()
        for i, value in enumerate(values):
            at = f"{where}[{i}]"
            if not isinstance(value, str) or not value:
                self.add(at, f"must be a non-empty string, got {value!r}")
                continue
            if value in seen:
                self.add(at, f"{value!r} is listed twice")
            seen.add(value)
            if len(value) > 300:
                self.add(at, f"is {len(value)} characters; an image tag has at most 300")
            if prefix and "*" in value:
                self.add(
                    at,
                    f"prefix {value!r} contains '*', which is literal here and matches no tag; "
                    "use tagPatternList for wildcards",
                )
            if not prefix and value.count("*") > MAX_WILDCARDS:
                self.add(
                    at,
                    f"pattern {value!r} has {value.count('*')} '*' wildcards; "
                    f"ECR allows at most {MAX_WILDCARDS}",
                )

    def action(self, label: str, action: dict[str, Any], sel: dict[str, Any]) -> None:
        where = f"{label}: action"
        for key in sorted(set(action) - set(ACTION_KEYS)):
            self.add(f"{where}.{key}", "unknown property")
        kind = action.get("type")
        target = action.get("targetStorageClass")
        if kind is None:
            self.add(f"{where}.type", f"missing (one of {_choices(ACTION_TYPES)})")
        elif kind not in ACTION_TYPES:
            self.add(f"{where}.type", f"{kind!r} is not one of {_choices(ACTION_TYPES)}")
        if kind == "transition":
            if target is None:
                self.add(
                    f"{where}.targetStorageClass", "required with type 'transition': 'archive'"
                )
            elif target != "archive":
                self.add(
                    f"{where}.targetStorageClass", f"{target!r} is not allowed; only 'archive'"
                )
            if sel.get("storageClass", "standard") == "archive":
                self.add(
                    f"{where}.type",
                    "'transition' applies to standard images only; "
                    "a storageClass 'archive' rule can only expire",
                )
        elif kind == "expire" and target is not None:
            self.add(f"{where}.targetStorageClass", "only allowed with type 'transition'")
        if (
            kind == "expire"
            and sel.get("countType") == "sinceImagePulled"
            and not self.allow_pulled_expire
        ):
            self.add(
                f"{where}.type",
                "'expire' with countType 'sinceImagePulled' is not confirmed to be accepted "
                f"by ECR (only 'transition' is); enable {ALLOW_PULLED_EXPIRE} to allow it",
            )

    # ------------------------------------------------------------------ across rules
    def across_rules(self, rules: list[Any], labels: list[str]) -> None:
        items = [(label, r) for label, r in zip(labels, rules, strict=True) if isinstance(r, dict)]
        priorities: list[int] = [p for _, r in items if _is_int(p := r.get("rulePriority"))]
        counts = Counter(priorities)
        for label, rule in items:
            priority = rule.get("rulePriority")
            if _is_int(priority) and counts[priority] > 1:
                self.add(
                    f"{label}: rulePriority",
                    f"{priority} is used by {counts[priority]} rules; priorities must be unique",
                )
        if priorities:
            highest = max(priorities)
            for label, rule in items:
                sel = rule.get("selection")
                if isinstance(sel, dict) and sel.get("tagStatus") == "any":
                    priority = rule.get("rulePriority")
                    if _is_int(priority) and priority != highest:
                        self.add(
                            f"{label}: rulePriority",
                            f"a rule with tagStatus 'any' must have the highest rulePriority "
                            f"({priority} < {highest}) and be evaluated last",
                        )
        untagged = [
            label
            for label, r in items
            if isinstance(r.get("selection"), dict)
            and r["selection"].get("tagStatus") == "untagged"
        ]
        if len(untagged) > 1:
            for label in untagged[1:]:
                self.add(
                    f"{label}: selection.tagStatus",
                    f"only one rule may select untagged images (also {untagged[0]})",
                )
        seen: dict[tuple[Any, ...], str] = {}
        for label, rule in items:
            sel = rule.get("selection")
            if not isinstance(sel, dict) or sel.get("tagStatus") != "tagged":
                continue
            for key in ("tagPatternList", "tagPrefixList"):
                values = sel.get(key)
                if isinstance(values, list) and all(isinstance(v, str) for v in values):
                    signature = (sel.get("storageClass", "standard"), key, frozenset(values))
                    if signature in seen:
                        self.add(
                            f"{label}: selection.{key}",
                            f"same tag selection as {seen[signature]}; "
                            "the rules must select unique sets of tags",
                        )
                    else:
                        seen[signature] = label


def check_policy(text: str, *, allow_since_image_pulled_expire: bool = False) -> list[str]:
    """Every ECR constraint ``text`` breaks, one readable line each (empty when valid)."""
    checker = _Checker(allow_since_image_pulled_expire)
    checker.policy(text)
    return checker.problems


def validate_policy(
    text: str, *, allow_since_image_pulled_expire: bool = False, source: str = "policy"
) -> LifecyclePolicy:
    """Parse ``text`` after checking every constraint; raise LifecycleError listing all."""
    problems = check_policy(text, allow_since_image_pulled_expire=allow_since_image_pulled_expire)
    if problems:
        more = len(problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise LifecycleError(f"{source}: {problems[0]}{suffix}", problems)
    return parse_policy(text)
