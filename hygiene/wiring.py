"""Wiring of the real job dependencies (:class:`hygiene.jobtypes.JobDeps`).

``hygiene run``, ``hygiene runs`` and the scheduler's jobs build their dependencies with
:func:`build_job_deps` unless ``$HYGIENE_JOB_DEPS`` names another factory
(``module:function``; the test suite uses in-memory ones).

The adapters below bind the store's and apply's functions to the shapes the jobs call;
:class:`Wired` holds what the stages of one job share (registry handle, inventory,
reports, deliveries).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hygiene.authz.identity import DEMO_TOKEN_ENV, demo_context
from hygiene.authz.policy import TrustPolicy, configured_accounts
from hygiene.background import InBackground
from hygiene.config import Config
from hygiene.inventory import Inventory, ScanCoverage, namespace_of
from hygiene.jobtypes import ApplySummary, JobDeps, RunAlert
from hygiene.model import Proposal, ProposalState
from hygiene.notify.alert import send_alert
from hygiene.notify.channels import Channel
from hygiene.notify.deliver import DeliveryResult, deliver_all, record_deliveries, utc_now
from hygiene.report.data import (
    ApplyOutcome,
    HistoryRun,
    ReportData,
    build_report_data,
    history_entry,
)
from hygiene.report.render import RenderedReport, generate
from hygiene.scan import (
    RegistryAccess,
    RegistryHandle,
    add_in_use,
    collect,
    evaluate,
    evaluate_rules,
    merge_parts_of,
    plan_all,
    save_snapshot,
)


def told_owners(report: RenderedReport, delivery: DeliveryResult) -> bool:
    """Did ``delivery`` bring ``report`` to the owners of what it announces?

    A delivery that succeeded and that something accepted for the report's own audience
    (:attr:`DeliveryResult.reached`): an e-mail the server accepted for the owners (or
    admins), a message posted in the project's channel, a DM, a chat webhook of the
    project. Slack's incoming webhook (no bot token) posts every report to the one
    channel it was made for, the admins' (they configured it), not a project's: it
    announces the nightly report to the admins, never a weekly report to its owners.
    """
    if delivery.report != report.name or not delivery.ok:
        return False
    reached = [r for r in delivery.reached if r]
    if report.kind == "weekly":
        reached = [r for r in reached if r != SLACK_WEBHOOK]
    return bool(reached)


SLACK_WEBHOOK = "slack:webhook"  # what Slack's incoming webhook reached (channels.slack)


def persist_with(
    store: Any, *, findings_retention_days: int | None = None
) -> Callable[[Any, Inventory, Any, list[Proposal]], list[Proposal]]:
    """Save a scan's findings and merge its proposals; return them as stored. With
    ``findings_retention_days``, the findings of runs started that long before this
    scan are deleted (``store.findings_retention_days``): the rows of every night
    (image totals and other findings) would otherwise grow the store without end.

    The scan's coverage goes with it: the proposals of every repository it read completely
    are confirmed by this run (apply acts on nothing else), and absent proposals expire
    only where the scan saw everything (a repository read completely, or one gone from an
    account and region listed completely); a repository it could not read keeps its
    proposals, none of them applicable until a complete scan confirms them again. This is
    per repository, so it covers an account left unread, a region, or one repository.
    """

    def persist(
        run_id: Any, inventory: Inventory, evaluation: Any, proposals: list[Proposal]
    ) -> list[Proposal]:
        store.record_findings(run_id, evaluation.findings)
        if findings_retention_days is not None:
            cutoff = inventory.run.started_at - timedelta(days=findings_retention_days)
            store.prune_findings(cutoff, keep=str(run_id))
        store.upsert_proposals(
            proposals,
            inventory.run.started_at,
            complete=True,  # the whole plan; what expires is decided per repository seen
            coverage=ScanCoverage.of(inventory, str(run_id)),
        )
        # as stored (state, dates …), read back without their evidence
        return list(store.as_stored(proposals))

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
    store: Any,
    clients: Any,
    demo_id: Callable[[], str | None] = lambda: None,
    in_use: Callable[[Config], Any] | None = None,
) -> Callable[[Sequence[Proposal], Config, threading.Event], ApplySummary]:
    """``hygiene.apply.apply`` limited to the given proposals, summarised for the run.

    apply works under the job's registry lock (``locked=True``) and records its own
    ``apply`` run. Proposals apply finds not eligible count as skipped (those whose
    approval it could not verify also as ``unverified``). ``demo_id()`` says which demo,
    if any, this process proved its registry to be (``os:`` approvals count only there).
    The summary's ``api_calls`` are apply's own; the job adds them to the scan's.
    ``in_use(config)`` gives apply its re-check of the workloads (docs/in-use.md).
    """

    def run(proposals: Sequence[Proposal], config: Config, stop: threading.Event) -> ApplySummary:
        from hygiene.apply import apply

        result = apply(
            store,
            clients,
            config,
            datetime.now(UTC),
            ids=[p.id for p in proposals],
            stop=stop,
            locked=True,
            demo_id=demo_id(),
            in_use=in_use(config) if in_use is not None else None,
        )
        states = {i: str(state) for i, (state, _) in result.states.items()}
        return ApplySummary(
            applied=sum(1 for s in states.values() if s == ProposalState.APPLIED),
            failed=len(result.failed),
            skipped=sum(1 for s in states.values() if s == ProposalState.SKIPPED)
            + len(result.not_eligible),
            stopped=stop.is_set(),
            unverified=result.count("unverified"),
            api_calls=dict(result.api_calls),
            errors=[
                f"{i}: {detail}"
                for i, (state, detail) in result.states.items()
                if str(state) == ProposalState.FAILED
            ],
            refused=[f"{i}: {why}" for i, why in result.refused.items()],
            kept=[f"{i}: {why}" for i, why in result.kept.items()],
        )

    return run


def in_use_check(handle: RegistryHandle, config: Config) -> Any:
    """A :class:`hygiene.apply.InUseCheck` reading the workloads through ``handle``."""
    from hygiene.apply import InUseCheck

    return InUseCheck(
        lambda running_only: handle.discover(config, running_only=running_only),
        recheck_seconds=config.policy.in_use.recheck_seconds,
    )


@dataclass
class Wired:
    """What the wired stages share during one job: the registry handle, the inventory
    the reports draw their charts from, and every report and delivery of the run."""

    config: Config
    store: Any
    access: RegistryAccess
    out_dir: Path | None = None
    send: bool = True
    handle: RegistryHandle | None = None
    inventory: Inventory | None = None
    reports: list[RenderedReport] = field(default_factory=list)
    deliveries: list[DeliveryResult] = field(default_factory=list)
    evaluation: Any = None
    proposals: list[Proposal] = field(default_factory=list)
    snapshot: Path | None = None
    demo: str | None = None  # the demo id, when this process is the demo itself
    # the job's clock: the grace date a report promises is read from it when the report
    # is rendered, and each delivery is stamped with it when it went through
    clock: Callable[[], datetime] = utc_now
    # the delivery channels (None: those configured, built when a report is sent)
    channels: Sequence[Channel] | None = None
    _data_by_job: dict[Any, ReportData] = field(default_factory=dict)
    # report name → the moment its promised grace dates count from (render_owner_report)
    _promised_from: dict[str, datetime] = field(default_factory=dict)
    # report name → the run (job) that rendered it: its notice's grace-started audit rows
    # name it (hygiene.store.notices)
    _run_of: dict[str, str] = field(default_factory=dict)
    _snapshot_write: InBackground[Path] | None = None

    # -- registry
    def registry(self) -> RegistryHandle:
        if self.handle is None:
            self.handle = self.access.open(self.config)
        return self.handle

    def close_registry(self) -> None:
        """Close the AWS clients this job made (``JobDeps.close_registry``); the next use
        opens the registry again."""
        handle, self.handle = self.handle, None
        if handle is not None:
            handle.close()

    def clients(self, account: str, region: str) -> Any:
        return self.registry().client(account, region)

    def in_use_check(self, config: Config) -> Any:
        """Apply's re-check of the workloads, read with the registry's credentials."""
        return in_use_check(self.registry(), config)

    def demo_id(self) -> str | None:
        """The demo this process's registry proved to be (``$HYGIENE_DEMO_TOKEN``), or
        the one it runs itself; None on any other registry."""
        if self.demo is not None:
            return self.demo
        if not os.environ.get(DEMO_TOKEN_ENV):
            return None
        account = next(iter(configured_accounts(self.config)), "")
        client = self.clients(account, self.config.policy.registry.regions[0])
        return demo_context(client.meta.endpoint_url)

    def pin_trust(self, config: Config, run_id: Any) -> list[str] | None:
        """Pin the trust policy of this job's (deployed) configuration."""
        return self.store.pin_trust(TrustPolicy.from_config(config), run_id=str(run_id))

    def collect(self, config: Config, stop: threading.Event) -> Inventory:
        if config.policy.collect.parts is not None:  # a sharded scan: merge its parts
            self.inventory = merge_parts_of(config, stop=stop).inventory
            # the workloads are asked once for the whole run, here (shards do not)
            add_in_use(self.inventory, self.registry().discover(config))
        else:
            self.inventory = collect(self.registry(), config, progress=None, stop=stop)
        self.start_snapshot(self.out_dir or config.policy.report.out_dir)
        return self.inventory

    def start_snapshot(self, out_dir: Path) -> None:
        """Start writing the inventory's parquet snapshot to ``out_dir/snapshots`` in a
        thread: pyarrow encodes and writes it without the GIL while the job evaluates
        (the rules only read the inventory). :meth:`collected` waits for it."""
        assert self.inventory is not None
        self._snapshot_write = InBackground(
            save_snapshot, self.inventory, out_dir / "snapshots", name="snapshot"
        )

    def collected(self) -> None:
        """Wait for the snapshot :meth:`collect` started; raises what writing it raised
        (``JobDeps.collected``: the job fails its collect stage with it)."""
        pending, self._snapshot_write = self._snapshot_write, None
        if pending is not None:
            self.snapshot = pending.result()

    def evaluate(self, inventory: Inventory, config: Config, now: datetime) -> Any:
        self.evaluation = evaluate_rules(inventory, config, now)
        return self.evaluation

    def plan(
        self, evaluation: Any, inventory: Inventory, config: Config, now: datetime
    ) -> list[Proposal]:
        self.proposals = plan_all(evaluation, inventory, config, now)
        return self.proposals

    # -- reports
    def _history(self) -> list[HistoryRun]:
        # several runs a day (nightly, weekly, by hand): read enough for trend_runs days
        runs = self.store.runs(last=self.config.policy.report.trend_runs * 4)
        # the store says ok | degraded | incomplete | failed | abandoned; the reports say
        # complete | … (a degraded run's scan was complete: only its delivery failed)
        status = {"ok": "complete", "degraded": "complete"}
        return [
            HistoryRun.from_json(
                {
                    **r.summary,
                    "id": r.id,
                    "finished_at": r.finished_at,
                    "status": status.get(r.status, r.status),
                }
            )
            for r in runs
            if r.summary
        ]

    def _outcomes(self, started_at: datetime) -> list[ApplyOutcome]:
        finished = [ProposalState.APPLIED, ProposalState.FAILED, ProposalState.SKIPPED]
        return [
            ApplyOutcome(
                proposal_id=s.id,
                state=s.state.value,
                action=s.proposal.action.value,
                repository=s.proposal.repository,
                namespace=s.proposal.namespace,
                reason=s.reason or s.outcome or "",
                bytes=s.proposal.bytes,
                account=s.proposal.account,
                region=s.proposal.region,
            )
            for s in self.store.proposals(state=finished)
            if s.finished_at is not None and s.finished_at >= started_at
        ]

    def report_data(self, document: dict[str, Any]) -> ReportData:
        """The reports' input for this job, built once: the weekly job renders every
        namespace from the same scan, history and outcomes."""
        key = document.get("job", {}).get("id")
        if key is None or key not in self._data_by_job:
            data = self._build_report_data(document)
            if key is None:
                return data
            self._data_by_job[key] = data
        return self._data_by_job[key]

    def _build_report_data(self, document: dict[str, Any]) -> ReportData:
        job = document.get("job", {})
        started = datetime.fromisoformat(job["started_at"]) if job.get("started_at") else None
        failures = [d.to_failure() for d in self.deliveries if not d.ok]
        return build_report_data(
            document,
            inventory=self.inventory,
            history=self._history(),
            outcomes=self._outcomes(started) if started else (),
            delivery_failures=failures,
            mute_warnings=document.get("mute_warnings", ()),
        )

    def _announced(
        self, document: dict[str, Any], owned: Callable[[dict[str, Any]], bool]
    ) -> tuple[dict[str, Any], datetime]:
        """``document`` with the grace date this report is about to start on the open
        proposals it announces (``owned``: those whose owners it tells) that have none yet,
        counted from now, before it is sent; none when it cannot reach anyone (nothing is
        sent, or no channel is configured). notify() counts the stored grace from the
        delivery, later, so the store never allows less than this promise."""
        promised_from = self.clock()
        grace = promised_from + timedelta(days=self.config.policy.apply.grace_days)
        open_states = {ProposalState.PROPOSED.value, ProposalState.APPROVED.value}
        can_reach = self.send and bool(self.config.policy.notify.enabled_channels)
        announced = [
            {**p, "grace_until": grace.isoformat()}
            if can_reach
            and p.get("grace_until") is None
            and p.get("state") in open_states
            and owned(p)
            else p
            for p in document["proposals"]
        ]
        return {**document, "proposals": announced}, promised_from

    def render_admin_report(self, document: dict[str, Any]) -> list[RenderedReport]:
        # the admins are the owners of record of proposals no registered project owns
        # (store.mark_notified(unregistered=…)): this report is their notice
        registered = set(self.config.namespaces)
        document, promised_from = self._announced(
            document, lambda p: namespace_of(p.get("repository") or "") not in registered
        )
        data = self.report_data(document)
        run_id = document.get("job", {}).get("id")
        if run_id is not None:
            self.store.set_run_summary(str(run_id), history_entry(data).to_json())
        reports = generate(data, self.config, "nightly", out_dir=self.out_dir)
        for report in reports:
            self._promised_from[report.name] = promised_from
            if run_id is not None:
                self._run_of[report.name] = str(run_id)
        self.reports += reports
        return reports

    def render_owner_report(self, document: dict[str, Any], namespace: str) -> list[RenderedReport]:
        # this report is the owners' notice of every proposal it shows
        announced, promised_from = self._announced(document, lambda p: True)
        data = self.report_data(announced)
        reports = generate(
            data, self.config, "weekly", namespaces=[namespace], out_dir=self.out_dir
        )
        run_id = document.get("job", {}).get("id")
        for report in reports:
            self._promised_from[report.name] = promised_from
            if run_id is not None:
                self._run_of[report.name] = str(run_id)
        self.reports += reports
        return reports

    def notify(self, reports: list[RenderedReport]) -> list[DeliveryResult]:
        """Deliver, record, and start the grace period of what a person was told.

        Grace starts per report, only when one of its deliveries reached a person (a
        sent e-mail, a posted Slack message): a report nobody received starts nothing,
        and with no channel configured nothing ever does (the nightly report says so
        at the top). A weekly report announces its namespace's proposals to the owners;
        the nightly report announces, to the admins, the proposals that have no other
        owner: outside any namespace or in a namespace that is not a registered project
        (the admins are their owners of record). Only proposals of this job's plan are
        marked: those are what the reports showed.

        The grace period counts from the moment the first delivery that told them went
        through (the :attr:`clock` when the channel accepted it, per report), not from the
        job's start: a slow relay or a retry does not eat into it. It is never earlier
        than the moment the report's printed grace dates count from, so the store never
        lets apply delete before the date the owners were given.
        """
        results = (
            deliver_all(reports, self.config, channels=self.channels, clock=self.clock)
            if self.send
            else []
        )
        self.deliveries += results
        if results and reports and "html" in reports[0].files:
            record_deliveries(reports[0].files["html"].parent, results)
        for result in results:
            reached = f" (reached {', '.join(result.reached)})" if result.reached else ""
            self.store.audit(
                "notify",
                "ok" if result.ok else "failed",
                run_id=self._run_of.get(result.report),
                detail=f"{result.report} via {result.channel} to {result.target}"
                + (reached if result.ok else f": {result.error}"),
            )
        shown = [p.id for p in self.proposals]
        for report in reports:
            told = [r.at for r in results if told_owners(report, r)]
            if not told:
                continue
            now = max(min(told), self._promised_from.get(report.name, min(told)))
            run_id = self._run_of.get(report.name)
            if report.kind == "weekly" and report.namespace:
                self.store.mark_notified(now, namespace=report.namespace, ids=shown, run_id=run_id)
            else:
                self.store.mark_notified(
                    now, unregistered=self.config.namespaces, ids=shown, run_id=run_id
                )
        return results

    def alert(self, alert: RunAlert) -> list[DeliveryResult]:
        """Tell the admins, on every configured channel, that a run was not ok."""
        text = alert.summary + "\n\n" + "\n".join(f"- {e}" for e in alert.errors)
        results = send_alert(
            self.config,
            run_id=str(alert.run_id),
            subject=alert.subject,
            text=text,
            out_dir=self.out_dir,
            send=self.send,
            channels=self.channels,
        )
        self.deliveries += results
        return results


