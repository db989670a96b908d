"""The scan pipeline: open the registry, collect, evaluate, plan — and its JSON contract.

``open_registry`` is the only place that builds boto3 clients for a scan, so the CLI,
the demo, the scheduler and the tests all go through the same code path; the embedded
registry differs only by its endpoint URL and dummy credentials.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from hygiene.collect.ecr import ProgressCallback, collect_inventory
from hygiene.collect.session import ApiCallCounter, check_credentials, ecr_client, make_session
from hygiene.collect.workloads import Discovery
from hygiene.collect.workloads import discover as discover_in_use
from hygiene.config import CollectSettings, Config
from hygiene.inventory import Inventory, ScanError, build_in_use, write_snapshot
from hygiene.model import Finding, KeptImage, Proposal

log = logging.getLogger(__name__)


@dataclass
class RegistryHandle:
    """Clients per region plus the counter that sees every call they make."""

    session: boto3.Session
    clients: dict[str, Any]
    counter: ApiCallCounter
    endpoint_url: str | None = None
    source: str = "ecr"
    config: Config | None = None

    def discover(self, config: Config, *, running_only: bool = False) -> Discovery:
        """Read the in-use sources (docs/in-use.md) with this handle's credentials, in the
        registry's regions; assumed roles' calls are counted too."""
        return discover_in_use(
            self.session,
            config.policy.in_use,
            config.policy.collect,
            regions=list(self.clients) or list(config.policy.registry.regions),
            in_use_file=config.policy.protections.in_use_images_file,
            endpoint_url=self.endpoint_url,
            attach=self.counter.attach,
            running_only=running_only,
        )

    def client(self, account: str, region: str) -> Any:
        """``clients(account, region)`` for apply: the scan's client for that region, or
        a new one from the same session (same credentials, endpoint and retry mode)."""
        if region not in self.clients:
            settings = self.config.policy.collect if self.config else CollectSettings()
            self.clients[region] = ecr_client(self.session, region, settings, self.endpoint_url)
        return self.clients[region]


@dataclass(frozen=True)
class RegistryAccess:
    """How to reach the registry: command-line values, or the embedded registry's."""

    profile: str | None = None
    regions: tuple[str, ...] = ()
    endpoint_url: str | None = None
    session: boto3.Session | None = None
    source: str = "ecr"

    def open(self, config: Config) -> RegistryHandle:
        return open_registry(
            config,
            profile=self.profile,
            regions=self.regions,
            endpoint_url=self.endpoint_url,
            session=self.session,
            source=self.source,
        )


def open_registry(
    config: Config,
    *,
    profile: str | None = None,
    regions: Sequence[str] = (),
    endpoint_url: str | None = None,
    session: boto3.Session | None = None,
    source: str = "ecr",
) -> RegistryHandle:
    """Build one ECR client per region from the standard credential chain.

    Command-line values win over ``registry`` in the config. Missing credentials fail
    here, before any call, with a message that says what to run.
    """
    settings = config.policy.registry
    profile = profile or settings.profile
    regions = list(regions) or list(settings.regions)
    endpoint_url = endpoint_url or settings.endpoint_url
    if session is None:
        session = make_session(profile, regions[0])
        check_credentials(session, profile)
    counter = ApiCallCounter()
    counter.attach(session)
    clients = {
        region: ecr_client(session, region, config.policy.collect, endpoint_url)
        for region in regions
    }
    return RegistryHandle(session, clients, counter, endpoint_url, source, config)


@contextmanager
def progress_reporter(enabled: bool | None = None) -> Iterator[ProgressCallback]:
    """A rich progress bar on a terminal, a log line every 10% elsewhere."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if enabled:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task("scanning repositories", total=None)

            def advance(repository: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, description=f"{repository[:40]:40}")

            yield advance
        return

    def log_line(repository: str, done: int, total: int) -> None:
        step = max(1, total // 10)
        if done == total or done % step == 0:
            log.info("scanned %d/%d repositories", done, total)

    yield log_line


@dataclass
class ScanResult:
    inventory: Inventory
    findings: list[Finding] = field(default_factory=list)
    kept: list[KeptImage] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    mute_warnings: list[str] = field(default_factory=list)
    snapshot: Path | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON contract of ``hygiene scan --format json`` (docs/json-contract.md)."""
        return {
            "run": self.inventory.run.to_json(),
            "inventory": self.inventory.summary(),
            "findings": [f.to_json() for f in self.findings],
            "kept": [k.to_json() for k in self.kept],
            "proposals": [p.to_json() for p in self.proposals],
            "mute_warnings": list(self.mute_warnings),
            "snapshot": str(self.snapshot) if self.snapshot else None,
        }


