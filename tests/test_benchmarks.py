"""The benchmarks in benchmarks/ still run against the current code (their figures are in
docs/benchmarks.md; nothing here is timed)."""

from __future__ import annotations

from datetime import datetime

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
