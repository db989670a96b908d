"""Is a proposal's grace date one apply may trust? (:func:`trusted_grace`)

A proposal's ``notified_at`` and ``grace_until`` decide when an approved unsafe fix may
run, and whether an approved safe one still runs as a safe fix only. They are columns of
the store, so apply believes them only when the audit trail backs them: the
``grace-started`` row :meth:`hygiene.store.Store.mark_notified` wrote in the same
transaction, at the very moment of ``notified_at``, by a run that was going at that
moment (when the row names one). Otherwise the proposal is taken as one whose owners
were never told: it has no grace date, an unsafe fix is kept (with an ``unverified``
audit row saying why) and a safe one runs only as a safe fix. The grace apply counts is
never shorter than its own configuration's ``apply.grace_days`` from the notice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from hygiene.store import AuditEntry, RunRecord, StoredProposal

JOB_KINDS = frozenset({"nightly", "weekly"})
"""The runs whose reports start grace periods."""


def trusted_grace(
    stored: StoredProposal,
    notices: Sequence[AuditEntry],
    runs: Mapping[str, RunRecord],
    grace_days: int,
) -> tuple[StoredProposal, str | None]:
    """``stored`` with the grace date apply trusts, and why it trusts none (None: it
    trusts the stored one, or there is none to trust)."""
    proposal = stored.proposal
    notified, grace = stored.notified_at, proposal.grace_until
    if notified is None and grace is None:
        return stored, None
    why = _doubt(stored, notices, runs)
    if why is not None:
        untrusted = replace(stored, proposal=replace(proposal, grace_until=None))
        return untrusted, why
    assert notified is not None and grace is not None
    longest = max(grace, notified + timedelta(days=grace_days))
    if longest == grace:
        return stored, None
    return replace(stored, proposal=replace(proposal, grace_until=longest)), None


def _doubt(
    stored: StoredProposal, notices: Sequence[AuditEntry], runs: Mapping[str, RunRecord]
) -> str | None:
    proposal = stored.proposal
    notified, grace = stored.notified_at, proposal.grace_until
    if notified is None or grace is None:
        return (
            f"its grace date ({_iso(grace)}) and notice ({_iso(notified)}) do not go "
            "together: one is set without the other"
        )
    backing = [n for n in notices if n.at == notified]
    if not backing:
        return (
            f"no grace-started audit row backs its notice at {_iso(notified)} (grace date "
            f"{_iso(grace)}): the dates were written to the store without a report reaching "
            "anyone"
        )
    for entry in backing:
        if entry.run_id is None:
            return None  # written by the store itself, or backfilled by migration 0008
        run = runs.get(entry.run_id)
        if run is None or run.kind not in JOB_KINDS:
            continue
        if run.started_at <= notified and (run.finished_at is None or notified <= run.finished_at):
            return None
    names = ", ".join(sorted({str(n.run_id) for n in backing}))
    return (
        f"its notice at {_iso(notified)} names run(s) {names}, but no nightly or weekly run "
        "of the store was going at that moment"
    )


def _iso(when: datetime | None) -> str:
    return "none" if when is None else when.isoformat()
