"""Findings retention: the findings of old runs go, everything else stays (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from hygiene.store import Store
from hygiene.wiring import persist_with
from tests import builders
from tests.builders import NOW


def _findings(n: int) -> list:
    """``n`` findings that name no image, and two image findings: ``n + 1`` rows (the
    image findings are one total)."""
    images = [builders.finding("IM002", digest=f"img{i}") for i in range(2)]
    return [*images, *(builders.finding("RP001", f"suporte/app{i}") for i in range(n))]


def test_prune_deletes_only_the_findings_of_runs_started_before_the_cutoff(store: Store) -> None:
    old = store.record_run("nightly", started_at=NOW - timedelta(days=100))
    recent = store.record_run("nightly", started_at=NOW - timedelta(days=10))
    store.record_findings(old, _findings(3))
    store.record_findings(recent, _findings(2))

    assert store.prune_findings(NOW - timedelta(days=90)) == 4
    assert store.findings(old) == []
    assert len(store.findings(recent)) == 3
    assert {r.id for r in store.runs(last=None)} == {old, recent}  # the runs stay
    assert store.prune_findings(NOW - timedelta(days=90)) == 0  # nothing left to prune


def test_prune_never_takes_the_run_it_is_told_to_keep(store: Store) -> None:
    run = store.record_run("nightly", started_at=NOW - timedelta(days=400))
    store.record_findings(run, _findings(2))
    assert store.prune_findings(NOW, keep=run) == 0
    assert len(store.findings(run)) == 3


def test_the_nightly_persist_prunes_by_the_configured_retention(store: Store) -> None:
    old = store.record_run("nightly", started_at=NOW - timedelta(days=31))
    kept = store.record_run("nightly", started_at=NOW - timedelta(days=29))
    for run in (old, kept):
        store.record_findings(run, _findings(2))
    inventory = builders.inventory([builders.image_row("a")], now=NOW)
    evaluation = builders.evaluation(_findings(1))
    current = store.record_run("nightly", started_at=NOW)

    persist_with(store, findings_retention_days=30)(current, inventory, evaluation, [])

    assert store.findings(old) == []
    assert len(store.findings(kept)) == 3
    assert len(store.findings(current)) == 2
