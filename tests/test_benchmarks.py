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


def test_rules_benchmark_in_use_everywhere_flags_policies_expiring_them() -> None:
    """``--in-use``: the oldest image of every repository in use and the generated policy
    on every repository with one: RP004 previews them all and flags some."""
    result = run_once(3_000, 30, in_use=True)
    assert result["by_rule"].get("RP004", 0) > 0
    assert result["kept"] > run_once(3_000, 30)["kept"]


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


@pytest.mark.parametrize("programs", [("floor", "scan"), ("floor", "scan", "baseline")])
def test_the_scan_benchmark_turns_the_order_round_by_round(programs: tuple[str, ...]) -> None:
    """Over 2 × n rounds each program runs in each place, and right after each other
    program, equally often; the first round keeps the given order."""
    from collections import Counter
    from itertools import pairwise

    from benchmarks.timeline import orders

    n = len(programs)
    rounds = orders(programs, 2 * n)
    assert rounds[0] == list(programs)
    assert all(sorted(order) == sorted(programs) for order in rounds)
    places = Counter((place, program) for order in rounds for place, program in enumerate(order))
    assert set(places.values()) == {2}
    assert len(places) == n * n
    after = Counter(pair for order in rounds for pair in pairwise(order))
    assert len(after) == n * (n - 1) and len(set(after.values())) == 1
    assert orders(programs, 1) == [list(programs)]


def test_the_scan_benchmarks_timeline_splits_a_run_into_phases() -> None:
    """Before the first request, the reads up to the last ECR answer (a later answer of
    another service is after them), and the rest to the exit; the CPU split by samples."""
    from benchmarks.timeline import phases

    stamps = [(10.5, 10.6, True), (11.0, 14.0, True), (14.2, 15.0, True), (15.1, 15.5, False)]
    samples = [(10.0, 0.0, 0.0), (10.4, 0.3, 0.1), (12.0, 0.5, 0.9), (14.9, 1.0, 2.0)]
    timeline = phases(10.0, 16.0, stamps, cpu=1.6, server_cpu=2.5, samples=samples)
    assert timeline["before"] == pytest.approx(0.5)
    assert timeline["reads"] == pytest.approx(4.5)
    assert timeline["after"] == pytest.approx(1.0)
    assert timeline["before"] + timeline["reads"] + timeline["after"] == pytest.approx(6.0)
    assert timeline["wall"] == pytest.approx(6.0)
    assert (timeline["requests"], timeline["ecr_requests"]) == (4, 3)
    # the samples at 10.5 and 15.0 are the ones taken at 10.4 and 14.9
    assert timeline["cpu_before"] == pytest.approx(0.3)
    assert timeline["cpu_reads"] == pytest.approx(0.7)
    assert timeline["cpu_after"] == pytest.approx(0.6)
    assert timeline["server_cpu_before"] == pytest.approx(0.1)
    assert timeline["server_cpu_reads"] == pytest.approx(1.9)
    assert timeline["server_cpu_after"] == pytest.approx(0.5)
    plain = phases(10.0, 16.0, stamps, cpu=1.6, server_cpu=2.5)
    assert "cpu_reads" not in plain and plain["cpu"] == 1.6


def test_the_scan_benchmarks_proxy_stamps_each_request(ecr: Any) -> None:
    """Each request is stamped once, in order, as ECR's or not; ``take`` hands them over."""
    from benchmarks.timeline import TimedProxy

    session = ecr.session()
    with TimedProxy(ecr.endpoint_url) as proxy:
        session.client("ecr", endpoint_url=proxy.endpoint_url).describe_repositories()
        session.client("ecs", endpoint_url=proxy.endpoint_url).list_clusters()
        stamps = proxy.take()
        assert proxy.take() == []
    assert [is_ecr for _, _, is_ecr in stamps] == [True, False]
    assert all(arrived <= answered for arrived, answered, _ in stamps)
    assert stamps[0][1] <= stamps[1][0]


def _fake_runs(walls: list[float]) -> list[dict[str, Any]]:
    return [
        {"wall": w, "before": 0.1, "reads": w - 0.2, "after": 0.1, "requests": 7}
        | {"cpu": 1.0, "server_cpu": 2.0}
        for w in walls
    ]


