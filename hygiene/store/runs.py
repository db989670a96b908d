"""The run history and each run's findings (scheduler, reports, ``hygiene runs``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from hygiene.errors import StoreError
from hygiene.model import Finding
from hygiene.store import findingrows
from hygiene.store.base import StoreBase, utcnow, whoami
from hygiene.store.bulk import insert_columns
from hygiene.store.models import FindingRow, RunRow
from hygiene.store.records import RunRecord, run_record

RUN_STATUSES = ("running", "ok", "degraded", "incomplete", "failed", "abandoned")
"""``running`` until finished; a finished run is ``ok``, ``degraded`` (its reports reached
no one), ``incomplete`` (unread parts, or stopped) or ``failed``; ``abandoned`` is set by
the next run that takes the lock a killed run held (:mod:`hygiene.store.locks`)."""
FINISHED_STATUSES = ("ok", "degraded", "incomplete", "failed")


class StoreRuns(StoreBase):
    """Runs: started, finished, summarised for later reports; their findings."""

    def record_run(
        self,
        kind: str,
        *,
        run_id: str | None = None,
        started_at: datetime | None = None,
        source: str = "",
    ) -> str:
        """Record that a run (``nightly``, ``weekly``, ``scan``, ``apply`` …) started.

        Returns the run id (``run_id`` or a new one); close it with :meth:`finish_run`.
        """
        run_id = run_id or f"{kind}-{uuid.uuid4().hex[:12]}"
        with self.session() as session:
            session.add(
                RunRow(
                    id=run_id,
                    kind=kind,
                    started_at=started_at or utcnow(),
                    status="running",
                    source=source,
                    host=whoami(),
                    counts={},
                    api_calls={},
                    errors=[],
                )
            )
        return run_id

    def finish_run(
        self,
        run_id: str,
        status: str,
        *,
        finished_at: datetime | None = None,
        counts: dict[str, Any] | None = None,
        api_calls: dict[str, int] | None = None,
        errors: Sequence[Any] = (),
    ) -> None:
        """Close a run: ``status`` is ``ok``, ``degraded``, ``incomplete`` or ``failed``.

        ``counts`` is free-form (repositories, images, findings, proposals, deleted …);
        ``errors`` is a list of strings or JSON-shaped dicts (e.g. ``asdict(ScanError)``).
        """
        if status not in FINISHED_STATUSES:
            raise ValueError(
                f"run status must be one of {'|'.join(FINISHED_STATUSES)}, not {status!r}"
            )
        with self.session() as session:
            row = session.get(RunRow, run_id)
            if row is None:
                raise StoreError(f"no run {run_id!r} in the store {self.url}")
            row.finished_at = finished_at or utcnow()
            row.status = status
            row.counts = dict(counts or {})
            row.api_calls = dict(api_calls or {})
            row.errors = list(errors)

    def set_run_summary(self, run_id: str, summary: dict[str, Any]) -> None:
        """Attach the report summary of a run (per-namespace bytes, findings per rule …),
        read back by later reports for trends and "changes since the previous run"."""
        with self.session() as session:
            row = session.get(RunRow, run_id)
            if row is None:
                raise StoreError(f"run {run_id!r} is not in the store")
            row.summary = dict(summary)

    def runs(self, last: int | None = 20, kind: str | None = None) -> list[RunRecord]:
        """The newest ``last`` runs (all when None), newest first."""
        query = select(RunRow).order_by(RunRow.started_at.desc(), RunRow.id.desc())
        if kind is not None:
            query = query.where(RunRow.kind == kind)
        if last is not None:
            query = query.limit(last)
        with self.session() as session:
            return [run_record(row) for row in session.scalars(query)]

    def record_findings(self, run_id: str, findings: Iterable[Finding]) -> int:
        """Store the findings of run ``run_id``; returns how many rows were written.

        Image findings are stored as totals per rule and repository (how many images,
        their bytes; no digests), every other finding as one row
        (:mod:`hygiene.store.findingrows`). One transaction, written in bulk
        (:func:`~hygiene.store.bulk.insert_columns`); a columnar
        :class:`~hygiene.findingtable.Findings` is counted from its columns without
        making objects or dicts.
        """
        names = ("run_id", *findingrows.TABLE_COLUMNS)

        def chunks() -> Iterator[list[Any]]:
            for columns in findingrows.row_chunks(findings):
                yield [[run_id] * len(columns[0]), *columns]

        with self.session() as session:
            return insert_columns(session, FindingRow.__table__, names, chunks())

    def prune_findings(self, before: datetime, *, keep: str | None = None) -> int:
        """Delete the stored findings of runs started before ``before`` (never those of
        run ``keep``); returns how many rows went. The runs themselves, their summaries
        (the reports' trends), proposals, decisions and audit rows stay."""
        old_runs = select(RunRow.id).where(RunRow.started_at < before)
        if keep is not None:
            old_runs = old_runs.where(RunRow.id != keep)
        with self.session() as session:
            result = session.execute(delete(FindingRow).where(FindingRow.run_id.in_(old_runs)))
            return int(getattr(result, "rowcount", 0) or 0)  # a CursorResult for a DELETE

    def findings(self, run_id: str) -> list[dict[str, Any]]:
        """The findings of one run: first its image totals, one dict per rule and
        repository with the keys of :data:`~hygiene.store.findingrows.TOTAL_KEYS`
        (``images``: how many image findings, ``bytes``: their sum), then each other
        finding as its ``Finding.to_json()`` dict (which has no ``images`` key); each
        kind in the order stored."""
        names = dict.fromkeys((*findingrows.COLUMNS, *findingrows.TOTAL_KEYS))
        columns = [getattr(FindingRow, name) for name in names]
        query = (
            select(*columns, FindingRow.data)
            .where(FindingRow.run_id == run_id)
            .order_by(FindingRow.images.is_(None), FindingRow.id)
        )
        with self.session() as session:
            out = []
            for row in session.execute(query):
                values = dict(row._mapping)
                if values["images"] is None:
                    out.append(findingrows.finding_json(values, row.data))
                else:
                    out.append(findingrows.total_json(values))
            return out
