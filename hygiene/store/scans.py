"""Per-repository scan history: the last scan of each repository and the last one that
could not read it whole. What a proposal's confirmation is checked against."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from hygiene.inventory import ANY, RepositoryKey, ScanCoverage
from hygiene.store.base import StoreBase
from hygiene.store.bulk import insert_many
from hygiene.store.models import RepositoryScanRow
from hygiene.store.records import RepositoryScan

_SCAN_FIELDS = (
    "last_scan_run",
    "last_scan_at",
    "last_complete_at",
    "last_incomplete_run",
    "last_incomplete_at",
    "last_error",
)


def record_scan(session: Session, coverage: ScanCoverage) -> None:
    """Note, in ``session``, that ``coverage``'s scan looked at its repositories.

    One query reads the rows of the accounts and regions concerned; the new rows are
    inserted and the changed ones updated in bulk (a nightly run looks at every
    repository: 10,000 at a million images)."""
    at, run = coverage.scanned_at, coverage.run_id
    keys: list[tuple[RepositoryKey, str | None]] = [(k, None) for k in coverage.complete]
    keys += list(coverage.incomplete.items())
    keys += [
        ((account, region, ANY), why)
        for (account, region), why in coverage.incomplete_regions.items()
    ]
    if not keys:
        return
    table: Table = RepositoryScanRow.__table__  # type: ignore[assignment]
    accounts = sorted({k[0] for k, _ in keys})
    regions = sorted({k[1] for k, _ in keys})
    known: dict[RepositoryKey, dict[str, Any]] = {}
    for start in range(0, len(accounts), 500):
        query = select(table).where(
            table.c.account.in_(accounts[start : start + 500]), table.c.region.in_(regions)
        )
        for found in session.execute(query):
            known[(found.account, found.region, found.repository)] = {
                name: getattr(found, name) for name in _SCAN_FIELDS
            }
    new: dict[RepositoryKey, dict[str, Any]] = {}
    changed: dict[RepositoryKey, dict[str, Any]] = {}
    for key, error in keys:
        row = known.get(key)
        if row is None:
            row = new.get(key)
        if row is None:
            row = new[key] = dict.fromkeys(_SCAN_FIELDS)
            row.update(last_scan_run=run, last_scan_at=at)
        elif key in known:
            changed[key] = row
        if row["last_scan_at"] is None or at >= row["last_scan_at"]:
            row["last_scan_run"], row["last_scan_at"] = run, at
        if error is None:
            if row["last_complete_at"] is None or at >= row["last_complete_at"]:
                row["last_complete_at"] = at
        elif row["last_incomplete_at"] is None or at >= row["last_incomplete_at"]:
            row["last_incomplete_run"], row["last_incomplete_at"] = run, at
            row["last_error"] = error
    insert_many(
        session,
        table,
        (
            {"account": a, "region": r, "repository": repository, **row}
            for (a, r, repository), row in new.items()
        ),
    )
    if changed:
        where = (
            (table.c.account == bindparam("key_account"))
            & (table.c.region == bindparam("key_region"))
            & (table.c.repository == bindparam("key_repository"))
        )
        session.execute(
            update(table).where(where).values({name: bindparam(name) for name in _SCAN_FIELDS}),
            [
                {"key_account": a, "key_region": r, "key_repository": repository, **row}
                for (a, r, repository), row in changed.items()
            ],
        )


def _incomplete_at(row: RepositoryScanRow) -> datetime:
    assert row.last_incomplete_at is not None
    return row.last_incomplete_at


class StoreScans(StoreBase):
    """Reading the per-repository scan history (written by ``upsert_proposals``)."""

    def repository_scans(
        self, keys: Iterable[RepositoryKey]
    ) -> dict[RepositoryKey, RepositoryScan]:
        """For each (account, region, repository): its latest scan and latest incomplete
        scan, a region-level error counting for every repository of its account and
        region (account or region ``*``: of every account, of every region)."""
        wanted = set(keys)
        if not wanted:
            return {}
        regions = sorted({region for _, region, _ in wanted} | {ANY})
        with self.session() as session:
            rows = list(
                session.scalars(
                    select(RepositoryScanRow).where(RepositoryScanRow.region.in_(regions))
                )
            )
        own = {(r.account, r.region, r.repository): r for r in rows}
        regional = [r for r in rows if r.repository == ANY]
        out: dict[RepositoryKey, RepositoryScan] = {}
        for key in wanted:
            account, region, _ = key
            mine = [own[key]] if key in own else []
            mine += [
                r for r in regional if r.region in (ANY, region) and r.account in (ANY, account)
            ]
            if not mine:
                out[key] = RepositoryScan()
                continue
            last = max(mine, key=lambda r: r.last_scan_at)
            incomplete = [r for r in mine if r.last_incomplete_at is not None]
            worst = max(incomplete, key=_incomplete_at) if incomplete else None
            out[key] = RepositoryScan(
                last_scan_run=last.last_scan_run,
                last_scan_at=last.last_scan_at,
                last_incomplete_run=worst.last_incomplete_run if worst else None,
                last_incomplete_at=worst.last_incomplete_at if worst else None,
                last_error=worst.last_error if worst else None,
            )
        return out
