"""Which stored proposals an apply may carry out now (:func:`eligibility`).

- *approved* ones; unsafe (and manual) ones only once their grace date has passed —
  a proposal whose owners were never notified has no grace date and never runs;
- *proposed* safe ones only when ``apply.auto_safe`` is on;
- a proposal that runs only because its stored ``fix_safety`` says safe (:func:`as_safe_fix`)
  is checked again against the deployed rules: its action must be one a rule whose fix is
  safe proposes (:data:`SAFE_ACTIONS`), and each image must be flagged now by such a rule
  (:meth:`hygiene.apply.recheck.RulesNow.why_not`);
- never rejected, expired or finished ones;
- and, whatever its state, only a proposal *confirmed* by the latest scan of its
  repository, when that scan read the repository completely (:func:`confirmation`):
  an incomplete scan never feeds an apply.
"""

from __future__ import annotations

from datetime import datetime

from hygiene.config import Config
from hygiene.fixsafety import SAFE_ACTIONS
from hygiene.model import FixSafety, ProposalState
from hygiene.store import RepositoryScan, StoredProposal

__all__ = ["SAFE_ACTIONS", "as_safe_fix", "confirmation", "eligibility", "safe_fix_refused"]


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


def as_safe_fix(stored: StoredProposal, now: datetime) -> bool:
    """Does ``stored`` run only because its stored ``fix_safety`` says safe: proposed and
    applied by ``apply.auto_safe``, or approved and let past a grace period it has not
    served? Such a proposal's safety is a column of the store, so apply checks it again
    against the deployed rules (module docstring)."""
    proposal = stored.proposal
    if proposal.fix_safety != FixSafety.SAFE:
        return False
    if proposal.state == ProposalState.PROPOSED:
        return True
    return proposal.grace_until is None or now < proposal.grace_until


def safe_fix_refused(stored: StoredProposal, now: datetime) -> str | None:
    """Why ``stored`` may not run as the safe fix it claims to be (None: it may): no rule
    whose fix is safe proposes its action."""
    action = stored.proposal.action
    if as_safe_fix(stored, now) and action not in SAFE_ACTIONS:
        return (
            f"marked safe, but no rule whose fix is safe proposes {action.value}: it needs "
            "an approval and its grace period"
        )
    return None


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
