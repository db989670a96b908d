"""The entry point :func:`apply`: lock, record the run, reconcile, then each proposal."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError

from hygiene.apply.context import ApplyResult, ClientFactory, Context, Recorder
from hygiene.apply.eligibility import eligibility
from hygiene.apply.images import apply_images
from hygiene.apply.in_use import InUseCheck, InUseUnknownError
from hygiene.apply.reconcile import reconcile
from hygiene.apply.repository import REPOSITORY_STEPS, apply_repository
from hygiene.config import Config
from hygiene.errors import ApplyError
from hygiene.model import Action, ProposalState
from hygiene.store import Store, whoami


def apply(
    store: Store,
    clients: ClientFactory,
    config: Config,
    now: datetime | None = None,
    *,
    dry_run: bool = False,
    actor: str | None = None,
    ids: Iterable[str] | None = None,
    approved: bool = True,
    stop: threading.Event | None = None,
    in_use: InUseCheck | None = None,
) -> ApplyResult:
    """Apply every eligible proposal (or only ``ids``) under the store's ``apply`` lock.

    ``stop`` (the jobs' stop flag, set on SIGTERM/SIGINT) is checked before each
    proposal: the one in progress finishes its batches and records them; the rest are
    left for next time.

    ``approved=False`` leaves approved proposals alone; safe proposals run when
    ``config.policy.apply.auto_safe`` is on. (The nightly job selects its proposals
    itself and passes their ``ids``, see :func:`hygiene.wiring.apply_with`.) Raises
    :class:`LockHeldError` when another apply runs. Returns an :class:`ApplyResult`;
    ``result.failed`` lists failed ids. A dry run takes no lock and records no run.

    ``in_use`` re-reads the workloads right before image deletions (docs/in-use.md): an
    image that became in use is skipped, and nothing is deleted while a source cannot be
    read. The CLI and the jobs always pass one.
    """
    now = now or datetime.now(UTC)
    actor = actor or whoami()
    result = ApplyResult(run_id=None, dry_run=dry_run)
    recorder = Recorder(store, result, actor, now)
    if dry_run:
        _run(store, clients, config, now, result, recorder, ids, approved, stop, in_use)
        return result
    with store.lock("apply"):
        result.run_id = store.record_run("apply", started_at=now, source=actor)
        try:
            _run(store, clients, config, now, result, recorder, ids, approved, stop, in_use)
        except Exception as exc:
            store.finish_run(result.run_id, "failed", counts=_counts(result), errors=[str(exc)])
            raise
        except BaseException:
            # Killed (KeyboardInterrupt, a test's SimulatedCrash): the open intent row is
            # what the next run reconciles; leave the run marked as failed if we can.
            store.finish_run(
                result.run_id, "failed", counts=_counts(result), errors=["interrupted"]
            )
            raise
        status = "failed" if result.failed else "ok"
        store.finish_run(result.run_id, status, counts=_counts(result))
    return result


def _counts(result: ApplyResult) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in result.events:
        counts[event["outcome"]] = counts.get(event["outcome"], 0) + 1
    for state, _ in result.states.values():
        counts[f"proposals_{state}"] = counts.get(f"proposals_{state}", 0) + 1
    return counts


def _run(
    store: Store,
    clients: ClientFactory,
    config: Config,
    now: datetime,
    result: ApplyResult,
    recorder: Recorder,
    ids: Iterable[str] | None,
    approved: bool,
    stop: threading.Event | None = None,
    in_use: InUseCheck | None = None,
) -> None:
    ctx = Context(store, clients, config, now, recorder, result, in_use)
    if not result.dry_run:
        reconcile(ctx)
    wanted = None if ids is None else list(ids)
    candidates = store.proposals(state=[ProposalState.PROPOSED, ProposalState.APPROVED], ids=wanted)
    if wanted is not None:
        known = {c.id for c in candidates}
        for proposal_id in wanted:
            if proposal_id not in known:
                result.not_eligible[proposal_id] = "unknown, or not proposed/approved"
    for stored in candidates:
        if stop is not None and stop.is_set():
            result.not_eligible[stored.id] = "not started: the run was asked to stop"
            continue
        ok, why = eligibility(stored, config, now)
        if ok and not approved and stored.state == ProposalState.APPROVED:
            ok, why = False, "approved proposals are not applied by this run (apply.apply_approved)"
        if not ok:
            result.not_eligible[stored.id] = why
            continue
        proposal = stored.proposal
        try:
            # the cleaner of the proposal's own account, or ApplyError when the registry
            # no longer lists that account (nothing is done there)
            ctx.clients(proposal.account, proposal.region)
        except ApplyError as exc:
            result.not_eligible[stored.id] = exc.message
            continue
        except (ClientError, BotoCoreError) as exc:  # its cleaner role cannot be assumed
            recorder.write(proposal, [{"outcome": "retry", "detail": f"no client: {exc}"}])
            result.states[proposal.id] = (proposal.state.value, f"no client: {exc}")
            continue
        try:
            if proposal.action == Action.DELETE_IMAGES:
                apply_images(ctx, proposal)
            elif proposal.action in REPOSITORY_STEPS:
                apply_repository(ctx, proposal)
            else:  # pragma: no cover - every Action has a step
                raise ApplyError(f"{proposal.id}: no way to apply {proposal.action.value}")
        except InUseUnknownError as exc:
            # The workloads could not be read right before deleting: delete nothing; the
            # proposal stays as it is and the next apply tries again.
            recorder.write(proposal, [{"outcome": "retry", "detail": str(exc)}])
            result.states[proposal.id] = (proposal.state.value, str(exc))
        except (ClientError, BotoCoreError) as exc:
            # A read failed (throttled beyond botocore's retries, access denied …): nothing
            # was written for this proposal after its last recorded batch; try the next.
            recorder.write(proposal, [{"outcome": "retry", "detail": f"could not re-read: {exc}"}])
            result.states[proposal.id] = (proposal.state.value, f"could not re-read: {exc}")
