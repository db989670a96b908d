"""Which decision stands for a proposal, and whether an approval can be verified.

Pure functions over plain data: apply calls :func:`verify_approval` for every approved
proposal it is about to carry out, with the deployed :class:`TrustPolicy` and, only when
its own registry is the demo's embedded one, the demo id it verified itself.

A decision is bound to the proposal it decided on by :func:`content_hash`: action,
account, region, repository, target, evidence, safety and ``first_seen``. A proposal
whose content changed after the decision, or that was proposed again after it finished
(a new ``first_seen``), has no standing decision: it needs a new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hygiene.authz.policy import TrustPolicy
from hygiene.model import Proposal, ProposalState, canonical_json

APPROVED = ProposalState.APPROVED.value
REJECTED = ProposalState.REJECTED.value


@dataclass(frozen=True)
class Decision:
    """One row of the decision history (``approvals`` table): append-only."""

    id: int
    proposal_id: str
    decision: str  # approved | rejected
    approver: str
    reason: str | None
    at: datetime
    content_hash: str | None  # None: recorded before decisions were bound to content
    source: str | None  # "sts", or "demo:<demo id>" for an os: identity
    db_user: str | None = None  # the database login that wrote it (PostgreSQL)

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "approver": self.approver,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "source": self.source,
            "db_user": self.db_user,
        }


def content_hash(proposal: Proposal) -> str:
    """SHA-256 of what a decision decides on (see the module docstring)."""
    first_seen = proposal.first_seen.isoformat() if proposal.first_seen else None
    content = {
        "id": proposal.id,
        "action": proposal.action.value,
        "account": proposal.account,
        "region": proposal.region,
        "repository": proposal.repository,
        "target": proposal.target,
        "evidence": proposal.evidence,
        "fix_safety": proposal.fix_safety.value,
        "first_seen": first_seen,
    }
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


def standing_decision(proposal: Proposal, decisions: Iterable[Decision]) -> Decision | None:
    """The newest decision made on ``proposal`` exactly as it is now, or None."""
    digest = content_hash(proposal)
    mine = [d for d in decisions if d.proposal_id == proposal.id and d.content_hash == digest]
    return max(mine, key=lambda d: d.id) if mine else None


@dataclass(frozen=True)
class Verdict:
    counts: bool
    why: str
    decision: Decision | None = None


def verify_approval(
    proposal: Proposal,
    decisions: Iterable[Decision],
    policy: TrustPolicy,
    demo_id: str | None,
) -> Verdict:
    """May apply act on ``proposal``'s approval?

    Counts only when the standing decision is an approval whose approver is an admin
    of ``policy``; an ``os:`` approver only inside the demo ``demo_id`` that the applying
    process verified itself, and only for an approval made in that same demo."""
    decision = standing_decision(proposal, decisions)
    if decision is None:
        return Verdict(
            False,
            "no approval on record matches this proposal as stored (it changed after "
            "the approval, or was proposed again since)",
        )
    if decision.decision != APPROVED:
        return Verdict(
            False, f"the standing decision is {decision.decision} by {decision.approver}", decision
        )
    approver = decision.approver
    if approver.startswith("os:"):
        if demo_id is None:
            return Verdict(
                False,
                f"approved by {approver}: an os: identity counts only inside the demo "
                "that issued it, and this apply does not run against a demo registry",
                decision,
            )
        if decision.source != f"demo:{demo_id}":
            return Verdict(
                False,
                f"approved by {approver} in {decision.source or 'no demo'}, not in this "
                f"demo (demo:{demo_id})",
                decision,
            )
    elif decision.source != "sts":
        return Verdict(
            False, f"approved by {approver} with identity source {decision.source!r}", decision
        )
    entry = policy.admin_entry(approver)
    if entry is None:
        return Verdict(
            False,
            f"approved by {approver}, who is not an admin of the deployed configuration",
            decision,
        )
    return Verdict(True, f"approved by {approver} (admins: {entry.text})", decision)
