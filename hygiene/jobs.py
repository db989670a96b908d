"""The nightly and weekly jobs: pipelines over injected dependencies.

``run_nightly``: collect → evaluate → plan → store → apply (safe fixes when
``apply.auto_safe``; approved proposals past their grace date when ``apply.apply_approved``)
→ admin report → notify. ``run_weekly``: collect → evaluate → plan → store → one owner
report per namespace → notify.

Every stage is a callable in :class:`JobDeps`, so the same pipeline runs with the real
collector, store and senders (wired in :mod:`hygiene.wiring`) and with in-memory ones in
tests. The guarantees live here, not in the stages:

* a whole job runs under the registry lock (:data:`LOCK_NAME`), the lock every command
  that reads the registry to plan or changes it takes (``hygiene apply`` too); a second
  run, whether started by the daemon, cron or by hand, gets
  :class:`~hygiene.errors.LockHeldError` (exit 5) before anything is recorded or called;
* every run that got the lock is recorded: start, end, status ``ok | degraded |
  incomplete | failed``, counts, API calls (the scan's and apply's) and errors, even when
  a stage raises or the process is asked to stop; a run whose process died is marked
  ``abandoned`` by the next one that takes the lock;
* the run pins the trust policy of its own (deployed) configuration in the store
  (``deps.pin_trust``) before anything else: the admins and owners that approvals and
  objections are checked against;
* an incomplete scan never feeds an apply: apply is skipped and the admins are alerted;
* a report that reached no one (every delivery of it failed) makes the run ``degraded``;
* a failed, incomplete or degraded run alerts the admins (``deps.alert``, every
  configured channel);
* a stop request (SIGTERM/SIGINT set :data:`STOP`) is passed to collect, which finishes
  its current batch, and to apply, which finishes the proposal in progress (recording each
  of its batches) and starts no other; the job then skips the remaining stages and
  records the run as incomplete.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from hygiene import lastconfig
from hygiene.background import Outcome, then_wait
from hygiene.config import Config
from hygiene.errors import ConfigError, ExitCode, HygieneError, LockHeldError
from hygiene.gcpause import paused_gc
from hygiene.inventory import Inventory
from hygiene.jobtypes import (
    JobDeps,
    JobResult,
    RunAlert,
    RunStatus,
)
from hygiene.logs import RedactingFilter
from hygiene.messages import message_json
from hygiene.model import FixSafety, Proposal, ProposalState
from hygiene.store.locks import REGISTRY_LOCK

log = logging.getLogger(__name__)

LOCK_NAME = REGISTRY_LOCK
"""The store lock a whole nightly or weekly job holds; a hand-run apply takes the same one,
so no two of them ever overlap. The job's own apply works under the job's lock."""

STOP = threading.Event()
"""Process-wide stop flag: set by the SIGTERM/SIGINT handlers of ``hygiene run`` and
``hygiene schedule``; the running job finishes what it is doing (a scan its current batch,
apply the proposal in progress), records its state and stops."""

DEPS_ENV = "HYGIENE_JOB_DEPS"
DEFAULT_DEPS_FACTORY = "hygiene.wiring:build_job_deps"
MAX_RECORDED_ERRORS = 50


# --------------------------------------------------------------------------- the run


class _Run:
    """Book-keeping of one recorded run: counts, API calls, errors, status."""

    def __init__(self, deps: JobDeps, kind: str, started_at: datetime) -> None:
        self.deps = deps
        self.kind = kind
        self.started_at = started_at
        self.counts: dict[str, int] = {}
        self.api_calls: dict[str, int] = {}
        self.errors: list[str] = []
        # proposals apply kept for a retry the third run in a row: alerted even when ok
        self.kept: list[str] = []
        self.status = RunStatus.OK
        self.exit_code = int(ExitCode.OK)
        self.run_id = deps.store.record_run(kind, started_at=started_at)
        log.info("%s run %s started", kind, self.run_id)

    def add_calls(self, calls: Mapping[str, int]) -> None:
        for operation, count in calls.items():
            self.api_calls[operation] = self.api_calls.get(operation, 0) + int(count)

    def incomplete(self, message: str) -> None:
        self.errors.append(message)
        if self.status in (RunStatus.OK, RunStatus.DEGRADED):
            self.status = RunStatus.INCOMPLETE
            self.exit_code = int(ExitCode.INCOMPLETE)

    def degraded(self, message: str) -> None:
        """A report reached no one: the run did its work, but nobody was told."""
        self.errors.append(message)
        if self.status is RunStatus.OK:
            self.status = RunStatus.DEGRADED
            self.exit_code = int(ExitCode.DEGRADED)

    def delivered(self, label: str, deliveries: Any) -> None:
        """Degrade the run when ``deliveries`` (what ``notify`` returned) were attempted
        and none of them succeeded."""
        attempted = list(deliveries or [])
        if attempted and not any(getattr(d, "ok", False) for d in attempted):
            failures = "; ".join(
                f"{getattr(d, 'channel', '?')} to {getattr(d, 'target', '?')}: "
                f"{getattr(d, 'error', '') or 'failed'}"
                for d in attempted
            )
            self.degraded(f"{label}: the report reached no one ({failures})")

    def failed(self, stage: str, exc: BaseException) -> None:
        self.errors.append(f"{stage}: {type(exc).__name__}: {exc}")
        if self.status is not RunStatus.FAILED:
            self.status = RunStatus.FAILED
            self.exit_code = int(exc.exit_code) if isinstance(exc, HygieneError) else 1

    def stage(self, name: str) -> AbstractContextManager[None]:
        return _stage(self, name)

    def finish(self) -> JobResult:
        errors = [redact(e) for e in self.errors]  # they go to the store, alerts and stderr
        if len(errors) > MAX_RECORDED_ERRORS:
            more = len(errors) - MAX_RECORDED_ERRORS
            errors = [*errors[:MAX_RECORDED_ERRORS], f"… and {more} more"]
        finished_at = self.deps.clock()
        self.deps.store.finish_run(
            self.run_id,
            self.status.value,
            finished_at=finished_at,
            counts=dict(self.counts),
            api_calls=dict(sorted(self.api_calls.items())),
            errors=list(errors),
        )
        result = JobResult(
            self.kind,
            self.run_id,
            self.status,
            dict(self.counts),
            dict(self.api_calls),
            list(errors),
            self.exit_code,
        )
        log.info("%s", result.summary())
        if self.status is not RunStatus.OK:
            self._alert(errors)
        elif self.kept:
            self._alert(
                errors,
                title=f"registry-hygiene: {self.kind} run {self.run_id}: "
                f"{len(self.kept)} proposal(s) kept by apply again",
            )
        return result

    def _alert(self, errors: list[str], title: str = "") -> None:
        alert = RunAlert(
            kind=self.kind,
            run_id=self.run_id,
            status=self.status,
            started_at=self.started_at,
            errors=tuple(errors),
            summary=f"The {self.kind} run {self.run_id} finished {self.status.value}: "
            + ("; ".join(errors[:3]) or "no detail"),
            title=title,
        )
        try:
            self.deps.alert(alert)
        except Exception:
            # Nothing else can tell the admins; the run record and the log still do.
            log.exception("could not send the alert for %s run %s", self.kind, self.run_id)


class StageFailed(Exception):
    """Internal: a stage raised; the run is already marked failed."""


@contextmanager
def _stage(run: _Run, name: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        log.exception("%s run %s: %s failed", run.kind, run.run_id, name)
        run.failed(name, exc)
        raise StageFailed(name) from exc


def redact(text: str) -> str:
    """``text`` with the values of secret-looking environment variables masked (the same
    rule as the log filter), for errors that leave the process outside the log."""
    record = logging.LogRecord(__name__, logging.ERROR, __file__, 0, text, None, None)
    RedactingFilter().filter(record)
    return record.getMessage()


def _scan_errors(inventory: Inventory) -> list[str]:
    return [
        f"collect: {e.account + ' ' if e.account else ''}{e.region or '(all regions)'} "
        f"{e.repository or '(registry)'} {e.operation}: {e.message}"
        for e in inventory.run.errors
    ]


def _stopped(run: _Run, stop: threading.Event | bool, where: str) -> bool:
    """Record a stop request (``stop`` set, or True: it was when the job looked)."""
    if stop is True or (not isinstance(stop, bool) and stop.is_set()):
        run.incomplete(f"stopped by request {where}")
        log.warning("%s run %s: stop requested; stopping %s", run.kind, run.run_id, where)
        return True
    return False


def _scan(
    run: _Run, deps: JobDeps, config: Config, now: datetime, stop: threading.Event
) -> tuple[Inventory, Any, list[Proposal]] | None:
    """pin the trust policy → collect → evaluate → plan → persist; None when stopped.
    Raises StageFailed."""
    if deps.pin_trust is not None:
        with run.stage("pin trust"):
            deps.pin_trust(config, run.run_id)
    ahead: Outcome[Any] | None = None
    with run.stage("collect"):
        inventory = deps.collect(config, stop)
        stopped = stop.is_set()  # looked at here, as when collect did all its work itself
        if deps.collected is not None:
            ahead = _evaluate_while_collected(deps, inventory, config, now, stopped)
    run.add_calls(inventory.run.api_calls)
    run.counts.update(inventory.summary())
    for message in _scan_errors(inventory):
        run.incomplete(message)
    if _stopped(run, stopped, "after collect"):
        return None
    with run.stage("evaluate"):
        evaluation = ahead.result() if ahead else deps.evaluate(inventory, config, now)
    with run.stage("plan"):
        proposals = deps.plan(evaluation, inventory, config, now)
    with run.stage("store"):
        stored = deps.persist(run.run_id, inventory, evaluation, proposals)
    run.counts["findings"] = len(evaluation.findings)
    run.counts["kept"] = len(evaluation.kept)
    run.counts["proposals"] = len(stored)
    return inventory, evaluation, stored


def _evaluate_while_collected(
    deps: JobDeps, inventory: Inventory, config: Config, now: datetime, stopped: bool
) -> Outcome[Any] | None:
    """Evaluate (pure: it only reads the inventory) while what collect left running
    (``deps.collected``: the wired one writes the parquet snapshot in a thread) ends, then
    wait for that: its error fails the collect stage, before the inventory is counted,
    as when collect wrote the snapshot itself. Nothing is evaluated after a stop."""
    assert deps.collected is not None
    # evaluate's value or exception (kept, raised again in its own stage); only an
    # interrupt in the rules propagates at once, after the wait
    ahead, _ = then_wait(
        lambda: None if stopped else Outcome(deps.evaluate, inventory, config, now),
        deps.collected,
        failed_too="collect's background work failed too",
    )
    return ahead


def _apply(
    run: _Run,
    deps: JobDeps,
    config: Config,
    label: str,
    proposals: Sequence[Proposal],
    stop: threading.Event,
) -> None:
    run.counts[f"{label}_selected"] = len(proposals)
    if not proposals:
        return
    with run.stage(f"apply {label}"):
        result = deps.apply(proposals, config, stop)
    run.add_calls(result.api_calls)
    for key in ("applied", "failed", "skipped", "unverified"):
        run.counts[f"{label}_{key}"] = getattr(result, key)
    for message in [*result.errors, *result.refused, *result.kept]:
        run.errors.append(f"apply {label}: {message}")
    run.kept += [f"apply {label}: {message}" for message in result.kept]
    if result.failed:
        run.failed(f"apply {label}", ApplyFailures(f"{result.failed} action(s) failed"))
    if result.refused:
        run.failed(
            f"apply {label}",
            ApplyFailures(
                f"{len(result.refused)} proposal(s) kept: a read the re-check needs was "
                "refused (AccessDenied, Forbidden, Unauthorized)"
            ),
        )
    if result.stopped:
        _stopped(run, stop, f"during apply {label}")


class ApplyFailures(HygieneError):
    exit_code = ExitCode.APPLY_FAILED


def reached(deliveries: Sequence[Any] | None) -> bool:
    """Did any delivery of a report reach a person (a sent e-mail, a posted message)?"""
    return any(getattr(d, "ok", False) for d in deliveries or ())


def scan_document(
    run: _Run,
    inventory: Inventory,
    evaluation: Any,
    proposals: Sequence[Proposal],
) -> dict[str, Any]:
    """The scan JSON contract plus ``job`` (this run so far). Past runs for trends are
    the renderer's business: it reads them from the store with their report summaries.

    ``findings`` is a :class:`~hygiene.report.findingrows.FindingRows`: each finding's
    JSON is built when something reads it, from the engine's columns (a million-image
    registry's ~900,000 finding dicts would take gigabytes)."""
    from hygiene.report.findingrows import FindingRows

    return {
        "run": inventory.run.to_json(),
        "inventory": inventory.summary(),
        "findings": FindingRows.of(evaluation.findings),
        "kept": [k.to_json() for k in evaluation.kept],
        # the proposals' own target and evidence (not copies): the document is read only
        "proposals": [p.to_json(copy=False) for p in proposals],
        "mute_warnings": [message_json(w) for w in getattr(evaluation, "mute_warnings", [])],
        "job": {
            "kind": run.kind,
            "id": run.run_id,
            "started_at": run.started_at.isoformat(),
            "status": run.status.value,
            "counts": dict(run.counts),
            "errors": list(run.errors),
        },
    }


