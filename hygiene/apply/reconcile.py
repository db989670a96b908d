"""Crash recovery: answer the ``intent`` rows a killed run left without outcomes.

The intent row is committed before each write call and outcome rows point back at it,
so an intent without outcomes is a write that may or may not have happened. For an image
batch the targets are re-read: gone now → ``deleted``; still there → ``not-deleted``
(the proposal stays approved and the same run retries it). For a repository-level write
an ``interrupted`` row is recorded and the step re-checks the live state when it runs.
"""

from __future__ import annotations

from hygiene.apply.context import Context
from hygiene.apply.registry import describe_digests
from hygiene.model import Action


def reconcile(ctx: Context) -> int:
    """Answer intents a killed run left open; returns how many were reconciled."""
    intents = ctx.store.open_intents()
    for intent in intents:
        stored = ctx.store.get(intent.proposal_id) if intent.proposal_id else None
        if stored is None:
            ctx.store.audit(
                "reconcile",
                "not-deleted",
                intent_id=intent.id,
                actor=ctx.recorder.actor,
                run_id=ctx.result.run_id,
                detail="intent of an unknown proposal",
            )
            continue
        proposal = stored.proposal
        if proposal.action != Action.DELETE_IMAGES:
            ctx.recorder.write(
                proposal,
                [
                    {
                        "intent_id": intent.id,
                        "outcome": "interrupted",
                        "detail": f"run {intent.run_id} stopped during this write; re-checked now",
                    }
                ],
            )
            continue
        digests = list(intent.data.get("digests", []))
        client = ctx.clients(proposal.account, proposal.region)
        live, _missing = describe_digests(client, proposal, digests)
        ctx.recorder.write(
            proposal,
            [
                {
                    "digest": d,
                    "intent_id": intent.id,
                    "outcome": "not-deleted" if d in live else "deleted",
                    "detail": (
                        f"run {intent.run_id} stopped before deleting it; retried now"
                        if d in live
                        else f"deleted by run {intent.run_id}, which stopped before recording it"
                    ),
                }
                for d in digests
            ],
        )
    return len(intents)