def build_job_deps(
    config: Config,
    *,
    access: RegistryAccess | None = None,
    store_url: str | None = None,
    out_dir: Path | None = None,
    send: bool = True,
    demo_id: str | None = None,
    channels: Sequence[Channel] | None = None,
) -> JobDeps:
    """The production dependencies for ``config`` (``access`` points the demo at the
    embedded registry; the default is the configured registry and credential chain;
    ``demo_id`` is given by the demo process itself; ``channels`` replace the configured
    delivery channels, as the demo's outbox does)."""
    from hygiene.store import Store

    store = Store.from_config(config, store_url or os.environ.get("HYGIENE_STORE_URL"))
    wired = Wired(
        config,
        store,
        access or RegistryAccess(),
        out_dir=out_dir,
        send=send,
        demo=demo_id,
        channels=channels,
    )
    return JobDeps(
        store=store,
        collect=wired.collect,
        evaluate=wired.evaluate,
        plan=wired.plan,
        persist=persist_with(
            store, findings_retention_days=config.policy.store.findings_retention_days
        ),
        apply=apply_with(store, wired.clients, wired.demo_id, wired.in_use_check),
        due_approved=due_approved_with(store),
        render_admin_report=wired.render_admin_report,
        render_owner_report=wired.render_owner_report,
        notify=wired.notify,
        alert=wired.alert,
        pin_trust=wired.pin_trust,
        collected=wired.collected,
        close_registry=wired.close_registry,
        context=wired,
    )


def live_report_data(config: Config, *, store_url: str | None = None) -> ReportData:
    """``hygiene report`` without ``--from-json``: scan now (read-only, nothing stored)
    and take the trend and past outcomes from the store."""
    from hygiene.store import Store

    store = Store.from_config(config, store_url or os.environ.get("HYGIENE_STORE_URL"))
    wired = Wired(config, store, RegistryAccess(), send=False)
    inventory = collect(wired.registry(), config, progress=None)
    wired.inventory = inventory
    now = datetime.now(UTC)
    result = evaluate(inventory, config, now)
    return wired.report_data(result.to_json())
