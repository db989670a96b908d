"""The append-only audit log: every decision and every action on the registry."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from hygiene.store.base import StoreBase, utcnow
from hygiene.store.models import AuditRow
from hygiene.store.records import AuditEntry, audit_entry


class StoreAudit(StoreBase):
    """Audit rows: appended in one transaction per call, read back oldest first."""

    def audit(
        self,
        action: str,
        outcome: str,
        *,
        at: datetime | None = None,
        run_id: str | None = None,
        proposal_id: str | None = None,
        intent_id: int | None = None,
        actor: str = "",
        account: str | None = None,
        region: str | None = None,
        repository: str | None = None,
        digest: str | None = None,
        detail: str = "",
        dry_run: bool = False,
        data: dict[str, Any] | None = None,
    ) -> int:
        """Append one audit row (committed before returning); returns its id."""
        return self.audit_many(
            [
                dict(
                    action=action,
                    outcome=outcome,
                    at=at,
                    run_id=run_id,
                    proposal_id=proposal_id,
                    intent_id=intent_id,
                    actor=actor,
                    account=account,
                    region=region,
                    repository=repository,
                    digest=digest,
                    detail=detail,
                    dry_run=dry_run,
                    data=data,
                )
            ]
        )[0]

    def audit_many(self, entries: Sequence[dict[str, Any]]) -> list[int]:
        """Append several audit rows in ONE transaction (all or none); returns ids."""
        rows = []
        for entry in entries:
            values = dict(entry)
            values["at"] = values.get("at") or utcnow()
            values["data"] = values.get("data") or {}
            values.setdefault("detail", "")
            values.setdefault("actor", "")
            values.setdefault("dry_run", False)
            rows.append(AuditRow(**values))
        with self.session() as session:
            session.add_all(rows)
            session.flush()
            return [row.id for row in rows]

    def audit_log(
        self,
        *,
        since: datetime | None = None,
        proposal_id: str | None = None,
        run_id: str | None = None,
        outcome: str | Iterable[str] | None = None,
        include_dry_run: bool = True,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Audit rows, oldest first, filtered by time, proposal, run or outcome(s)."""
        query = select(AuditRow).order_by(AuditRow.id)
        if since is not None:
            query = query.where(AuditRow.at >= since)
        if proposal_id is not None:
            query = query.where(AuditRow.proposal_id == proposal_id)
        if run_id is not None:
            query = query.where(AuditRow.run_id == run_id)
        if outcome is not None:
            outcomes = [outcome] if isinstance(outcome, str) else list(outcome)
            query = query.where(AuditRow.outcome.in_(outcomes))
        if not include_dry_run:
            query = query.where(AuditRow.dry_run.is_(False))
        if limit is not None:
            query = query.limit(limit)
        with self.session() as session:
            return [audit_entry(row) for row in session.scalars(query)]

    def open_intents(self) -> list[AuditEntry]:
        """Intent rows (not dry-run) with no outcome row: writes a crash interrupted."""
        with self.session() as session:
            answered = select(AuditRow.intent_id).where(AuditRow.intent_id.is_not(None))
            query = (
                select(AuditRow)
                .where(
                    AuditRow.outcome == "intent",
                    AuditRow.dry_run.is_(False),
                    AuditRow.id.not_in(answered),
                )
                .order_by(AuditRow.id)
            )
            return [audit_entry(row) for row in session.scalars(query)]
