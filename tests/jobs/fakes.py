"""In-memory implementations of the job dependencies (not mocks: they do the work).

* :class:`MemoryStore`: the run-history/lock part of ``hygiene.store.Store``; with a
  ``path`` it also writes its runs to a JSON file after every change, so a test can read
  the history of a subprocess.
* :class:`FakeRegistry`: a registry of image records; ``collect`` reads it (optionally
  failing on some repositories, or batch by batch with a delay and the stop flag) and
  ``apply`` deletes from it in batches.
* A tiny evaluate/plan: untagged images → IM001 safe findings → delete-images proposals.
* Reports are plain dicts; ``notify`` and ``alert`` append to outboxes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hygiene.config import Config
from hygiene.errors import LockHeldError
from hygiene.inventory import Inventory, RunInfo, ScanError
from hygiene.jobtypes import ApplySummary, JobDeps, RunAlert
from hygiene.model import Action, Proposal, ProposalState
from hygiene.rules import Evaluation
from tests import builders
from tests.builders import REGION


class MemoryStore:
    """Run history and named locks, in memory (optionally mirrored to a JSON file)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._mutex = threading.Lock()
        self._locks: dict[str, str] = {}
        self._runs: list[dict[str, Any]] = []
        self.proposals: dict[str, Proposal] = {}
        self.closed = 0  # how many times a command closed it (it stays usable: tests go on)

    def close(self) -> None:
        self.closed += 1

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        holder = f"pid {os.getpid()} thread {threading.get_ident()}"
        with self._mutex:
            if name in self._locks:
                raise LockHeldError(
                    f"another run holds the lock {name!r} ({self._locks[name]}); try later"
                )
            self._locks[name] = holder
        try:
            yield
        finally:
            with self._mutex:
                del self._locks[name]

    def record_run(self, kind: str, *, started_at: datetime) -> int:
        with self._mutex:
            run_id = len(self._runs) + 1
            self._runs.append(
                {"id": run_id, "kind": kind, "started_at": started_at, "status": None}
            )
            self._save()
        return run_id

    def finish_run(
        self,
        run_id: int,
        status: str,
        *,
        finished_at: datetime,
        counts: dict[str, int],
        api_calls: dict[str, int],
        errors: list[str],
    ) -> None:
        with self._mutex:
            row = self._runs[run_id - 1]
            row.update(
                status=status,
                counts=counts,
                api_calls=api_calls,
                errors=errors,
                finished_at=finished_at,
            )
            self._save()

    def runs(self, last: int = 20) -> list[dict[str, Any]]:
        with self._mutex:
            return [dict(r) for r in reversed(self._runs[-last:])] if last else []

    def _save(self) -> None:
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._runs, default=str))
            tmp.replace(self.path)

    # the proposal part of the store, enough for persist/due_approved
    def persist(self, run_id: Any, proposals: list[Proposal], now: datetime) -> list[Proposal]:
        stored = []
        for proposal in proposals:
            previous = self.proposals.get(proposal.id)
            if previous is None:
                previous = replace(proposal, first_seen=now, grace_until=now + timedelta(days=7))
                self.proposals[proposal.id] = previous
            stored.append(previous)
        return stored


@dataclass
class FakeRegistry:
    """Image records by repository; ``broken`` repositories fail to read."""

    images: list[dict[str, Any]] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)
    batch_delay: float = 0.0  # seconds per repository read (a "long" collect)
    api_calls: dict[str, int] = field(default_factory=dict)

    def add(self, repository: str, digest: str, tags: Sequence[str] = (), days_old: int = 30):
        self.images.append(
            builders.image_row(digest, repository, tags=tags, pushed_days_ago=days_old)
        )

    def _call(self, operation: str) -> None:
        self.api_calls[operation] = self.api_calls.get(operation, 0) + 1

    def collect(self, config: Config, stop: threading.Event) -> Inventory:
        run = RunInfo(id="scan", started_at=datetime.now(UTC), source="fake")
        names = sorted({i["repository"] for i in self.images})
        read: list[dict[str, Any]] = []
        repositories: list[dict[str, Any]] = []
        for name in names:
            if stop.is_set():
                run.errors.append(ScanError(REGION, None, "stop", "stopped before the end"))
                break
            time.sleep(self.batch_delay)
            self._call("DescribeImages")
            if name in self.broken:
                repositories.append(builders.repository_row(name, scan_error="AccessDenied"))
                run.errors.append(ScanError(REGION, name, "DescribeImages", "AccessDenied"))
            else:
                repositories.append(builders.repository_row(name))
                read.extend(i for i in self.images if i["repository"] == name)
        run.api_calls = dict(self.api_calls)
        run.finished_at = datetime.now(UTC)
        return builders.inventory(read, repositories, run=run)

    def apply(
        self, proposals: Sequence[Proposal], config: Config, stop: threading.Event
    ) -> ApplySummary:
        result = ApplySummary()
        for proposal in proposals:  # one proposal = one batch here
            if stop.is_set():
                result.stopped = True
                break
            digests = set(proposal.target["digests"])
            before = len(self.images)
            self.images = [i for i in self.images if i["digest"] not in digests]
            result.api_calls["BatchDeleteImage"] = result.api_calls.get("BatchDeleteImage", 0) + 1
            if len(self.images) < before:
                result.applied += 1
            else:
                result.skipped += 1
        return result