def test_the_scan_benchmark_prints_each_rounds_ratio_and_the_ratio_of_medians_last(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's ratio is the ratio of the medians, printed last; each round's own
    ratio (scan and floor of the same round) is printed beside it."""
    import benchmarks.scan as bench
    from benchmarks.timeline import orders

    runs = {
        "floor": _fake_runs([4.0, 5.0, 6.0]),
        "scan": _fake_runs([4.8, 5.5, 6.0]),
        "baseline": _fake_runs([5.2, 4.5, 9.0]),
    }
    rounds = orders(bench.PROGRAMS, 3)
    result = bench.summary(
        runs,
        rounds,
        baseline=Path("/elsewhere"),
        latency=0.02,
        repositories=2,
        images=10,
        bytecode_cache=True,
    )
    assert result["ratio"] == pytest.approx(5.5 / 5.0, abs=1e-3)
    assert result["paired_ratios"] == pytest.approx([1.2, 1.1, 1.0], abs=1e-3)
    assert result["paired_ratio_median"] == pytest.approx(1.1, abs=1e-3)
    assert result["baseline_ratio"] == pytest.approx(5.2 / 5.0, abs=1e-3)
    assert result["baseline_paired_ratios"] == pytest.approx([1.3, 0.9, 1.5], abs=1e-3)
    assert result["scan_over_baseline"] == pytest.approx([4.8 / 5.2, 5.5 / 4.5, 6 / 9], abs=1e-3)
    assert result["timeline"]["scan"]["reads"] == pytest.approx(5.3)
    assert result["paired_reads"] == pytest.approx([4.6 / 3.8, 5.3 / 4.8, 1.0], abs=1e-3)
    assert result["order"] == rounds and result["latency_ms"] == 20
    monkeypatch.setattr(bench, "run_size", lambda *args, **kwargs: result)
    assert bench.main(["--sizes", "2x5", "--repeat", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("ratio 2×5: hygiene scan / floor = 1.10 ")
    assert lines[-2] == "round by round 2×5: hygiene scan / floor 1.20, 1.10, 1.00 (median 1.10)"
    assert (
        lines[-3] == "reads round by round 2×5: hygiene scan / floor 1.21, 1.10, 1.00 (median 1.10)"
    )
    table = {line.split()[0]: line for line in lines if line.startswith(("floor ", "baseline "))}
    assert table["floor"].split()[1:5] == ["5.00", "0.10", "4.80", "0.10"]


@pytest.mark.usefixtures("subprocess_env")  # it starts processes: the integration lane
def test_the_scan_benchmark_times_each_program_in_a_small_sitting(ecr: Any) -> None:
    """A sitting at 3 × 4 with this checkout as its own baseline: each program's run has
    its phases (adding up to its wall time) and its requests; the scans read it all."""
    from benchmarks.scan import CHECKOUT, run_size

    result = run_size(3, 4, 0.0, 1, baseline=CHECKOUT)
    assert result["order"] == [["floor", "scan", "baseline"]]
    assert result["scan_complete"] and result["scan_images"] == result["images"] > 0
    for program in ("floor", "scan", "baseline"):
        [run] = result["runs"][program]
        assert run["before"] + run["reads"] + run["after"] == pytest.approx(run["wall"], abs=0.01)
        assert min(run["before"], run["reads"], run["after"]) > 0
        assert run["cpu"] > 0 and run["server_cpu"] > 0
    floor, scan = result["runs"]["floor"][0], result["runs"]["scan"][0]
    assert floor["requests"] == floor["ecr_requests"] == result["floor_requests"]
    assert scan["ecr_requests"] == floor["ecr_requests"]
    assert scan["requests"] == scan["ecr_requests"] + 3  # ListClusters, ListFunctions …
    assert result["runs"]["baseline"][0]["ecr_requests"] == floor["ecr_requests"]


def test_the_scan_benchmark_refuses_a_failed_run_as_a_time(ecr: Any) -> None:
    from benchmarks.timeline import TimedProxy, run_timed

    with TimedProxy(ecr.endpoint_url) as proxy, pytest.raises(RuntimeError, match="with 3"):
        run_timed(
            [sys.executable, "-c", "raise SystemExit(3)"],
            proxy=proxy,
            stdout=sys.stdout,
            cwd=Path.cwd(),
            env={},
        )


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
        assert len(cpu) == 1 and cpu[0] > 0
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


@pytest.mark.usefixtures("subprocess_env")  # it starts processes: the integration lane
def test_the_timestamps_benchmark_reads_equal_inventories_both_ways(
    ecr: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """benchmarks.timestamps reads one registry with botocore's parser and with the
    tool's, in processes of their own: both inventories are whole and equal, and each
    process's CPU, peak and faults are printed."""
    from benchmarks.timestamps import main

    assert main(["--size", "2x5", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 × 5: 10 images, equal inventories" in out
    for variant in ("botocore", "tool"):
        assert any(line.startswith(f"{variant} ") and "CPU" in line for line in out.splitlines())


def test_the_dropbehind_benchmark_writes_the_same_document_both_ways(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """benchmarks.dropbehind writes the scan document plainly and let go, turning the
    order round by round, and refuses documents that differ."""
    from benchmarks.dropbehind import main, run

    result = run(3_000, 2)
    assert len(result["plain"]) == len(result["let go"]) == 2 and result["bytes"] > 2**20
    assert main(["--images", "2000", "--repeat", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "2,000 images: scan document" in lines[-3] and lines[-3].endswith("same bytes")
    assert lines[-2].startswith("  median plain") and lines[-1].startswith("  median let go")
