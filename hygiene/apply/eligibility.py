"""Which stored proposals an apply may carry out now (:func:`eligibility`).

- *approved* ones; unsafe (and manual) ones only once their grace date has passed —
  a proposal whose owners were never notified has no grace date and never runs;
- *proposed* safe ones only when ``apply.auto_safe`` is on;
- never rejected, expired or finished ones.
"""

from __future__ import annotations

from datetime import datetime

from hygiene.config import Config
from hygiene.model import FixSafety, ProposalState
from hygiene.store import StoredProposal


def eligibility(stored: StoredProposal, config: Config, now: datetime) -> tuple[bool, str]:
    """May ``stored`` be applied at ``now``? Returns (yes/no, why)."""
    proposal = stored.proposal
    settings = config.policy.apply
    if proposal.state == ProposalState.APPROVED:
        if proposal.fix_safety != FixSafety.SAFE:
            if proposal.grace_until is None:
                return False, "approved, but owners were never notified (no grace date yet)"
            if now < proposal.grace_until:
                return False, f"approved, in grace period until {proposal.grace_until.isoformat()}"
        return True, f"approved by {stored.decided_by}"
    if proposal.state == ProposalState.PROPOSED:
        if proposal.fix_safety == FixSafety.SAFE and settings.auto_safe:
            return True, "safe fix and apply.auto_safe is on"
        if proposal.fix_safety == FixSafety.SAFE:
            return False, "safe fix awaiting approval (apply.auto_safe is off)"
        return False, "unsafe fix awaiting approval"
    return False, f"state is {proposal.state.value}"