def evaluate(inventory: Inventory, config: Config, now: datetime) -> Evaluation:
    """IM001-like: every untagged image is a safe-delete finding."""
    untagged = inventory.images[inventory.images["tag_count"] == 0]
    return builders.evaluation(
        builders.finding(
            "IM001",
            str(row.repository),
            digest=str(row.digest),
            unit=[str(row.digest)],
            bytes=int(row.storage_bytes),
            message="untagged image",
            fix="delete",
            account=str(row.account),
            region=str(row.region),
        )
        for row in untagged.itertuples()
    )


def plan(evaluation: Evaluation, inventory: Inventory, config: Config, now: datetime):
    """One delete-images proposal per finding."""
    return [
        builders.proposal(
            Action.DELETE_IMAGES,
            finding.repository or "",
            digests=finding.details["unit"],
            evidence={"codes": [finding.code]},
            rule_codes=(finding.code,),
            fix_safety=finding.fix_safety,
            bytes=finding.bytes,
            account=finding.account,
            region=finding.region,
        )
        for finding in evaluation.findings
    ]


@dataclass
class World:
    """Everything a job touched: the registry, the store and the outboxes."""

    registry: FakeRegistry
    store: MemoryStore
    sent: list[Any] = field(default_factory=list)
    alerts: list[RunAlert] = field(default_factory=list)
    delivered: bool = True  # whether notify's deliveries reach a person
    applied_calls: list[list[str]] = field(default_factory=list)
    clock_now: datetime = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
    registry_closed: int = 0  # how many times a job's AWS clients were closed

    def deps(self) -> JobDeps:
        def apply(proposals: Sequence[Proposal], config: Config, stop: threading.Event):
            self.applied_calls.append([p.id for p in proposals])
            result = self.registry.apply(proposals, config, stop)
            for p in proposals:
                self.store.proposals[p.id] = replace(p, state=ProposalState.APPLIED)
            return result

        def due_approved(now: datetime) -> list[Proposal]:
            return [
                p
                for p in self.store.proposals.values()
                if p.state is ProposalState.APPROVED and p.grace_until and p.grace_until <= now
            ]

        def persist(run_id, inventory, evaluation, proposals):
            return self.store.persist(run_id, proposals, inventory.run.started_at)

        def notify(report: Any) -> list[Any]:
            self.sent.append(report)
            return [SimpleNamespace(ok=self.delivered)]

        def close_registry() -> None:
            self.registry_closed += 1

        return JobDeps(
            store=self.store,
            collect=self.registry.collect,
            evaluate=evaluate,
            plan=plan,
            persist=persist,
            apply=apply,
            due_approved=due_approved,
            render_admin_report=lambda doc: {"audience": "admins", "document": doc},
            render_owner_report=lambda doc, ns: {"audience": ns, "document": doc},
            notify=notify,
            alert=self.alerts.append,
            clock=lambda: self.clock_now,
            close_registry=close_registry,
        )


# ---------------------------------------------------------------- factories by reference

SHARED: World | None = None


def new_world(store_path: Path | None = None) -> World:
    registry = FakeRegistry()
    registry.add("suporte/cloud/api", "sha256:" + "a" * 64, ["v1"])
    registry.add("suporte/cloud/api", "sha256:" + "b" * 64, [])
    registry.add("ml/train", "sha256:" + "c" * 64, [])
    return World(registry=registry, store=MemoryStore(store_path))


def shared_deps(config: Config) -> JobDeps:
    """``tests.jobs.fakes:shared_deps``: the module's :data:`SHARED` world (in-process)."""
    assert SHARED is not None, "set tests.jobs.fakes.SHARED first"
    world = SHARED
    deps = world.deps()
    deps.clock = lambda: datetime.now(UTC)
    return deps


def slow_file_deps(config: Config) -> JobDeps:
    """``tests.jobs.fakes:slow_file_deps``: for a subprocess; runs go to $FAKE_STORE_FILE.

    The registry has $FAKE_REPOSITORIES repositories, each read in $FAKE_BATCH_DELAY s.
    """
    world = World(
        registry=FakeRegistry(batch_delay=float(os.environ.get("FAKE_BATCH_DELAY", "0.05"))),
        store=MemoryStore(Path(os.environ["FAKE_STORE_FILE"])),
    )
    for n in range(int(os.environ.get("FAKE_REPOSITORIES", "1000"))):
        world.registry.add(f"suporte/r{n:04d}", f"sha256:{n:064x}", ["v1"])
    deps = world.deps()
    deps.clock = lambda: datetime.now(UTC)
    return deps