# --------------------------------------------------------------------------- jobs


def run_nightly(
    deps: JobDeps, config: Config, now: datetime, stop: threading.Event | None = None
) -> JobResult:
    """The unattended nightly run. Raises ``LockHeldError`` if another run holds the lock."""
    stop = STOP if stop is None else stop
    # the cyclic collector is paused for the job: docs/benchmarks.md, hygiene.gcpause
    with deps.store.lock(LOCK_NAME), paused_gc():
        run = _Run(deps, "nightly", now)
        try:
            _nightly(run, deps, config, now, stop)
        except StageFailed:
            pass
        except BaseException as exc:  # KeyboardInterrupt, a bug: record, alert, re-raise
            run.failed("job", exc)
            run.finish()
            raise
        return run.finish()


def _nightly(
    run: _Run, deps: JobDeps, config: Config, now: datetime, stop: threading.Event
) -> None:
    scanned = _scan(run, deps, config, now, stop)
    if scanned is None:
        return
    inventory, evaluation, proposals = scanned
    settings = config.policy.apply
    scan = inventory.run
    if not scan.complete and not any(scan.complete_for(a) for a, _ in scan.scopes):
        log.warning(
            "nightly run %s: the scan is incomplete (%d unread parts); nothing is applied",
            run.run_id,
            len(scan.errors),
        )
        run.errors.append("apply: skipped because the scan is incomplete")
    else:
        unread = [a for a in scan.incomplete_accounts if a is not None]
        if unread:
            log.warning(
                "nightly run %s: accounts %s could not be read completely; nothing of "
                "theirs is applied",
                run.run_id,
                ", ".join(unread),
            )
            run.errors.append(
                "apply: skipped for the accounts the scan could not read completely: "
                + ", ".join(unread)
            )

        complete = set(scan.complete_scopes())

        def readable(selected: Sequence[Proposal]) -> list[Proposal]:
            """Only proposals in an (account, region) this scan read completely."""
            if not scan.scopes:  # a run that does not say what it read
                return list(selected) if scan.complete else []
            return [p for p in selected if (p.account, p.region) in complete]

        if settings.auto_safe:
            safe = [
                p
                for p in proposals
                if p.fix_safety is FixSafety.SAFE and p.state is ProposalState.PROPOSED
            ]
            _apply(run, deps, config, "safe", readable(safe), stop)
        if settings.apply_approved and not _stopped(run, stop, "before applying approved"):
            with run.stage("select approved"):
                due = deps.due_approved(now)
            _apply(run, deps, config, "approved", readable(due), stop)
    if _stopped(run, stop, "before the admin report"):
        return
    document = scan_document(run, inventory, evaluation, proposals)
    with run.stage("admin report"):
        report = deps.render_admin_report(document)
    run.counts["reports"] = 1
    with run.stage("notify"):
        deliveries = deps.notify(report)
    run.counts["notified"] = int(reached(deliveries))
    run.delivered("admin report", deliveries)


