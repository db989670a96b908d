"""Bulk writes (COPY on PostgreSQL, executemany on SQLite) store what the row-by-row code
stored: every finding of a columnar evaluation (its image findings as totals), and a plan
of hundreds of proposals merged into what is there (new, refreshed, revived, expired)
across the lookup's chunks."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from benchmarks.rules import bench_config, synthetic_inventory
from hygiene.findingtable import Findings
from hygiene.model import ProposalState
from hygiene.rules import evaluate
from hygiene.store import Store
from tests import builders
from tests.builders import NOW


def test_every_finding_is_stored_as_a_total_or_its_json(store: Store) -> None:
    inventory = synthetic_inventory(3_000, 30)
    evaluation = evaluate(inventory, bench_config(), NOW, in_use=[])
    findings = evaluation.findings
    assert isinstance(findings, Findings) and findings.image_count > 1000
    run_id = store.record_run("nightly", started_at=NOW)
    stored = store.record_findings(run_id, findings)
    back = store.findings(run_id)
    assert len(back) == stored < findings.image_count / 5
    totals = [row for row in back if "images" in row]
    assert sum(t["images"] for t in totals) == findings.image_count
    assert sum(t["bytes"] for t in totals) == sum(f.bytes for f in findings if f.image_digest)
    others = [f.to_json() for f in findings if f.image_digest is None]
    assert back[len(totals) :] == others  # in order, equal


def test_findings_with_text_beyond_ascii_and_quotes(store: Store) -> None:
    finding = builders.finding("IM002", message='não "usada" há 90 dias\tnem\\aqui')
    run_id = store.record_run("scan", started_at=NOW)
    store.record_findings(run_id, [finding, finding])
    assert store.findings(run_id) == [finding.to_json(), finding.to_json()]


def test_a_large_plan_is_merged_like_a_small_one(store: Store) -> None:
    plan = [builders.proposal(digests=[f"d{i}"], summary=f"s{i}") for i in range(1_200)]
    assert store.upsert_proposals(plan, NOW) == {
        "new": 1_200,
        "refreshed": 0,
        "revived": 0,
        "expired": 0,
        "confirmed": 0,
    }
    later = NOW + timedelta(days=1)
    store.set_state(plan[0].id, ProposalState.APPLIED, "applied", later)
    # the next night: most come back (one with an empty summary), 100 are gone
    again = [replace(p, summary="" if i == 1 else "new") for i, p in enumerate(plan[:1_100])]
    assert store.upsert_proposals(again, later) == {
        "new": 0,
        "refreshed": 1_099,
        "revived": 1,
        "expired": 100,
        "confirmed": 0,
    }
    stored = {s.id: s for s in store.proposals()}
    assert stored[plan[0].id].state is ProposalState.PROPOSED  # revived
    assert stored[plan[0].id].proposal.first_seen == later
    assert stored[plan[1].id].proposal.summary == "s1"  # an empty summary keeps the old
    assert stored[plan[2].id].proposal.summary == "new"
    assert stored[plan[2].id].last_seen == later
    assert stored[plan[2].id].proposal.first_seen == NOW
    assert stored[plan[1_150].id].state is ProposalState.EXPIRED
    assert stored[plan[1_150].id].outcome.startswith("no longer proposed")
    assert stored[plan[2].id].proposal.evidence == plan[2].evidence


def test_as_stored_equals_reading_the_proposals_back(store: Store) -> None:
    """What the job hands on after the store: the proposals as stored, in the store's
    order, read without their evidence."""
    plan = [
        builders.proposal(digests=[f"d{i}"], repository=f"{ns}/app{i % 7}", summary=f"s{i}")
        for i, ns in enumerate(["ml", "suporte", "eureca"] * 300)
    ]
    plan.append(builders.proposal(digests=["x"], repository="nginx", namespace=None))
    store.upsert_proposals(plan[:500], NOW)
    store.approve([plan[3].id], "admin@lsd.ufcg.edu.br")
    later = NOW + timedelta(days=2)
    store.upsert_proposals(plan, later)
    expected = [s.proposal for s in store.proposals(ids=[p.id for p in plan])]
    assert store.as_stored(plan) == expected
    assert expected[0].namespace is None or expected[-1].namespace is None  # NULLs ordered
    assert {p.state for p in expected} == {ProposalState.PROPOSED, ProposalState.APPROVED}


def test_a_large_plan_is_confirmed_in_bulk_and_never_back_in_time(store: Store) -> None:
    """The bulk merge confirms every proposal of a repository the scan read whole, moves
    a confirmation forward only, and a revived proposal keeps none unless its scan gives
    one."""
    plan = [
        builders.proposal(digests=[f"d{i}"], repository=f"suporte/app{i % 3}") for i in range(600)
    ]
    unread = (builders.ACCOUNT, builders.REGION, "suporte/app2")
    first = builders.coverage(plan, run_id="n1", incomplete={unread: "DescribeImages: 500"})
    counts = store.upsert_proposals(plan, NOW, coverage=first)
    assert counts["new"] == 600 and counts["confirmed"] == 400
    stored = {s.id: s for s in store.proposals()}
    assert {stored[p.id].confirmed_by for p in plan if p.repository != unread[2]} == {"n1"}
    assert {stored[p.id].confirmed_by for p in plan if p.repository == unread[2]} == {None}

    later = NOW + timedelta(days=1)
    store.set_state(plan[0].id, ProposalState.APPLIED, "applied", later)
    second = builders.coverage(plan, at=later, run_id="n2")
    assert store.upsert_proposals(plan, later, coverage=second)["confirmed"] == 600
    older = builders.coverage(plan, at=NOW - timedelta(days=3), run_id="old-snapshot")
    store.upsert_proposals(plan, later, coverage=older)
    stored = {s.id: s for s in store.proposals()}
    assert {s.confirmed_by for s in stored.values()} == {"n2"}  # never moved back
    assert stored[plan[0].id].state is ProposalState.PROPOSED  # revived, confirmed by n2
    assert stored[plan[0].id].confirmed_at == later
