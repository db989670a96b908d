"""The benchmarks in benchmarks/ still run against the current code (their figures are in
docs/benchmarks.md; nothing here is timed)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks.collector import minimum_calls
from benchmarks.rules import run_once
from hygiene.config import Config
from hygiene_demo.lab import plan_lab_registry
from tests import builders


def test_rules_benchmark_runs_on_a_small_registry() -> None:
    result = run_once(3_000, 30)
    assert result["images"] >= 3_000 and result["repositories"] == 30
    assert 0 < result["findings"] < result["images"]
    assert {"IM001", "TG001"} <= set(result["by_rule"])


def test_collector_benchmark_minimum_of_the_demo_registry(config: Config, now: datetime) -> None:
    manifest = plan_lab_registry(config.projects, now)
    inventory = builders.seeded_inventory(manifest, run_id="r-bench", now=now)
    minimum = minimum_calls(inventory)
    repositories = manifest.counts()["repositories"]
    assert minimum["DescribeRepositories"] == 1
    assert minimum["DescribeImages"] == repositories  # every repository < 1,000 images
    assert minimum["GetLifecyclePolicy"] == minimum["ListTagsForResource"] == repositories
    # < 100 indexes per repository, and < 100 untagged images no index lists and ECR does
    # not report as referrers (read for their subject): one call per repository with any
    listed = {child for i in manifest.images for child in i.child_digests}
    unknown = {
        i.repository
        for i in manifest.images
        if not i.tags and not i.is_index and i.digest not in listed and not i.subject_digest
    }
    indexes = {i.repository for i in manifest.images if i.is_index}
    assert unknown, "the demo registry has untagged leftovers"
    assert minimum["BatchGetImage"] == len(indexes) + len(unknown)


def test_pipeline_benchmark_runs_every_phase_on_a_small_registry() -> None:
    from benchmarks.pipeline import PHASES
    from benchmarks.pipeline import run_once as pipeline

    result = pipeline(3_000, 30, postgres=False)
    assert result["job_status"] == "ok"
    assert set(result["phases"]) == set(PHASES) - {"store-postgresql"}
    assert result["findings"] > 1000 and result["proposals"] > 10
    assert result["scan_json_mib"] > 0
    assert result["peak_rss_mib"] >= max(p["peak_mib"] for p in result["phases"].values())
    # each command's time is the sum of its own phases; without PostgreSQL, that job is
    # not listed
    wall = {name: phase["wall"] for name, phase in result["phases"].items()}
    assert result["commands"] == {
        "nightly job, SQLite store": pytest.approx(
            sum(wall[p] for p in ("snapshot", "rules", "plan", "lifecycle", "store-sqlite"))
            + wall["report"],
            abs=0.05,  # the phases are rounded to 0.01 s each
        ),
        "hygiene scan --format json": pytest.approx(
            sum(wall[p] for p in ("snapshot", "rules", "plan", "lifecycle", "scan-json")),
            abs=0.05,  # the phases are rounded to 0.01 s each
        ),
    }


def test_pipeline_meter_attributes_a_short_peak_to_its_phase() -> None:
    """A 256 MiB buffer held for a moment inside an inner phase: the inner phase's peak
    has it, the enclosing one too, and the phase after it does not (the kernel's mark
    is reset as each phase begins, so even a peak between two samples is seen)."""
    from benchmarks.pipeline import Meter

    meter = Meter()
    size = 256 * 2**20
    try:
        with meter.phase("outer"), meter.phase("inner"):
            buffer = bytearray(size)  # zeroed: every page touched
            del buffer
        with meter.phase("after"):
            pass
    finally:
        meter.close()
    peaks = {name: phase["peak_mib"] for name, phase in meter.phases.items()}
    assert peaks["inner"] - meter.start_mib["inner"] >= 250
    assert peaks["outer"] >= peaks["inner"]
    assert peaks["after"] - meter.start_mib["after"] < 100
    assert meter.process_peak_mib() >= peaks["inner"]  # the reset does not lose it


def test_the_scan_floor_makes_exactly_the_collectors_minimum_calls(ecr: Any) -> None:
    """The bare boto3 scan that benchmarks.scan measures `hygiene scan` against makes the
    minimum calls, the same ECR calls the collector makes."""
    from benchmarks.scan import NOW, floor_scan
    from hygiene.config import Policy, ProjectsRegistry
    from hygiene.scan import collect, open_registry
    from hygiene_demo.faults import FaultProxy
    from hygiene_demo.scale import seed_scale_registry

    seed_scale_registry(ecr, 6, 12, NOW, index_every=3)
    config = Config(policy=Policy(), projects=ProjectsRegistry())
    with FaultProxy(ecr.endpoint_url, latency=0.001) as proxy:
        floor = floor_scan(proxy.endpoint_url, workers=4)
        inventory = collect(
            open_registry(config, endpoint_url=proxy.endpoint_url, session=ecr.session()),
            config,
            now=NOW,
            progress=False,
        )
    calls = inventory.run.api_calls
    ecr = {operation: n for operation, n in calls.items() if operation in floor}
    assert floor == minimum_calls(inventory) == ecr
    assert floor["BatchGetImage"] == 6 + 5  # the indexes, then untagged images (subject)
    # besides ECR's, the scan reads the workloads in use (one call per source here)
    assert {operation: calls[operation] for operation in set(calls) - set(floor)} == {
        "ListClusters": 1,
        "ListFunctions": 1,
        "DescribeJobDefinitions": 1,
    }


@pytest.mark.usefixtures("subprocess_env")  # it starts processes: the integration lane
def test_the_scan_benchmarks_processes_share_the_sittings_bytecode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the sitting's bytecode cache, a process writes the bytecode of what it
    imports there (even when the caller's environment says not to) and the next one
    finds it valid; without it, the caller's environment decides."""
    import subprocess

    from benchmarks.scan import CHECKOUT, _environment

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    cache = tmp_path / "bytecode"
    command = [sys.executable, "-c", "import hygiene.timetext"]
    subprocess.run(command, check=True, cwd=CHECKOUT, env=_environment(cache))
    [written] = cache.rglob("timetext.*.pyc")
    assert written.parent.name == "hygiene"  # the prefix mirrors the source's directory
    first = written.stat().st_mtime_ns
    subprocess.run(command, check=True, cwd=CHECKOUT, env=_environment(cache))
    assert written.stat().st_mtime_ns == first  # valid: read, not written again
    plain = _environment(None)
    assert plain["PYTHONDONTWRITEBYTECODE"] == "1" and "PYTHONPYCACHEPREFIX" not in plain


