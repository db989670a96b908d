"""Bulk writes (COPY on PostgreSQL, executemany on SQLite) store what the row-by-row code
stored: every finding of a columnar evaluation (its image findings as totals), and a plan
of hundreds of proposals merged into what is there (new, refreshed, revived, expired)
across the lookup's chunks."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta, timezone
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, delete, insert

from benchmarks.rules import bench_config, synthetic_inventory
from hygiene.findingtable import Findings
from hygiene.model import ProposalState
from hygiene.rules import evaluate
from hygiene.store import Store
from hygiene.store.bulk import insert_many
from hygiene.store.models import ProposalRow
from hygiene.store.records import proposal_columns
from tests import builders
from tests.builders import NOW

RECIFE = timezone(timedelta(hours=-3))


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


def _proposal_rows(seed: int) -> list[dict[str, Any]]:
    """``proposals`` rows as ``upsert_proposals`` writes them, their target and evidence
    holding what JSON text must escape (quotes, backslashes, newlines, tabs, text beyond
    ASCII), keys out of order, whole numbers beyond 32 bits, None, nesting."""
    rng = random.Random(seed)
    odd = ['não "usada"', "a\\b", "line\nnext\r\tend", "\u2028 ✓ 🐳", "", "\\N", "x" * 300]
    rows = []
    for i in range(120):
        evidence = {
            "z": rng.choice(odd),
            "images": [
                {"digest": f"sha256:{i:064x}", "tags": rng.sample(odd, 2), "bytes": 2**40 + i}
                for _ in range(rng.randint(0, 5))
            ],
            "a": None if i % 3 else {"nested": [True, False, None, rng.choice(odd)]},
        }
        proposal = builders.proposal(
            repository=f"repo/{rng.choice(odd)}"[:200],
            digests=[f"d{i}", rng.choice(odd)],
            evidence=evidence,
            summary=rng.choice(odd),
        )
        row = proposal_columns(proposal)
        row.update(
            state="proposed",
            first_seen=NOW,  # whole seconds
            # microseconds (some none), and an aware time in another zone
            last_seen=NOW + timedelta(seconds=i, microseconds=(i * 7919) % 1_000_000 * (i % 3)),
            grace_until=None if i % 2 else (NOW + timedelta(days=7)).astimezone(RECIFE),
            confirmed_by=None,
            confirmed_at=None if i % 5 else NOW + timedelta(microseconds=i + 1),
        )
        rows.append(row)
    return rows


def _raw_rows(engine: Any, table: Any = ProposalRow.__table__) -> list[tuple[Any, ...]]:
    """Every row of ``table`` as the database holds it: each column as its text
    (PostgreSQL: a json value's text as stored) or SQLite's quote() (type and value)."""
    names = [c.name for c in table.columns]
    if engine.dialect.name == "postgresql":
        listed = ", ".join(f'"{n}"::text' for n in names)
    else:
        listed = ", ".join(f'quote("{n}")' for n in names)
    order = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
    with engine.connect() as connection:
        query = f"SELECT {listed} FROM {table.name} ORDER BY {order}"
        return [tuple(row) for row in connection.exec_driver_sql(query)]


@pytest.mark.parametrize("seed", [1, 2])
def test_insert_many_stores_what_sqlalchemy_s_own_insert_stores(store_url: str, seed: int) -> None:
    """The bulk path (COPY on PostgreSQL, executemany on SQLite) stores every column as
    SQLAlchemy's own executemany does with orjson as the JSON serializer: the same text,
    byte for byte, and the same types; times too (SQLite: SQLAlchemy's text, with
    ``.000000`` for a whole second, not sqlite3's own adapter's)."""
    rows = _proposal_rows(seed)
    table = ProposalRow.__table__
    with Store(store_url) as store:
        with store.session() as session:
            assert insert_many(session, table, rows) == len(rows)
        fast = _raw_rows(store.engine)
        with store.session() as session:
            session.execute(delete(table))
        reference = create_engine(store_url, json_serializer=lambda v: orjson.dumps(v).decode())
        with reference.begin() as connection:
            connection.execute(insert(table), rows)
        reference.dispose()
        expected = _raw_rows(store.engine)
        assert expected == fast
    assert len(fast) == len(rows)
    assert any("\\\\" in str(value) for row in fast for value in row)  # escapes were needed


def test_a_store_of_64_kib_pages_holds_what_one_of_4_kib_pages_holds(tmp_path: Any) -> None:
    """The same night (findings, scan record, proposals) stored into a new store (64 KiB
    pages) and into one created with SQLite's default 4 KiB pages: every row of every
    table the same, in type and value."""
    import sqlite3

    from hygiene.store.models import FindingRow, RepositoryScanRow
    from hygiene.wiring import persist_with

    inventory = synthetic_inventory(3_000, 30, seed=3)
    evaluation = evaluate(inventory, bench_config(), NOW, in_use=[])
    from hygiene.plan import plan

    proposals = plan(evaluation, inventory, bench_config(), NOW)
    assert len(proposals) > 20
    with sqlite3.connect(tmp_path / "small.db") as connection:
        connection.execute("PRAGMA journal_mode=WAL")  # a file older versions created
    tables = [ProposalRow.__table__, FindingRow.__table__, RepositoryScanRow.__table__]
    stored = []
    for name, size in (("small.db", 4096), ("new.db", 65536)):
        with Store(str(tmp_path / name)) as store:
            with store.engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA page_size").scalar() == size
            run_id = store.record_run("nightly", run_id="night-1", started_at=NOW)
            persist_with(store)(run_id, inventory, evaluation, proposals)
            stored.append([_raw_rows(store.engine, table) for table in tables])
    assert stored[0] == stored[1]
    assert all(stored[0])
