"""What a job is made of and gives back: its injected stages (:class:`JobDeps`), the
store it records runs in (:class:`RunStore`), and its results (:class:`JobResult`,
:class:`ApplySummary`, :class:`RunAlert`). The jobs themselves are in :mod:`hygiene.jobs`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from hygiene.config import Config
from hygiene.inventory import Inventory
from hygiene.model import Proposal


class RunStatus(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"  # done, but a report reached no one
    INCOMPLETE = "incomplete"
    FAILED = "failed"


class RunStore(Protocol):
    """What the jobs need from :class:`hygiene.store.Store`.

    ``lock(name)`` is a context manager that raises ``LockHeldError`` at once (no waiting)
    when another process holds ``name``, and releases it on exit, also after an exception.
    """

    def lock(self, name: str) -> AbstractContextManager[Any]: ...

    def record_run(self, kind: str, *, started_at: datetime) -> Any: ...

    def finish_run(
        self,
        run_id: Any,
        status: str,
        *,
        finished_at: datetime,
        counts: dict[str, Any],
        api_calls: dict[str, int],
        errors: list[str],
    ) -> None: ...

    def runs(self, last: int = 20) -> Sequence[Any]: ...

    def close(self) -> None:
        """Close its connections (``hygiene run`` does when its one job ends)."""


@dataclass
class ApplySummary:
    """What a job records of one apply stage: counts of proposals, whether it stopped
    early, AWS calls and errors. (:class:`hygiene.apply.ApplyResult` is apply's own,
    complete result; :func:`hygiene.wiring.apply_with` reduces it to this.)"""

    applied: int = 0
    failed: int = 0
    skipped: int = 0  # skipped by apply, or not eligible
    stopped: bool = False  # the stop flag was set: proposals not started were left
    unverified: int = 0  # approvals apply could not verify (skipped, audited)
    api_calls: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # "<id>: why" of proposals kept because IAM refused a read the re-check needs: they
    # fail the run (exit 7); and of proposals kept for a retry by the third apply in a row
    # (hygiene.apply.retries): the run stays ok, the admins are alerted once
    refused: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunAlert:
    """Sent to the admins through the configured channels when a run is not ok."""

    kind: str  # nightly | weekly
    run_id: Any
    status: RunStatus
    started_at: datetime
    errors: tuple[str, ...]
    summary: str
    title: str = ""  # the subject, when not "<kind> run <id> <status>" (a run not started)

    @property
    def subject(self) -> str:
        return self.title or f"registry-hygiene: {self.kind} run {self.run_id} {self.status.value}"

    @classmethod
    def not_started(cls, kind: str, now: datetime, why: str, summary: str, cause: str) -> RunAlert:
        """A scheduled ``kind`` run that did not start at ``now`` (``cause``: the lock was
        held, the configuration is broken): no run is recorded, so its id says so."""
        return cls(
            kind=kind,
            run_id=f"{kind}-not-started-{now:%Y%m%dT%H%M%SZ}",
            status=RunStatus.FAILED,
            started_at=now,
            errors=(why,),
            summary=summary,
            title=f"registry-hygiene: scheduled {kind} run not started ({cause})",
        )


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class JobDeps:
    """The stages of a job; :func:`hygiene.wiring.build_job_deps` builds the real ones.

    ``collect(config, stop)`` returns an :class:`Inventory` whose ``run.errors`` list every
    part it could not read (and a ``ScanError`` with operation ``stop`` if it stopped
    early); it raises ``CollectError`` when the registry is unreachable.
    ``persist(run_id, inventory, evaluation, proposals)`` saves the scan and returns the
    proposals as stored (state, first_seen and grace_until merged from earlier runs).
    ``apply(proposals, config, stop)`` re-verifies and executes the given proposals and
    returns an :class:`ApplySummary`; it checks ``stop`` before each proposal (the one in
    progress finishes its batches). It runs while the job holds
    :data:`hygiene.jobs.LOCK_NAME`, so it must not take that lock (the wired one passes
    ``locked=True`` and records its own ``apply`` run).
    ``due_approved(now)`` lists approved proposals whose grace date has passed.
    ``render_admin_report(document)`` / ``render_owner_report(document, namespace)``
    render from the scan JSON contract (plus a ``job`` key) and return a
    report value that ``notify(report)`` delivers; ``notify`` returns the deliveries
    (objects with an ``ok`` flag: true when the delivery reached a person); a report
    counts as ``notified`` only when one did, and a report none of whose deliveries
    succeeded degrades the run. ``alert(RunAlert)`` tells the admins.
    ``collected()``, when given, waits for what ``collect`` left running in a thread (the
    wired one: the parquet snapshot) and raises what it raised; the job runs ``evaluate``
    (pure) meanwhile and calls it inside the collect stage, so its error fails collect.
    ``pin_trust(config, run_id)`` pins the trust policy of ``config`` in the store
    (:meth:`hygiene.store.Store.pin_trust`); None leaves the pin alone (tests).
    """

    store: RunStore
    collect: Callable[[Config, threading.Event], Inventory]
    evaluate: Callable[[Inventory, Config, datetime], Any]
    plan: Callable[[Any, Inventory, Config, datetime], list[Proposal]]
    persist: Callable[[Any, Inventory, Any, list[Proposal]], list[Proposal]]
    apply: Callable[[Sequence[Proposal], Config, threading.Event], ApplySummary]
    due_approved: Callable[[datetime], list[Proposal]]
    render_admin_report: Callable[[dict[str, Any]], Any]
    render_owner_report: Callable[[dict[str, Any], str], Any]
    notify: Callable[[Any], Sequence[Any]]
    alert: Callable[[RunAlert], Any]
    clock: Callable[[], datetime] = _utcnow
    pin_trust: Callable[[Config, Any], Any] | None = None
    collected: Callable[[], Any] | None = None
    # closes the AWS clients the job made (the daemon calls it after each run)
    close_registry: Callable[[], None] | None = None
    context: Any = None  # the wiring's shared state (the demo reads reports from it)


@dataclass
class JobResult:
    kind: str
    run_id: Any
    status: RunStatus
    counts: dict[str, int]
    api_calls: dict[str, int]
    errors: list[str]
    exit_code: int

    def summary(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts.items())
        return f"{self.kind} run {self.run_id}: {self.status.value} ({counts})"
