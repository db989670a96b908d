"""What a rule is: metadata, options with ranges, a four-part docstring, a vectorised check.

A rule is one small function over the inventory DataFrames, registered with :func:`rule`.
Its docstring *is* the user documentation (``hygiene rules CODE`` prints it) and must
have the four parts ``What it flags`` / ``Why it matters`` / ``Example`` / ``Fix``.

A check returns a DataFrame of hits, never Finding objects (the engine builds those):

* image rules: index = row labels of ``ctx.images``; columns ``message`` and optionally
  ``keep_reason`` (a rule-level reason to keep, e.g. ``newest-5``) and ``details``;
* repository rules: index = row labels of ``ctx.repositories``; columns ``message`` and
  optionally ``details`` (a dict per row);
* namespace rules: columns ``account``, ``region``, ``namespace``, ``message``,
  ``details`` (``repository`` is null in their findings).
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from hygiene.model import Action, FixSafety, Severity

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from hygiene.config import Config

DOC_SECTIONS = ("What it flags", "Why it matters", "Example", "Fix")
FAMILIES = {
    "naming": "NS",
    "images": "IM",
    "tags": "TG",
    "repositories": "RP",
    "compliance": "SC",
}
CODE_PATTERN = re.compile(r"^[A-Z]{2}\d{3}$")
NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class Scope(StrEnum):
    IMAGE = "image"
    REPOSITORY = "repository"
    NAMESPACE = "namespace"


class Deletes(StrEnum):
    NOTHING = "nothing"
    IMAGES = "images"
    REPOSITORY = "repository"


@dataclass(frozen=True)
class Option:
    """One rule option: its type, default and allowed range, checked when config loads."""

    name: str
    default: Any
    help: str
    kind: str = "int"  # int | float | bool | str | regex | list | choice
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    # A further check of the value the rule needs (raises ValueError), run at load time.
    validate: Callable[[Any], None] | None = field(default=None, compare=False)

    def check(self, value: Any) -> Any:
        """Return the value if valid, else raise ValueError with a readable reason.

        A ``regex`` is compiled by the engine the scan runs it with (RE2, through
        pyarrow: linear time, so no catastrophic backtracking), here, at load time.
        """
        kind = self.kind
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"must be an integer (got {value!r})")
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"must be a number (got {value!r})")
            if not math.isfinite(value):
                raise ValueError(f"must be a finite number (got {value!r})")
        elif kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"must be true or false (got {value!r})")
        elif kind in ("str", "regex", "choice"):
            if not isinstance(value, str) or not value:
                raise ValueError(f"must be a non-empty string (got {value!r})")
            if kind == "regex":
                check_re2(value)
            if kind == "choice" and value not in self.choices:
                raise ValueError(f"must be one of {', '.join(self.choices)} (got {value!r})")
        elif kind == "list":
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ValueError(f"must be a list of non-empty strings (got {value!r})")
            unknown = [v for v in value if self.choices and v not in self.choices]
            if unknown:
                raise ValueError(
                    f"unknown value {unknown[0]!r} (choose from {', '.join(self.choices)})"
                )
        if kind in ("int", "float"):
            if (
                self.min is not None
                and self.max is not None
                and not (self.min <= value <= self.max)
            ):
                raise ValueError(
                    f"must be between {_num(self.min)} and {_num(self.max)} (got {value!r})"
                )
            if self.min is not None and value < self.min:
                raise ValueError(f"must be at least {_num(self.min)} (got {value!r})")
            if self.max is not None and value > self.max:
                raise ValueError(f"must be at most {_num(self.max)} (got {value!r})")
        if kind == "list" and self.max is not None and len(value) > self.max:
            raise ValueError(f"must have at most {_num(self.max)} entries (got {len(value)})")
        if self.validate is not None:
            self.validate(value)
        return value

    def describe_range(self) -> str:
        if self.kind in ("int", "float"):
            return f"{_num(self.min)}..{_num(self.max)}"
        if self.kind == "choice":
            return " | ".join(self.choices)
        if self.kind == "list" and self.max is not None:
            return f"at most {_num(self.max)} entries"
        return self.kind


def check_re2(pattern: str) -> None:
    """Raise ValueError unless RE2 (pyarrow's regex engine, which rules run) compiles
    ``pattern``. RE2 has no backreferences and no lookaround, and matches in linear time.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        pc.match_substring_regex(pa.array([""], type=pa.string()), pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        reason = str(exc).removeprefix("Invalid regular expression: ")
        raise ValueError(
            f"{pattern!r} is not a regular expression the scan can run (RE2 syntax: no "
            f"backreferences, no lookaround): {reason}"
        ) from None


def _num(value: float | None) -> str:
    if value is None:
        return "∞"
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass
class RuleContext:
    """What a check sees: the (possibly namespace-filtered) frames and its options.

    ``images`` carries the derived columns of :mod:`hygiene.rules.protections`
    (``repo_id``, ``top_level``, ``is_child``, ``is_referrer``, ``subject_row``,
    ``unit_last_pull``, ``tagged_rank`` …). Row labels are positions in the full frame.
    """

    images: pd.DataFrame
    repositories: pd.DataFrame
    options: Mapping[str, Any]
    now: pd.Timestamp
    config: Config
    tag_table: pd.DataFrame  # one row per (image row, tag): columns row, tag (pyarrow str)
    # per image row of the full frame: ``in-use:<source>:<where>`` when a workload runs it
    # (directly or through a platform manifest or referrer), else None; None when the
    # engine gives none (every in-use source that was read: docs/in-use.md)
    in_use_reasons: np.ndarray | None = None

    def days_ago(self, days: float) -> pd.Timestamp:
        import pandas as pd

        return self.now - pd.Timedelta(days=days)


Check = Callable[[RuleContext], "pd.DataFrame"]


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    family: str
    severity: Severity
    fix_safety: FixSafety
    scope: Scope
    fix: str
    check: Check
    options: tuple[Option, ...] = ()
    deletes: Deletes = Deletes.NOTHING
    # The change the plan proposes for a finding (None: a person fixes it by hand).
    action: Action | None = None
    # Naming rules read only names, which a partial read still gets right.
    needs_complete_repository: bool = True
    doc: str = field(default="", repr=False)

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""

    def option(self, name: str) -> Option:
        for option in self.options:
            if option.name == name:
                return option
        raise KeyError(name)

    @property
    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options}

    def doc_sections(self) -> dict[str, str]:
        """The docstring split into its four parts (missing parts are absent)."""
        return parse_doc(self.doc)


def parse_doc(doc: str) -> dict[str, str]:
    text = textwrap.dedent("\n".join(doc.splitlines()[1:])) if doc else ""
    heading = re.compile(r"^(" + "|".join(DOC_SECTIONS) + r"):\s*$", re.M)
    parts: dict[str, str] = {}
    matches = list(heading.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = textwrap.dedent(text[match.end() : end]).strip()
        if body:
            parts[match.group(1)] = body
    return parts


RULES: dict[str, Rule] = {}


def catalogue_order(code: str) -> tuple[int, str]:
    """Sort key: families in catalogue order (NS, IM, TG, RP, SC), then code."""
    return (list(FAMILIES.values()).index(code[:2]), code)


def rule(
    *,
    code: str,
    name: str,
    severity: Severity,
    fix_safety: FixSafety,
    scope: Scope,
    fix: str,
    options: Sequence[Option] = (),
    deletes: Deletes = Deletes.NOTHING,
    action: Action | None = None,
    needs_complete_repository: bool = True,
) -> Callable[[Check], Check]:
    """Register a check function as a rule (its docstring is the documentation).

    ``action`` is the one source of the rule's fix: the plan proposes that action for
    every finding of the rule (see :mod:`hygiene.plan`), with the rule's ``fix_safety``.
    What a rule deletes and the action it proposes must agree (:func:`check_fix`).
    """
    if not CODE_PATTERN.match(code):
        raise ValueError(f"bad rule code {code!r}")
    if not NAME_PATTERN.match(name):
        raise ValueError(f"rule name must be kebab-case: {name!r}")
    check_fix(code, fix_safety, deletes, action)
    family = next(f for f, prefix in FAMILIES.items() if code.startswith(prefix))

    def register(func: Check) -> Check:
        if code in RULES:
            raise ValueError(f"duplicate rule code {code}")
        RULES[code] = Rule(
            code=code,
            name=name,
            family=family,
            severity=severity,
            fix_safety=fix_safety,
            scope=scope,
            fix=fix,
            check=func,
            options=tuple(options),
            deletes=deletes,
            action=action,
            needs_complete_repository=needs_complete_repository,
            doc=func.__doc__ or "",
        )
        return func

    return register


DELETING_ACTIONS = {
    Deletes.IMAGES: Action.DELETE_IMAGES,
    Deletes.REPOSITORY: Action.DELETE_REPOSITORY,
}


def check_fix(code: str, fix_safety: FixSafety, deletes: Deletes, action: Action | None) -> None:
    """Refuse a rule whose declarations contradict each other.

    A rule that deletes images or a repository proposes exactly that deletion; a manual
    fix proposes nothing; a safe or unsafe fix proposes something (else nothing would
    ever carry it out, and nobody would notice).
    """
    wanted = DELETING_ACTIONS.get(deletes)
    if wanted is not None and action is not wanted:
        raise ValueError(f"{code}: deletes {deletes.value}, so its action must be {wanted.value}")
    if deletes is Deletes.NOTHING and action in DELETING_ACTIONS.values():
        raise ValueError(f"{code}: action {action} deletes, so declare deletes=")
    if fix_safety is FixSafety.MANUAL and action is not None:
        raise ValueError(f"{code}: a manual fix proposes no action (got {action.value})")
    if fix_safety is not FixSafety.MANUAL and action is None:
        raise ValueError(f"{code}: a {fix_safety.value} fix needs an action the plan proposes")


def labels(mask: Any, text: str) -> np.ndarray:
    """An object array holding ``text`` where ``mask`` is true and None elsewhere."""
    import numpy as np

    mask = np.asarray(mask, dtype=bool)
    out = np.full(len(mask), None, dtype=object)
    out[mask] = text
    return out


def empty_hits(columns: Sequence[str] = ("message",)) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})


def image_hits(
    index: pd.Index, message: Any, keep_reason: Any = None, details: Any = None
) -> pd.DataFrame:
    """Build an image-rule hit frame from vectorised message (and keep reason) columns."""
    import pandas as pd

    # object dtype: messages go straight into findings, no round trip through pyarrow
    frame = pd.DataFrame({"message": pd.Series(message, index=index, dtype=object)})
    if keep_reason is not None:
        frame["keep_reason"] = keep_reason
    if details is not None:
        frame["details"] = details
    return frame