def run_weekly(
    deps: JobDeps,
    config: Config,
    now: datetime,
    namespace: str | None = None,
    stop: threading.Event | None = None,
) -> JobResult:
    """One owner report per registered namespace (or only ``namespace``), then notify."""
    stop = STOP if stop is None else stop
    namespaces = config.namespaces
    if namespace is not None:
        if namespace not in namespaces:
            where = config.projects_path or "the projects registry"
            raise ConfigError(f"--namespace {namespace!r}: not a registered project in {where}")
        namespaces = [namespace]
    # the cyclic collector is paused for the job: docs/benchmarks.md, hygiene.gcpause
    with deps.store.lock(LOCK_NAME), paused_gc():
        run = _Run(deps, "weekly", now)
        try:
            _weekly(run, deps, config, now, stop, namespaces)
        except StageFailed:
            pass
        except BaseException as exc:
            run.failed("job", exc)
            run.finish()
            raise
        return run.finish()


def _weekly(
    run: _Run,
    deps: JobDeps,
    config: Config,
    now: datetime,
    stop: threading.Event,
    namespaces: list[str],
) -> None:
    scanned = _scan(run, deps, config, now, stop)
    if scanned is None:
        return
    inventory, evaluation, proposals = scanned
    document = scan_document(run, inventory, evaluation, proposals)
    run.counts["reports"] = run.counts["notified"] = 0
    for name in namespaces:
        if _stopped(run, stop, f"before the report of {name}"):
            return
        try:
            with run.stage(f"owner report {name}"):
                # the whole scan: which findings concern a namespace is the renderer's
                # call (a fragment such as suporte-cloud belongs to project suporte)
                report = deps.render_owner_report(document, name)
            run.counts["reports"] += 1
            with run.stage(f"notify {name}"):
                deliveries = deps.notify(report)
            run.counts["notified"] += int(reached(deliveries))
            run.delivered(f"owner report {name}", deliveries)
        except StageFailed:
            continue  # one namespace's failure does not keep the others' reports back


