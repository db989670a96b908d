"""Every path stores a time as the same text: SQLAlchemy's.

SQLite has no time type: a time is text, and the store compares and orders it as text in
SQL. The bulk path (:func:`hygiene.store.bulk.insert_many`: new proposals, repository
scans) writes it as SQLAlchemy's DateTime does (``2026-11-28 12:00:00.000000``), not as
sqlite3's own default adapter did (deprecated since Python 3.12; ``2026-11-28 12:00:00``
for a whole second). Rows an older version wrote that way are not rewritten: they read
back and merge as before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text

from hygiene.store import Store
from hygiene.store.models import ProposalRow, RepositoryScanRow
from tests import builders
from tests.builders import NOW

TIMES = {
    "whole seconds": NOW,
    "microseconds": NOW + timedelta(microseconds=250_001),
    "one microsecond": NOW + timedelta(seconds=59, microseconds=1),
    "another zone": datetime(2026, 11, 28, 9, 0, tzinfo=timezone(timedelta(hours=-3))),
}


def time_texts(store: Store, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    """The stored text of ``columns`` (SQLite: quote(), type and value; PostgreSQL: the
    value as text), every row, in key order."""
    if store.engine.dialect.name == "postgresql":
        listed = ", ".join(f"{c}::text" for c in columns)
    else:
        listed = ", ".join(f"quote({c})" for c in columns)
    with store.engine.connect() as connection:
        query = f"SELECT {listed} FROM {table} ORDER BY 1"
        return [tuple(row) for row in connection.exec_driver_sql(query)]


@pytest.mark.parametrize("label", list(TIMES))
def test_the_bulk_path_and_the_orm_store_the_same_time_text(store_url: str, label: str) -> None:
    """A new proposal (bulk insert) and the same times written by the ORM (an update of
    every time column) are the same text, byte for byte."""
    at = TIMES[label]
    proposal = builders.proposal(digests=["a"])
    with Store(store_url) as store:
        # insert_many: a new proposal, first seen and confirmed at ``at``, and its
        # repository's first scan record
        store.upsert_proposals([proposal], at, coverage=builders.coverage([proposal], at=at))
        columns = ["first_seen", "last_seen", "confirmed_at"]
        bulk = time_texts(store, "proposals", columns)
        scans_bulk = time_texts(store, "repository_scans", ["last_scan_at", "last_complete_at"])
        with store.session() as session:  # the ORM writes the same values again
            row = session.get(ProposalRow, proposal.id)
            assert row is not None
            row.first_seen = row.last_seen = row.confirmed_at = at + timedelta(days=1)
            for scan in session.query(RepositoryScanRow):
                scan.last_scan_at = scan.last_complete_at = at + timedelta(days=1)
        with store.session() as session:
            row = session.get(ProposalRow, proposal.id)
            assert row is not None
            row.first_seen = row.last_seen = row.confirmed_at = at
            for scan in session.query(RepositoryScanRow):
                scan.last_scan_at = scan.last_complete_at = at
        assert time_texts(store, "proposals", columns) == bulk
        assert time_texts(store, "repository_scans", ["last_scan_at", "last_complete_at"]) == (
            scans_bulk
        )
        if store.engine.dialect.name == "sqlite":
            naive = at.astimezone(UTC).replace(tzinfo=None)
            assert bulk == [(f"'{naive:%Y-%m-%d %H:%M:%S.%f}'",) * 3]


def old_text(store: Store) -> None:
    """Rewrite every whole-second time of ``proposals`` and ``repository_scans`` as the
    bulk path wrote it before (sqlite3's adapter: no ``.000000``)."""
    with store.engine.begin() as connection:
        for table, columns in (
            ("proposals", ["first_seen", "last_seen", "confirmed_at", "grace_until"]),
            ("repository_scans", ["last_scan_at", "last_complete_at"]),
        ):
            for column in columns:
                connection.execute(
                    text(
                        f"UPDATE {table} SET {column} = substr({column}, 1, 19) "
                        f"WHERE {column} LIKE '%.000000'"
                    )
                )


def test_a_store_with_old_time_text_reads_and_merges_as_a_new_one(tmp_path: Any) -> None:
    """Two stores hold the same night, one with the times of its bulk-written rows in the
    old text; the next nights (refreshed, expired, revived, confirmed again, notified)
    give the same proposals and counts in both, and rows not written again keep their
    old text: nothing rewrites them."""
    plan = [builders.proposal(repository=f"team/r{i}", digests=[f"d{i}"]) for i in range(40)]
    old, new = Store(str(tmp_path / "old.db")), Store(str(tmp_path / "new.db"))
    with old, new:
        for store in (old, new):
            store.upsert_proposals(plan, NOW, coverage=builders.coverage(plan, at=NOW))
        old_text(old)
        (first,) = time_texts(old, "proposals", ["first_seen"])[:1]
        assert first == ("'2026-11-28 12:00:00'",)  # as older versions stored it
        keys = {(p.account, p.region, p.repository) for p in plan}
        assert old.proposals() == new.proposals()
        assert old.repository_scans(keys) == new.repository_scans(keys)

        counts = []
        for night, subset in ((1, plan[:30]), (2, plan[:20]), (9, plan[:35])):
            at = NOW + timedelta(days=night)
            for store in (old, new):
                counts.append(
                    store.upsert_proposals(subset, at, coverage=builders.coverage(subset, at=at))
                )
                store.mark_notified(at, ids=[p.id for p in subset[:5]])
        assert counts[0::2] == counts[1::2]
        assert old.proposals() == new.proposals()
        assert old.repository_scans(keys) == new.repository_scans(keys)
        # what was not written again keeps its old text: the scans and the first seen of
        # the repositories no later scan read
        untouched = {p.id for p in plan[35:]}
        with old.engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT p.id, quote(p.first_seen), quote(s.last_scan_at) FROM proposals p "
                "JOIN repository_scans s ON s.repository = p.repository"
            ).all()
        kept = {text for proposal_id, *texts in rows if proposal_id in untouched for text in texts}
        assert kept == {"'2026-11-28 12:00:00'"}
        assert len([r for r in rows if r[0] in untouched]) == 5


def test_the_bulk_path_needs_no_default_adapter_of_sqlite3(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite3's default datetime adapters are deprecated (Python 3.12) and may go: the
    bulk path hands the driver text, never a datetime, so a night stores without them."""
    import sqlite3
    from datetime import date

    for kind in (datetime, date):
        monkeypatch.delitem(sqlite3.adapters, (kind, sqlite3.PrepareProtocol), raising=False)
    plan = [builders.proposal(repository=f"team/r{i}", digests=[f"d{i}"]) for i in range(3)]
    with Store(str(tmp_path / "h.db")) as store:
        store.upsert_proposals(plan, NOW, coverage=builders.coverage(plan, at=NOW))
        assert {s.proposal.first_seen for s in store.proposals()} == {NOW}
