"""What one apply call carries through its steps: its result, its audit rows, the store.

:class:`ApplyResult` is what :func:`hygiene.apply.apply` returns. :class:`Recorder`
writes audit rows: committed to the store before it returns their ids, or (dry run) only
collected into the result, with negative ids. :func:`finish` records how a proposal ended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hygiene.config import Config
from hygiene.model import Proposal, ProposalState
from hygiene.store import Store

log = logging.getLogger(__name__)


ClientFactory = Callable[[str, str], Any]
"""``clients(account, region)`` → a boto3 ECR client for that registry."""


class SimulatedCrash(BaseException):
    """Raised by tests' fault injection; not an Exception so nothing swallows it."""


@dataclass
class ApplyResult:
    """What one :func:`hygiene.apply.apply` call did: each proposal's new state, why the
    others were not applied, and every audit row (only collected on a dry run)."""

    run_id: str | None
    dry_run: bool
    states: dict[str, tuple[str, str]] = field(default_factory=dict)  # id → (state, detail)
    not_eligible: dict[str, str] = field(default_factory=dict)  # id → why not
    events: list[dict[str, Any]] = field(default_factory=list)  # audit rows (written or not)
    api_calls: dict[str, int] = field(default_factory=dict)  # ECR operation → calls
    notes: list[str] = field(default_factory=list)  # said once, e.g. what a dry run checked
    # id → why: kept because IAM refused a read the re-check needs (hygiene.apply.retries)
    refused: dict[str, str] = field(default_factory=dict)
    # id → why: kept for a retry by apply.kept_alert_after applies in a row, this the last
    kept: dict[str, str] = field(default_factory=dict)

    def count(self, outcome: str) -> int:
        return sum(1 for e in self.events if e["outcome"] == outcome)

    @property
    def failed(self) -> list[str]:
        return [i for i, (state, _) in self.states.items() if state == ProposalState.FAILED]

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "proposals": {i: {"state": s, "detail": d} for i, (s, d) in self.states.items()},
            "not_eligible": self.not_eligible,
            "deleted": self.count("deleted"),
            "unverified": self.count("unverified"),
            "api_calls": self.api_calls,
            "notes": self.notes,
            "refused": self.refused,
            "kept": self.kept,
            "would_delete": self.count("would-delete"),
            "events": [
                {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in e.items()}
                for e in self.events
            ],
        }


class Recorder:
    """Audit rows: committed to the store, or (dry run) only collected."""

    def __init__(self, store: Store, result: ApplyResult, actor: str, now: datetime) -> None:
        self.store, self.result, self.actor, self.now = store, result, actor, now
        self._fake_id = 0

    def write(self, proposal: Proposal | None, rows: list[dict[str, Any]]) -> list[int]:
        full = []
        for row in rows:
            entry = {
                "run_id": self.result.run_id,
                "proposal_id": proposal.id if proposal else None,
                "actor": self.actor,
                "action": proposal.action.value if proposal else "apply",
                "account": proposal.account if proposal else None,
                "region": proposal.region if proposal else None,
                "repository": proposal.repository if proposal else None,
                "dry_run": self.result.dry_run,
                "at": datetime.now(UTC),
            }
            entry.update(row)
            if self.result.dry_run and entry["outcome"] == "deleted":
                entry["outcome"] = "would-delete"
            full.append(entry)
        if not full:
            return []
        if self.result.dry_run:
            ids = []
            for _entry in full:
                self._fake_id -= 1
                ids.append(self._fake_id)
        else:
            ids = self.store.audit_many(full)
        self.result.events.extend(full)
        return ids


@dataclass
class Context:
    """What every step of one apply call shares."""

    store: Store
    clients: ClientFactory
    config: Config
    now: datetime
    recorder: Recorder
    result: ApplyResult
    # what runs now (hygiene.apply.in_use.InUseCheck); None: no re-check (tests, tools)
    in_use: Any = None

    @property
    def dry_run(self) -> bool:
        return self.result.dry_run


def finish(ctx: Context, proposal: Proposal, state: ProposalState, detail: str) -> None:
    """Record that ``proposal`` ended as ``state`` (in the store unless a dry run)."""
    ctx.result.states[proposal.id] = (state.value, detail)
    if not ctx.dry_run:
        ctx.store.set_state(proposal.id, state, detail, ctx.now)
    log.info("%s %s: %s (%s)", proposal.id, proposal.action.value, state.value, detail)