# --------------------------------------------------------------------------- wiring


def load_deps(config: Config, reference: str | None = None) -> JobDeps:
    """Build the job dependencies with the factory named by ``reference``.

    ``reference`` is a textual reference ``"module:function"`` (the APScheduler syntax);
    default ``$HYGIENE_JOB_DEPS`` or :data:`DEFAULT_DEPS_FACTORY`. The factory takes the
    config and returns a :class:`JobDeps`.
    """
    from apscheduler.util import ref_to_obj

    reference = reference or os.environ.get(DEPS_ENV) or DEFAULT_DEPS_FACTORY
    try:
        factory = ref_to_obj(reference)
    except (LookupError, ValueError, TypeError) as exc:
        raise ConfigError(f"{DEPS_ENV}={reference!r}: cannot import the factory: {exc}") from exc
    deps = factory(config)
    if not isinstance(deps, JobDeps):
        raise ConfigError(f"{reference!r} returned {type(deps).__name__}, not JobDeps")
    return deps


def scheduled_nightly(rules_dir: str, deps_reference: str | None = None) -> str | None:
    """Entry point of the scheduler's nightly job (persisted as ``hygiene.jobs:scheduled_nightly``).

    Reloads the configuration on every run, so rule edits need no daemon restart. Never
    raises: the scheduler keeps running; the outcome is in the run history and the log.
    """
    return _scheduled("nightly", rules_dir, deps_reference)


