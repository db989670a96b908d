"""Per-repository scan history: the last scan of each repository and the last one that
could not read it whole. What a proposal's confirmation is checked against."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hygiene.inventory import ANY, RepositoryKey, ScanCoverage
from hygiene.store.base import StoreBase
from hygiene.store.models import RepositoryScanRow
from hygiene.store.records import RepositoryScan


def record_scan(session: Session, coverage: ScanCoverage) -> None:
    """Note, in ``session``, that ``coverage``'s scan looked at its repositories."""
    at, run = coverage.scanned_at, coverage.run_id
    keys: list[tuple[RepositoryKey, str | None]] = [(k, None) for k in coverage.complete]
    keys += list(coverage.incomplete.items())
    keys += [
        ((account, region, ANY), why)
        for (account, region), why in coverage.incomplete_regions.items()
    ]
    for (account, region, repository), error in keys:
        row = session.get(RepositoryScanRow, (account, region, repository))
        if row is None:
            row = RepositoryScanRow(
                account=account,
                region=region,
                repository=repository,
                last_scan_run=run,
                last_scan_at=at,
            )
            session.add(row)
        if row.last_scan_at is None or at >= row.last_scan_at:
            row.last_scan_run, row.last_scan_at = run, at
        if error is None:
            if row.last_complete_at is None or at >= row.last_complete_at:
                row.last_complete_at = at
        elif row.last_incomplete_at is None or at >= row.last_incomplete_at:
            row.last_incomplete_run, row.last_incomplete_at = run, at
            row.last_error = error


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
