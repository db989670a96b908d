"""Value types passed between the pure stages: findings, kept images, proposals.

They are plain (frozen, except ``Finding``) dataclasses with ``to_json`` so the JSON contract of
``hygiene scan --format json`` (docs/json-contract.md) is defined in one place.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "error": 2}[self.value]


class FixSafety(StrEnum):
    SAFE = "safe"
    UNSAFE = "unsafe"
    MANUAL = "manual"


@dataclass(slots=True)
class Finding:
    """One rule violation. ``image_digest`` is None for repository/namespace rules.

    Treat it as immutable. It is not a frozen dataclass on purpose: a first scan of a
    neglected registry builds one per flagged image (593k at 1M images), and a frozen
    dataclass's ``__init__`` (one ``object.__setattr__`` per field) took twice as long
    as a plain slotted one — seconds of the rules engine's budget (docs/benchmarks.md).
    """

    code: str
    rule: str
    severity: Severity
    account: str
    region: str
    repository: str | None
    namespace: str | None
    message: str
    fix: str
    fix_safety: FixSafety
    image_digest: str | None = None
    tags: tuple[str, ...] = ()
    bytes: int = 0  # reclaimable bytes (image rules)
    details: dict[str, Any] = field(default_factory=dict)  # rule-specific (rename maps …)
    # ``message`` as a template (the gettext id) and its parameters: reports render it in
    # their language (hygiene.messages); empty for a message that has no template
    message_template: str = ""
    message_params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        details, params = _plain_copy(self.details), _plain_copy(self.message_params)
        if type(self) is not Finding or details is None or params is None:
            data = asdict(self)
            data["severity"] = self.severity.value
            data["fix_safety"] = self.fix_safety.value
            data["tags"] = list(self.tags)
            return data
        # what asdict makes, without its walk of every field, in the fields' order
        return {
            "code": self.code,
            "rule": self.rule,
            "severity": self.severity.value,
            "account": self.account,
            "region": self.region,
            "repository": self.repository,
            "namespace": self.namespace,
            "message": self.message,
            "fix": self.fix,
            "fix_safety": self.fix_safety.value,
            "image_digest": self.image_digest,
            "tags": list(self.tags),
            "bytes": self.bytes,
            "details": details,
            "message_template": self.message_template,
            "message_params": params,
        }


_ATOMS = frozenset({str, int, float, bool, type(None)})


def _plain_copy(value: Any) -> dict[str, Any] | None:
    """The copy ``dataclasses.asdict`` makes of a dict (not a subclass) with text keys
    whose values are text, numbers, bools or None (``copy.deepcopy`` gives those back
    as they are), or lists of them (copied); None for anything else."""
    if type(value) is not dict or not set(map(type, value)) <= {str}:
        return None
    kinds = set(map(type, value.values()))
    if kinds <= _ATOMS:
        return dict(value)
    if not kinds <= _ATOMS | {list}:
        return None
    lists = [v for v in value.values() if type(v) is list]
    if not set(map(type, itertools.chain.from_iterable(lists))) <= _ATOMS:
        return None
    return {key: list(v) if type(v) is list else v for key, v in value.items()}


@dataclass(frozen=True)
class KeptImage:
    """An image a rule would have flagged for deletion but a protection kept."""

    account: str
    region: str
    repository: str
    image_digest: str
    tags: tuple[str, ...]
    reasons: tuple[str, ...]  # e.g. "child-of-kept-index", "protected-tag:prod"

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "region": self.region,
            "repository": self.repository,
            "image_digest": self.image_digest,
            "tags": list(self.tags),
            "reasons": list(self.reasons),
        }


class Action(StrEnum):
    DELETE_IMAGES = "delete-images"
    DELETE_REPOSITORY = "delete-repository"
    PUT_LIFECYCLE_POLICY = "put-lifecycle-policy"
    ENABLE_SCAN_ON_PUSH = "enable-scan-on-push"
    SET_TAG_IMMUTABILITY = "set-tag-immutability"
    REMOVE_POLICY_STATEMENT = "remove-policy-statement"


class ProposalState(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    APPLIED = "applied"
    FAILED = "failed"
    SKIPPED = "skipped"


def iso_utc(value: datetime | None) -> str | None:
    """A time as the JSON outputs write it: ISO 8601 in UTC, ``2026-11-28T03:00:00+00:00``.

    None for None and for pandas' ``NaT`` (a missing time in a frame; a ``Timestamp`` is
    a datetime, so frame cells need no conversion first).
    """
    if value is None or value != value:  # NaT is the only datetime not equal to itself
        return None
    return value.astimezone(UTC).isoformat()


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped ``value`` (dicts, lists and tuples are copied; strings,
    numbers, booleans and None are immutable), as ``dataclasses.asdict`` copies a field."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    if isinstance(value, tuple):
        return tuple(copy_json(item) for item in value)
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def proposal_id(
    action: Action, target: dict[str, Any], evidence: dict[str, Any], *, plain: bool = False
) -> str:
    """Deterministic id: the same action on the same target with the same evidence
    gets the same id on every nightly run, so re-runs refresh instead of duplicating.

    ``plain`` says the values hold only strings, integers, booleans, None, lists and
    dicts with string keys (no floats): then orjson writes the canonical text, the same
    bytes as :func:`canonical_json` whenever they are ASCII without DEL (and otherwise it
    is used).
    A delete proposal's evidence can be megabytes.
    """
    value = [action.value, target, evidence]
    if plain:
        import orjson

        try:
            text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # an integer beyond 64 bits, a key that is not a string
            text = b""
        # ASCII but DEL (0x7f), which json.dumps escapes as \u007f and orjson writes as is
        if text and text.isascii() and b"\x7f" not in text:
            return "p-" + hashlib.sha256(text).hexdigest()[:12]
    digest = hashlib.sha256(canonical_json(value).encode())
    return "p-" + digest.hexdigest()[:12]


@dataclass(frozen=True)
class Proposal:
    """A change to the registry that needs (safe) config or (unsafe) an admin to run."""

    id: str
    action: Action
    account: str
    region: str
    repository: str
    namespace: str | None
    target: dict[str, Any]  # e.g. {"digests": [...]} or {"policy": "..."}
    evidence: dict[str, Any]  # digests, tags, pushed/pulled times, bytes, rule codes
    rule_codes: tuple[str, ...]
    fix_safety: FixSafety
    bytes: int = 0
    summary: str = ""
    state: ProposalState = ProposalState.PROPOSED
    first_seen: datetime | None = None
    grace_until: datetime | None = None

    def to_json(self, *, copy: bool = True) -> dict[str, Any]:
        """The proposal as JSON values. ``target`` and ``evidence`` are copies, unless
        ``copy`` is false: then they are the proposal's own (for a writer that only reads
        them; a delete proposal can hold thousands of evidence entries)."""
        return {
            "id": self.id,
            "action": self.action.value,
            "account": self.account,
            "region": self.region,
            "repository": self.repository,
            "namespace": self.namespace,
            "target": copy_json(self.target) if copy else self.target,
            "evidence": copy_json(self.evidence) if copy else self.evidence,
            "rule_codes": list(self.rule_codes),
            "fix_safety": self.fix_safety.value,
            "bytes": self.bytes,
            "summary": self.summary,
            "state": self.state.value,
            "first_seen": self.first_seen.isoformat() if self.first_seen is not None else None,
            "grace_until": self.grace_until.isoformat() if self.grace_until is not None else None,
        }