def collect(
    handle: RegistryHandle,
    config: Config,
    *,
    now: datetime | None = None,
    progress: bool | None,
    stop: threading.Event | None = None,
) -> Inventory:
    before = handle.counter.as_dict()  # a handle may serve several scans (nightly + weekly)

    def calls_of_this_scan() -> dict[str, int]:
        after = handle.counter.as_dict()
        return {op: n - before.get(op, 0) for op, n in after.items() if n - before.get(op, 0)}

    with progress_reporter(progress) as advance:
        inventory = collect_inventory(
            handle.clients,
            config.policy.collect,
            now=now,
            api_calls=calls_of_this_scan,
            progress=advance,
            source=handle.source,
            stop=stop,
        )
    if stop is not None and stop.is_set():
        return inventory  # already incomplete (a "stop" error); no discovery started
    # after the registry: a workload started while the repositories were read still counts
    discovery = handle.discover(config)
    inventory.run.api_calls = calls_of_this_scan()
    inventory.run.finished_at = datetime.now(UTC)
    add_in_use(inventory, discovery)
    return inventory


def add_in_use(inventory: Inventory, discovery: Discovery) -> None:
    """Record what the workloads run in ``inventory`` (its ``in_use`` frame, the sources'
    states in ``run.in_use``); a source that failed is also a scan error, so the run is
    incomplete and never feeds an apply (docs/in-use.md)."""
    inventory.in_use = build_in_use(u.to_json() for u in discovery.uses)
    inventory.run.in_use = list(discovery.statuses)
    for status in discovery.failed:
        inventory.run.errors.append(
            ScanError(
                region="",
                repository=None,
                operation=f"in-use {status.name}",
                message=status.detail,
            )
        )
    for operation, count in discovery.calls.items():
        inventory.run.api_calls[operation] = inventory.run.api_calls.get(operation, 0) + count


def evaluate_rules(inventory: Inventory, config: Config, now: datetime) -> Any:
    """The rules engine's :class:`~hygiene.rules.Evaluation` (findings, kept, mutes)."""
    from hygiene.rules import evaluate as evaluate_inventory

    return evaluate_inventory(inventory, config, now)


def plan_all(
    evaluation: Any, inventory: Inventory, config: Config, now: datetime
) -> list[Proposal]:
    """Proposals of the plan, plus a generated lifecycle policy for each repository that
    RP002 flagged (and only those: an ignored or muted RP002 proposes nothing)."""
    from hygiene.lifecycle import propose as propose_lifecycle
    from hygiene.plan import plan

    proposals = list(plan(evaluation, inventory, config, now))
    flagged = {f.repository for f in evaluation.findings if f.code == "RP002" and f.repository}
    if flagged:
        # one call over the flagged repositories (not one per repository: each call
        # selects among all repositories, quadratic on a large registry)
        images, repositories = inventory.images, inventory.repositories
        scoped = Inventory(
            images=images[images["repository"].astype(object).isin(flagged)],
            repositories=repositories[repositories["name"].astype(object).isin(flagged)],
            run=inventory.run,
        )
        proposals += propose_lifecycle(scoped, config, now)
    return proposals


def evaluate(inventory: Inventory, config: Config, now: datetime) -> ScanResult:
    """Pure: inventory → findings, kept images and proposals (nothing is stored)."""
    evaluation = evaluate_rules(inventory, config, now)
    return ScanResult(
        inventory=inventory,
        findings=list(evaluation.findings),
        kept=list(evaluation.kept),
        proposals=plan_all(evaluation, inventory, config, now),
        mute_warnings=list(evaluation.mute_warnings),
    )


def save_snapshot(inventory: Inventory, directory: Path) -> Path:
    return write_snapshot(inventory, directory / f"{inventory.run.id}.parquet")
