"""What a proposal's displayed columns say, derived from what its approval covers.

``summary``, ``rule_codes`` and ``bytes`` are shown beside a proposal's id by
``hygiene approve``, ``hygiene reject``, ``hygiene proposals`` and the reports, but an
approval's fingerprint (:func:`hygiene.authz.decisions.content_hash`) covers the action,
repository, target and evidence, not them; and a PostgreSQL operator login may update
``summary``. So what is displayed is derived here from the covered content, as the plan
wrote it, and a stored value that differs is reported (:func:`altered_columns`) instead
of shown: a deletion cannot be dressed up as something harmless. None of them decides
anything (apply re-reads the target and the live registry).

``fix_safety`` is covered by the approval's fingerprint (not by the id), and apply
decides safety from the deployed rules, never from the column alone (docs/approvals.md
§2): readers show it as apply takes it (:func:`hygiene.fixsafety.shown_safety`, named in
``altered`` when the stored one differs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hygiene.model import Action
from hygiene.units import human_bytes

# the rule whose finding a lifecycle proposal for a repository without a policy answers
MISSING_POLICY_RULE = "RP002"


@dataclass(frozen=True)
class Displayed:
    """The displayed columns of a proposal, as its target and evidence say."""

    summary: str
    rule_codes: tuple[str, ...]
    bytes: int


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def size_of(value: Any) -> int:
    """A size as a reader is shown it: at least 0 bytes (no image or policy frees a
    negative size; a negative one is a tampered store or file, docs/approvals.md §4)."""
    return max(0, int(value or 0))


def _image_bytes(images: Any) -> int:
    return sum(size_of(i.get("bytes")) for i in images or [] if isinstance(i, Mapping))


def lifecycle_summary(
    images: int, size: int, archived: int, archived_bytes: int, replaces: bool
) -> str:
    """A ``put-lifecycle-policy`` proposal's summary (its preview's figures)."""
    text = f"this policy would expire {_plural(images, 'image')}, {human_bytes(size)}"
    if archived:
        text += f", and archive {_plural(archived, 'image')}, {human_bytes(archived_bytes)}"
    return text + (" (replaces the current policy)" if replaces else " (no policy yet)")


def displayed(
    action: Action, repository: str, target: Mapping[str, Any], evidence: Mapping[str, Any]
) -> Displayed | None:
    """The summary, rule codes and bytes the plan gives a proposal of this content; None
    for content no planner writes (then nothing is derived)."""
    try:
        return _displayed(action, repository, target, evidence)
    except (AttributeError, TypeError, ValueError):  # not the shape a planner writes
        return None


def _displayed(
    action: Action, repository: str, target: Mapping[str, Any], evidence: Mapping[str, Any]
) -> Displayed | None:
    if action is Action.DELETE_IMAGES:
        by_digest = evidence.get("rule_codes") or {}
        codes = tuple(sorted({c for cs in by_digest.values() for c in cs}))
        size = _image_bytes(evidence.get("images"))
        count = len(target.get("digests") or [])
        units = len(evidence.get("units") or [])
        return Displayed(
            f"delete {count} image(s) in {units} unit(s) from {repository}, "
            f"{human_bytes(size)} ({', '.join(codes)})",
            codes,
            size,
        )
    if action is Action.DELETE_REPOSITORY:
        codes = tuple(evidence.get("rule_codes") or ())
        images = evidence.get("images") or []
        size = _image_bytes(images)
        if images:
            summary = (
                f"delete abandoned repository {repository} and its {len(images)} image(s), "
                f"{human_bytes(size)} ({', '.join(codes)})"
            )
        else:
            summary = f"delete empty repository {repository}"
        return Displayed(summary, codes, size)
    if action is Action.PUT_LIFECYCLE_POLICY:
        preview = evidence.get("preview") or {}
        replaces = evidence.get("current_policy") is not None
        size = size_of(preview.get("bytes"))
        summary = lifecycle_summary(
            int(preview.get("images") or 0),
            size,
            int(preview.get("transitioned_images") or 0),
            size_of(preview.get("transitioned_bytes")),
            replaces,
        )
        return Displayed(summary, () if replaces else (MISSING_POLICY_RULE,), size)
    codes = tuple(evidence.get("rule_codes") or ())
    if action is Action.ENABLE_SCAN_ON_PUSH:
        return Displayed(f"enable scan on push for {repository}", codes, 0)
    if action is Action.SET_TAG_IMMUTABILITY:
        exclusions = ", ".join(target.get("exclusions") or [])
        return Displayed(f"make tags of {repository} immutable except {exclusions}", codes, 0)
    if action is Action.REMOVE_POLICY_STATEMENT:
        count = len(target.get("statements") or [])
        return Displayed(
            f"remove {count} public/foreign statement(s) from {repository}'s policy", codes, 0
        )
    return None


def altered_columns(stored: Mapping[str, Any], derived: Displayed | None) -> tuple[str, ...]:
    """The displayed columns whose ``stored`` value differs from the ``derived`` one."""
    if derived is None:
        return ()
    found = []
    if stored.get("summary") != derived.summary:
        found.append("summary")
    if tuple(stored.get("rule_codes") or ()) != derived.rule_codes:
        found.append("rule_codes")
    if int(stored.get("bytes") or 0) != derived.bytes:
        found.append("bytes")
    return tuple(found)


def altered_warning(
    proposal_id: str, columns: tuple[str, ...], safety: tuple[str, str] | None = None
) -> str:
    """The warning printed beside a proposal whose stored columns were changed;
    ``safety`` is (stored, shown) ``fix_safety``, named when that column is altered."""
    text = (
        f"warning: {proposal_id}: the stored {', '.join(columns)} differ(s) from what its "
        "target and evidence say (changed in the store after it was proposed?); shown as "
        "they say"
    )
    if "fix_safety" in columns and safety is not None:
        stored, shown = safety
        text += (
            f" (fix_safety: stored {stored}, shown {shown}: no rule whose fix is safe makes "
            "it one, and apply will not run it as a safe fix)"
        )
    return text + ". The decision is on the target and evidence, not on these columns"