def _alert_not_started(deps: JobDeps, kind: str, why: str) -> None:
    """Tell the admins that a scheduled run did not start because another run holds the
    lock: nothing is recorded for it, and a holder that never ends (a run stuck on this
    host keeps its lock while its process lives) would otherwise skip every night with
    only a line in the daemon's log."""
    summary = (
        f"The scheduled {kind} run did not start: nothing was scanned, stored, applied or "
        "reported. If the run holding the lock is stuck, see docs/operations.md (a run that "
        "does not end)."
    )
    alert = RunAlert.not_started(kind, deps.clock(), why, summary, "lock held")
    try:
        deps.alert(alert)
    except Exception:
        log.exception("could not send the alert for the %s run not started", kind)


def scheduled_weekly(rules_dir: str, deps_reference: str | None = None) -> str | None:
    """Entry point of the scheduler's weekly job (``hygiene.jobs:scheduled_weekly``)."""
    return _scheduled("weekly", rules_dir, deps_reference)


def _scheduled(kind: str, rules_dir: str, deps_reference: str | None) -> str | None:
    from hygiene.authz.policy import check_admins
    from hygiene.checks import check_channels
    from hygiene.config import load_config
    from hygiene.rules import validate_config

    if STOP.is_set():  # queued behind a run that was stopped: the daemon is shutting down
        log.warning("scheduled %s run not started: the scheduler is stopping", kind)
        return None
    deps: JobDeps | None = None
    try:
        try:
            config = load_config(
                Path(rules_dir), checks=[validate_config, check_admins, check_channels]
            )
        except HygieneError as exc:  # broken since it last loaded: no channel of its own
            log.error("scheduled %s run not started: %s", kind, exc.message)
            lastconfig.alert_broken(
                kind, rules_dir, exc.message, lambda last: load_deps(last, deps_reference)
            )
            return None
        lastconfig.LAST.remember(config)
        deps = load_deps(config, deps_reference)
        job = run_nightly if kind == "nightly" else run_weekly
        result = job(deps, config, deps.clock())
    except LockHeldError as exc:
        log.warning("scheduled %s run not started: %s", kind, exc.message)
        if deps is not None:
            _alert_not_started(deps, kind, exc.message)
        return None
    except HygieneError as exc:
        log.error("scheduled %s run not started: %s", kind, exc.message)
        return None
    except Exception:
        log.exception("scheduled %s run crashed", kind)
        return None
    finally:
        if deps is not None:
            _close_run(deps, kind)
    return result.status.value


def _close_run(deps: JobDeps, kind: str) -> None:
    """Close what the daemon opened for one scheduled run, however the run ended (as the
    one-shot ``hygiene run`` does its store): a daemon runs for weeks, and each run's AWS
    clients (their sockets) and store engine (with SQLite, the database's files) would
    otherwise stay open until nothing referred to them any more."""
    for what, close in (("AWS clients", deps.close_registry), ("store", deps.store.close)):
        try:
            if close is not None:
                close()
        except Exception:
            log.exception("could not close the %s after the scheduled %s run", what, kind)
