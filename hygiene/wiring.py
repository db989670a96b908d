"""Wiring of the real job dependencies (:class:`hygiene.jobs.JobDeps`).

``hygiene run``, ``hygiene runs`` and the scheduler's jobs build their dependencies with
:func:`build_job_deps` unless ``$HYGIENE_JOB_DEPS`` names another factory
(``module:function``; the test suite uses in-memory ones).

The adapters below bind the store's and apply's functions to the shapes the jobs call.
Stages whose library has not landed yet are reported at once, before any run is recorded,
instead of failing halfway through a run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from hygiene.config import Config
from hygiene.errors import ConfigError
from hygiene.inventory import Inventory
from hygiene.jobs import ApplyResult, JobDeps
from hygiene.model import Proposal, ProposalState


def persist_with(store: Any) -> Callable[[Any, Inventory, Any, list[Proposal]], list[Proposal]]:
    """Save a scan's findings and merge its proposals; return them as stored.

    An incomplete scan is merged with ``complete=False`` so proposals of unread parts are
    not expired for being absent.
    """

    def persist(
        run_id: Any, inventory: Inventory, evaluation: Any, proposals: list[Proposal]
    ) -> list[Proposal]:
        store.record_findings(run_id, evaluation.findings)
        store.upsert_proposals(proposals, inventory.run.started_at, complete=inventory.run.complete)
        return [s.proposal for s in store.proposals(ids=[p.id for p in proposals])]

    return persist


def due_approved_with(store: Any) -> Callable[[datetime], list[Proposal]]:
    """Approved proposals whose grace date has passed (apply re-checks eligibility)."""

    def due(now: datetime) -> list[Proposal]:
        return [
            s.proposal
            for s in store.proposals(state=ProposalState.APPROVED)
            if s.proposal.grace_until is not None and s.proposal.grace_until <= now
        ]

    return due


def apply_with(
    store: Any, clients: Any
) -> Callable[[Sequence[Proposal], Config, threading.Event], ApplyResult]:
    """``hygiene.apply.apply`` limited to the given proposals, summarised for the run.

    apply takes its own ``apply`` lock inside the job's ``registry`` lock (different
    names, so no self-deadlock) and records its own ``apply`` run.
    """

    def run(proposals: Sequence[Proposal], config: Config, stop: threading.Event) -> ApplyResult:
        from hygiene.apply import apply  # type: ignore[import-not-found,attr-defined]

        result = apply(store, clients, config, datetime.now(UTC), ids=[p.id for p in proposals])
        states = {i: str(state) for i, (state, _) in result.states.items()}
        return ApplyResult(
            applied=sum(1 for s in states.values() if s == ProposalState.APPLIED),
            failed=len(result.failed),
            skipped=sum(1 for s in states.values() if s == ProposalState.SKIPPED)
            + len(result.not_eligible),
            stopped=stop.is_set(),
            errors=[
                f"{i}: {detail}"
                for i, (state, detail) in result.states.items()
                if str(state) == ProposalState.FAILED
            ],
        )

    return run


def _missing(stage: str) -> Any:
    def not_wired(*_args: Any, **_kwargs: Any) -> Any:
        raise ConfigError(f"the {stage} stage is not wired into the jobs yet (hygiene/wiring.py)")

    not_wired.not_wired = stage  # type: ignore[attr-defined]
    return not_wired


def build_job_deps(config: Config) -> JobDeps:
    """The production dependencies for ``config``.

    TODO(lead): wire collect (and the ECR client factory apply needs), the two report
    renderers, notify and alert once their modules are merged; the expected signatures
    are in the :class:`~hygiene.jobs.JobDeps` docstring.
    """
    try:
        from hygiene.plan import plan  # type: ignore[import-not-found]
        from hygiene.rules import evaluate  # type: ignore[attr-defined]
        from hygiene.store import Store  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ConfigError(f"the job pipeline is not wired yet: {exc}") from exc
    store = Store.from_config(config)
    deps = JobDeps(
        store=store,
        collect=_missing("collect"),
        evaluate=evaluate,
        plan=plan,
        persist=persist_with(store),
        apply=_missing("apply"),  # apply_with(store, <collector's ECR client factory>)
        due_approved=due_approved_with(store),
        render_admin_report=_missing("render_admin_report"),
        render_owner_report=_missing("render_owner_report"),
        notify=_missing("notify"),
        alert=_missing("alert"),
    )
    missing = [name for name, value in vars(deps).items() if hasattr(value, "not_wired")]
    if missing:
        raise ConfigError(f"the job pipeline is not wired yet: {', '.join(missing)}")
    return deps
