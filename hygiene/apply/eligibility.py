"""Which stored proposals an apply may carry out now (:func:`eligibility`).

- *approved* ones; unsafe (and manual) ones only once their grace date has passed —
  a proposal whose owners were never notified has no grace date and never runs;
- *proposed* safe ones only when ``apply.auto_safe`` is on;
- never rejected, expired or finished ones;
- and, whatever its state, only a proposal *confirmed* by the latest scan of its
  repository, when that scan read the repository completely (:func:`confirmation`):
  an incomplete scan never feeds an apply.
"""

from __future__ import annotations

from datetime import datetime

from hygiene.config import Config
from hygiene.model import FixSafety, ProposalState
from hygiene.store import RepositoryScan, StoredProposal


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


def confirmation(stored: StoredProposal, scan: RepositoryScan) -> tuple[bool, str]:
    """Was ``stored`` confirmed by the latest scan of its repository, a complete one?

    ``scan`` is the store's record of that repository's scans. A proposal is confirmed
    when a scan that read its repository completely proposed it again; it may run only
    if no scan of the repository since then was incomplete (the evidence may be out of
    date where the scan could not look) and no later complete scan dropped it (its
    finding is gone: a protection, an image now in use, changed evidence).
    """
    where = stored.proposal.repository
    confirmed = stored.confirmed_at
    last_bad = scan.last_incomplete_at
    if confirmed is None:
        why = f"not confirmed by any complete scan of {where} yet"
        if last_bad is not None:
            why += (
                f": the scan {scan.last_incomplete_run} at {last_bad.isoformat()} could not "
                f"read it completely ({scan.last_error})"
            )
        return False, why
    if last_bad is not None and last_bad >= confirmed:
        return False, (
            f"the scan {scan.last_incomplete_run} at {last_bad.isoformat()} could not read "
            f"{where} completely ({scan.last_error}); waiting for a complete scan to confirm it"
        )
    if scan.last_scan_at is not None and scan.last_scan_at > confirmed:
        return False, (
            f"not proposed again by the latest scan of {where} ({scan.last_scan_run} at "
            f"{scan.last_scan_at.isoformat()}; confirmed by {stored.confirmed_by} at "
            f"{confirmed.isoformat()})"
        )
    return True, f"confirmed by {stored.confirmed_by} at {confirmed.isoformat()}"
