"""A fix's safety as the deployed rules give it: one derivation for the plan, apply and
everything that shows a proposal.

A rule declares whether its fix is safe (:func:`code_safety`); a proposal is a safe fix
only when its action is one a rule whose fix is safe proposes (:data:`SAFE_ACTIONS`) and
a rule whose fix is safe flags every image it deletes. The plan splits image deletions
that way (:mod:`hygiene.plan`); apply checks it again before running a proposal as a safe
fix (:mod:`hygiene.apply.eligibility`, :mod:`hygiene.apply.recheck`), because the stored
``fix_safety`` is a column anyone who can write the store can change.

What a reader is shown (:func:`shown_safety`: ``hygiene proposals``, ``approve``'s
message, the JSON, the reports and their exports) is what apply will treat the proposal
as: safe only when the stored column says safe *and* the proposal's action and the rule
codes of its evidence (which its id and its approval's fingerprint cover) make it one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hygiene.model import Action, FixSafety
from hygiene.rules import RULES


def code_safety(code: str) -> FixSafety:
    """The fix safety rule ``code`` declares (an unknown code: unsafe)."""
    rule = RULES.get(code)
    return rule.fix_safety if rule is not None else FixSafety.UNSAFE


def safe_code(code: str, action: Action | None = None) -> bool:
    """Is ``code`` a rule whose fix is declared safe (IM001, IM004, SC001) and, with
    ``action``, one that proposes that action?"""
    if code_safety(code) is not FixSafety.SAFE:
        return False
    return action is None or RULES[code].action is action


# The actions a rule whose fix is declared safe proposes (delete-images: IM001, IM004;
# enable-scan-on-push: SC001). Any other action is never a safe fix, whatever is stored.
SAFE_ACTIONS: frozenset[Action] = frozenset(
    rule.action for rule in RULES.values() if safe_code(rule.code) and rule.action is not None
)


def content_safety(
    action: Action, target: Mapping[str, Any], evidence: Mapping[str, Any]
) -> FixSafety:
    """The safety the plan gives a proposal of this content: safe when ``action`` is in
    :data:`SAFE_ACTIONS` and a rule whose fix is safe and proposes ``action`` flags each
    image it deletes (the evidence's ``rule_codes`` by digest; a plain list counts for
    every image), or, for a repository setting, every rule it answers is one; unsafe
    otherwise (also for content of a shape no planner writes)."""
    try:
        return FixSafety.SAFE if _safe_content(action, target, evidence) else FixSafety.UNSAFE
    except (AttributeError, TypeError, ValueError):
        return FixSafety.UNSAFE


def _safe_content(action: Action, target: Mapping[str, Any], evidence: Mapping[str, Any]) -> bool:
    if action not in SAFE_ACTIONS:  # apply's first test (also implied by the codes' one)
        return False
    codes = evidence.get("rule_codes") or ()
    if action is Action.DELETE_IMAGES:
        digests = list(target.get("digests") or ())
        if isinstance(codes, Mapping):
            return bool(digests) and all(
                any(safe_code(str(c), action) for c in codes.get(d) or ()) for d in digests
            )
        return bool(digests) and any(safe_code(str(c), action) for c in codes)
    if isinstance(codes, str):
        return False
    codes = [str(c) for c in codes]
    return bool(codes) and all(safe_code(c, action) for c in codes)


def shown_safety(
    stored: FixSafety, action: Action, target: Mapping[str, Any], evidence: Mapping[str, Any]
) -> FixSafety:
    """What apply treats a proposal as, and so what every reader shows: safe only when the
    stored ``fix_safety`` says so and :func:`content_safety` agrees (otherwise unsafe:
    apply runs it only approved and past its grace date, as any fix that is not safe);
    a stored ``unsafe`` or ``manual`` as stored (apply never takes a fix as safer than
    its column says, and neither is read as one that runs sooner)."""
    if stored is FixSafety.SAFE:
        return content_safety(action, target, evidence)
    return stored


def shown_proposal_json(data: dict[str, Any]) -> dict[str, Any]:
    """A proposal's JSON (``Proposal.to_json``) with ``fix_safety`` as
    :func:`shown_safety` says; a stored value that differs is named in ``altered``."""
    stored = data.get("fix_safety")
    try:
        action = Action(str(data.get("action")))
        stored_safety = FixSafety(str(stored))
    except ValueError:
        return data
    shown = shown_safety(
        stored_safety, action, data.get("target") or {}, data.get("evidence") or {}
    )
    if shown is not stored_safety:
        altered = [c for c in data.get("altered") or () if c != "fix_safety"]
        data = {**data, "fix_safety": shown.value, "altered": [*altered, "fix_safety"]}
    return data