@pytest.mark.usefixtures("subprocess_env")  # it starts processes: the integration lane
def test_startup_benchmark_runs_each_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each command runs (it raises if one fails); with the bytecode cache, the warm-up
    writes the bytecode of the checkout's modules there, whatever the caller's
    environment says, and the timed runs find it valid."""
    from benchmarks.startup import CHECKOUT, COMMANDS, environment, timings

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    cache = tmp_path / "bytecode"
    for command in COMMANDS:
        cpu: list[float] = []
        runs = timings(sys.executable, CHECKOUT, command, 1, cache, cpu)
        assert len(runs) == 1 and runs[0] > 0
        assert len(cpu) == 1 and 0 < cpu[0]
    [written] = cache.rglob("hygiene/cli/rules.*.pyc")
    first = written.stat().st_mtime_ns
    timings(sys.executable, CHECKOUT, ["rules"], 1, cache)
    assert written.stat().st_mtime_ns == first  # valid: read, not written again
    plain = environment(CHECKOUT)
    assert plain["PYTHONDONTWRITEBYTECODE"] == "1" and "PYTHONPYCACHEPREFIX" not in plain


def test_discovery_benchmark_formula() -> None:
    from benchmarks.discovery import Fleet, expected_calls

    calls = expected_calls(Fleet())
    assert calls["DescribeServices"] == 3 * 2  # 20 services per cluster, 10 per call
    assert calls["ListFunctions"] == 2  # 15 × (1 + 3) + 10 = 70 entries, 50 a page
    assert calls["GetFunction"] == 15 * 4
    assert calls["DescribeTaskDefinition"] == 3 * (20 + 2 + 2)
    assert calls["kubernetes:list pods"] == 3  # 1,200 pods, 500 a page
    one = expected_calls(Fleet(clusters=1, services=5, job_definitions=0, pods=0))
    assert one["DescribeTasks"] == 1 and one["DescribeJobDefinitions"] == 1


def test_finding_json_benchmark_writes_the_same_bytes_both_ways() -> None:
    from benchmarks.findingjson import run_once as finding_json

    result = finding_json(3_000, 30, repeats=1)
    assert result["image_findings"] > 1000
    assert result["document"]["same_bytes"] and result["export"]["same_bytes"]
    assert result["document"]["mib"] > 0 and result["export"]["mib"] > 0
