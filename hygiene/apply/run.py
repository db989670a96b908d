"""The entry point :func:`apply`: lock, record the run, reconcile, then each proposal."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

from hygiene.apply.context import ApplyResult, ClientFactory, Context, Recorder
from hygiene.apply.eligibility import as_safe_fix, confirmation, eligibility, safe_fix_refused
from hygiene.apply.images import apply_images
from hygiene.apply.in_use import InUseCheck, InUseUnknownError
from hygiene.apply.notice import trusted_grace
from hygiene.apply.recheck import RecheckError
from hygiene.apply.reconcile import reconcile
from hygiene.apply.repository import (
    REPOSITORY_STEPS,
    apply_repository,
    apply_repository_deletion,
)
from hygiene.apply.retries import (
    FIX_HINT,
    in_use_hint,
    kept_in_a_row,
    refused_read,
)
from hygiene.apply.trust import Verifier, applying_policy
from hygiene.authz import Identity
from hygiene.collect.session import ApiCallCounter
from hygiene.config import Config
from hygiene.errors import ApplyError, CollectError
from hygiene.model import Action, FixSafety, ProposalState
from hygiene.store import Store, whoami

# ClientError codes that mean "these credentials cannot talk to this registry at all".
UNREACHABLE_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
    }
)


class RegistryUnreachable(CollectError):
    """The registry cannot be reached with these credentials (exit 6): apply stops."""


def unreachable(exc: BaseException) -> bool:
    """Is ``exc`` the registry being unreachable (no connection, no or bad credentials)
    rather than one request failing?"""
    if isinstance(exc, EndpointConnectionError | NoCredentialsError):
        return True
    return isinstance(exc, ClientError) and (
        str(exc.response.get("Error", {}).get("Code", "")) in UNREACHABLE_CODES
    )


@contextmanager
def _unreachable_stops() -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        if unreachable(exc):
            raise RegistryUnreachable(
                f"the registry is unreachable: {exc}; nothing more was tried (approved "
                "proposals stay approved)"
            ) from exc
        raise


def counting(
    clients: ClientFactory, counter: ApiCallCounter
) -> tuple[ClientFactory, Callable[[], None]]:
    """``clients`` whose API calls ``counter`` counts, and a function that stops counting."""
    hooked: dict[int, Any] = {}
    unique = f"hygiene-apply-{id(counter)}"

    def factory(account: str, region: str) -> Any:
        ecr_client = clients(account, region)
        if id(ecr_client) not in hooked:
            events = ecr_client.meta.events
            events.register("before-call.ecr.*", counter.on_before_call, unique_id=unique)
            events.register("after-call.ecr.*", counter.on_after_call, unique_id=unique + "-a")
            hooked[id(ecr_client)] = ecr_client
        return ecr_client

    def detach() -> None:
        for hooked_client in hooked.values():
            hooked_client.meta.events.unregister("before-call.ecr.*", unique_id=unique)
            hooked_client.meta.events.unregister("after-call.ecr.*", unique_id=unique + "-a")

    return factory, detach


def apply(
    store: Store,
    clients: ClientFactory,
    config: Config,
    now: datetime | None = None,
    *,
    dry_run: bool = False,
    actor: Identity | str | None = None,
    ids: Iterable[str] | None = None,
    approved: bool = True,
    stop: threading.Event | None = None,
    locked: bool = False,
    demo_id: str | None = None,
    in_use: InUseCheck | None = None,
) -> ApplyResult:
    """Apply every eligible proposal (or only ``ids``) under the store's registry lock.

    Approvals are verified first (:mod:`hygiene.apply.trust`): ``config`` must be the
    deployed configuration (its trust policy pinned in the store), and every approval's
    approver an admin of it; ``os:`` approvals count only when ``demo_id`` is the demo
    this process proved its registry to be (:func:`hygiene.authz.identity.demo_context`).

    ``locked=True``: the caller already holds :data:`hygiene.store.REGISTRY_LOCK` (a
    nightly job); otherwise apply takes it and raises :class:`LockHeldError` when
    another run holds it. ``stop`` (the jobs' stop flag, set on SIGTERM/SIGINT) is
    checked before each proposal: the one in progress finishes its batches and records
    them; the rest are left for next time.

    ``approved=False`` leaves approved proposals alone; safe proposals run when
    ``config.policy.apply.auto_safe`` is on. An unreachable registry (no connection, no
    or rejected credentials) raises :class:`RegistryUnreachable` (exit 6) after the run
    is recorded ``failed``. Returns an :class:`ApplyResult` with the API calls made;
    ``result.failed`` lists failed ids. A dry run takes no lock and records no run.

    ``in_use`` re-reads the workloads right before image deletions (docs/in-use.md): an
    image that became in use is skipped, and nothing is deleted while a source cannot be
    read. The CLI and the jobs always pass one.
    """
    now = now or datetime.now(UTC)
    actor_name = str(actor) if actor is not None else whoami()
    result = ApplyResult(run_id=None, dry_run=dry_run)
    recorder = Recorder(store, result, actor_name, now)
    policy, note = applying_policy(store, config, dry_run=dry_run)
    if note:
        result.notes.append(note)
    verifier = Verifier(policy, demo_id, {})
    counter = ApiCallCounter()
    counted, detach = counting(clients, counter)
    job = _Job(store, counted, config, now, result, recorder, ids, approved, stop, verifier, in_use)
    try:
        if dry_run:
            with _unreachable_stops():
                _run(job)
            return result
        with store.lock() if not locked else nullcontext():
            result.run_id = store.record_run("apply", started_at=now, source=actor_name)
            try:
                with _unreachable_stops():
                    _run(job)
            except Exception as exc:
                result.api_calls = counter.as_dict()
                store.finish_run(
                    result.run_id,
                    "failed",
                    counts=_counts(result),
                    api_calls=result.api_calls,
                    errors=[str(exc)],
                )
                raise
            except BaseException:
                # Killed (KeyboardInterrupt, a test's SimulatedCrash): the open intent row
                # is what the next run reconciles; leave the run marked failed if we can.
                store.finish_run(
                    result.run_id,
                    "failed",
                    counts=_counts(result),
                    api_calls=counter.as_dict(),
                    errors=["interrupted"],
                )
                raise
            _kept_too_long(store, result, config.policy.apply.kept_alert_after)
            result.api_calls = counter.as_dict()
            status = "failed" if result.failed or result.refused else "ok"
            store.finish_run(
                result.run_id,
                status,
                counts=_counts(result),
                api_calls=result.api_calls,
                errors=[f"{i}: {why}" for i, why in {**result.refused, **result.kept}.items()],
            )
        return result
    finally:
        result.api_calls = counter.as_dict()
        detach()


KEPT_STATES = frozenset({ProposalState.PROPOSED.value, ProposalState.APPROVED.value})


def _kept_too_long(store: Store, result: ApplyResult, after: int) -> None:
    """``result.kept``: the proposals this run kept for a retry that the apply runs before
    it kept as well, ``after`` (``apply.kept_alert_after``) in a row with this one
    (exactly: reported once, not by every later run). Refused reads are reported by the
    run's failure."""
    for proposal_id, (state, detail) in result.states.items():
        # only those this run left as they were (a finished one made progress)
        if proposal_id in result.refused or state not in KEPT_STATES:
            continue
        if kept_in_a_row(store, proposal_id) == after:
            result.kept[proposal_id] = (
                f"kept for the next apply by {after} applies in a row, nothing deleted: {detail}"
            )


def _keep(recorder: Recorder, result: ApplyResult, proposal: Any, detail: str, exc: Any) -> None:
    """Keep ``proposal`` as it is for the next apply (a ``retry`` row); a read IAM refused
    goes to ``result.refused`` too: it fails the run (hygiene.apply.retries)."""
    code = refused_read(exc)
    if code is not None:
        hint = in_use_hint(exc.refused) if isinstance(exc, InUseUnknownError) else FIX_HINT
        detail = f"a read was refused ({code}): {detail}; {hint}"
        result.refused[proposal.id] = detail
    row: dict[str, Any] = {"outcome": "retry", "detail": detail}
    if code is not None:
        row["data"] = {"access_denied": True}
    recorder.write(proposal, [row])
    result.states[proposal.id] = (proposal.state.value, detail)


def _counts(result: ApplyResult) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in result.events:
        counts[event["outcome"]] = counts.get(event["outcome"], 0) + 1
    for state, _ in result.states.values():
        counts[f"proposals_{state}"] = counts.get(f"proposals_{state}", 0) + 1
    return counts


class _Job:
    """The arguments of one :func:`apply` call, handed to :func:`_run`."""

    def __init__(
        self,
        store: Store,
        clients: ClientFactory,
        config: Config,
        now: datetime,
        result: ApplyResult,
        recorder: Recorder,
        ids: Iterable[str] | None,
        approved: bool,
        stop: threading.Event | None,
        verifier: Verifier,
        in_use: InUseCheck | None = None,
    ) -> None:
        self.ctx = Context(store, clients, config, now, recorder, result, in_use)
        self.ids = None if ids is None else list(ids)
        self.approved = approved
        self.stop = stop
        self.verifier = verifier


def _run(job: _Job) -> None:
    ctx, result, recorder = job.ctx, job.ctx.result, job.ctx.recorder
    store, config, now, stop = ctx.store, ctx.config, ctx.now, job.stop
    if not result.dry_run:
        reconcile(ctx)
    wanted = job.ids
    candidates = store.proposals(state=[ProposalState.PROPOSED, ProposalState.APPROVED], ids=wanted)
    if wanted is not None:
        known = {c.id for c in candidates}
        for proposal_id in wanted:
            if proposal_id not in known:
                result.not_eligible[proposal_id] = "unknown, or not proposed/approved"
    scans = store.repository_scans(
        (c.proposal.account, c.proposal.region, c.proposal.repository) for c in candidates
    )
    # the audit trail of each grace date (hygiene.apply.notice): a date that only the
    # proposals table holds is not trusted
    noticed = [c.id for c in candidates if c.notified_at or c.proposal.grace_until]
    notices = store.notices(noticed) if noticed else {}
    runs = store.runs_by_id(n.run_id for rows in notices.values() for n in rows if n.run_id)
    for stored in candidates:
        if stop is not None and stop.is_set():
            result.not_eligible[stored.id] = "not started: the run was asked to stop"
            continue
        grace_days = config.policy.apply.grace_days
        stored, doubt = trusted_grace(stored, notices.get(stored.id, ()), runs, grace_days)
        if (
            doubt is not None
            and stored.state == ProposalState.APPROVED
            and stored.proposal.fix_safety != FixSafety.SAFE
        ):
            why = f"approved, but its grace date is not trusted: {doubt}; kept"
            recorder.write(stored.proposal, [{"outcome": "unverified", "detail": why}])
            result.not_eligible[stored.id] = why
            continue
        ok, why = eligibility(stored, config, now)
        if ok and not job.approved and stored.state == ProposalState.APPROVED:
            ok, why = False, "approved proposals are not applied by this run (apply.apply_approved)"
        if ok:
            p = stored.proposal
            ok, confirmed = confirmation(stored, scans[(p.account, p.region, p.repository)])
            why = why if ok else confirmed
        if not ok:
            result.not_eligible[stored.id] = why
            continue
        # the decisions as they are now: an objection made while this run goes still counts
        job.verifier.decisions = store.decisions([stored.id])
        verified, why = job.verifier.check(stored)
        if not verified:
            recorder.write(stored.proposal, [{"outcome": "unverified", "detail": why}])
            result.not_eligible[stored.id] = f"not verified: {why}"
            continue
        refused = safe_fix_refused(stored, now)
        if refused:  # the stored fix_safety says safe; no rule whose fix is safe agrees
            recorder.write(stored.proposal, [{"outcome": "unverified", "detail": refused}])
            result.not_eligible[stored.id] = refused
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
            _keep(recorder, result, proposal, f"no client: {exc}", exc)
            continue
        try:
            if proposal.action == Action.DELETE_IMAGES:
                apply_images(ctx, proposal, safe_only=as_safe_fix(stored, now))
            elif proposal.action == Action.DELETE_REPOSITORY:
                apply_repository_deletion(ctx, proposal)
            elif proposal.action in REPOSITORY_STEPS:
                apply_repository(ctx, proposal)
            else:  # pragma: no cover - every Action has a step
                raise ApplyError(f"{proposal.id}: no way to apply {proposal.action.value}")
        except (InUseUnknownError, RecheckError) as exc:
            # The workloads or the repository could not be read right before deleting:
            # delete nothing; the proposal stays as it is and the next apply tries again
            # (docs/in-use.md, docs/approvals.md).
            _keep(recorder, result, proposal, str(exc), exc)
        except (ClientError, BotoCoreError) as exc:
            if unreachable(exc):
                recorder.write(
                    proposal, [{"outcome": "retry", "detail": f"registry unreachable: {exc}"}]
                )
                raise
            # A read failed (throttled beyond botocore's retries, access denied …): nothing
            # was written for this proposal after its last recorded batch; try the next.
            _keep(recorder, result, proposal, f"could not re-read: {exc}", exc)
