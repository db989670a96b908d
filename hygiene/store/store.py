"""The :class:`Store`: run history, findings, proposals, decisions, audit log and locks.

One object per process; every method opens its own short transaction, so a crash never
leaves half a decision behind. Everything handed out is plain data (dataclasses from
:mod:`hygiene.model` or below), never ORM rows.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from hygiene.config import ApplySettings, Config
from hygiene.errors import LockHeldError, StoreError
from hygiene.model import Action, Finding, FixSafety, Proposal, ProposalState
from hygiene.store.engine import make_engine, migrate, redact
from hygiene.store.models import (
    ApprovalRow,
    AuditRow,
    FindingRow,
    LockRow,
    ProposalRow,
    RunRow,
)

log = logging.getLogger(__name__)

RUN_STATUSES = ("running", "ok", "incomplete", "failed")
# States a decision (approve/reject) may still change.
OPEN_STATES = (ProposalState.PROPOSED, ProposalState.APPROVED, ProposalState.REJECTED)
# States a proposal leaves when a later scan proposes the very same change again.
FINISHED_STATES = tuple(
    s.value
    for s in (
        ProposalState.EXPIRED,
        ProposalState.APPLIED,
        ProposalState.FAILED,
        ProposalState.SKIPPED,
    )
)
DEFAULT_STALE_LOCK = timedelta(hours=12)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunRecord:
    """One row of the run history (``Store.runs``)."""

    id: str
    kind: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    source: str
    host: str
    counts: dict[str, Any] = field(default_factory=dict)
    api_calls: dict[str, Any] = field(default_factory=dict)
    errors: list[Any] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "status": self.status,
            "source": self.source,
            "host": self.host,
            "counts": self.counts,
            "api_calls": self.api_calls,
            "errors": self.errors,
            "summary": self.summary,
            "duration_seconds": self.duration_seconds,
        }


@dataclass(frozen=True)
class StoredProposal:
    """A proposal with its store bookkeeping (who decided, when notified, outcome)."""

    proposal: Proposal
    last_seen: datetime
    notified_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None
    finished_at: datetime | None
    outcome: str | None

    @property
    def id(self) -> str:
        return self.proposal.id

    @property
    def state(self) -> ProposalState:
        return self.proposal.state

    def to_json(self) -> dict[str, Any]:
        data = self.proposal.to_json()
        for key in ("last_seen", "notified_at", "decided_at", "finished_at"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value is not None else None
        data.update(decided_by=self.decided_by, reason=self.reason, outcome=self.outcome)
        return data


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    run_id: str | None
    proposal_id: str | None
    intent_id: int | None
    actor: str
    action: str
    account: str | None
    region: str | None
    repository: str | None
    digest: str | None
    outcome: str
    detail: str
    dry_run: bool
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "run_id": self.run_id,
            "proposal_id": self.proposal_id,
            "intent_id": self.intent_id,
            "actor": self.actor,
            "action": self.action,
            "account": self.account,
            "region": self.region,
            "repository": self.repository,
            "digest": self.digest,
            "outcome": self.outcome,
            "detail": self.detail,
            "dry_run": self.dry_run,
            "data": self.data,
        }


def _proposal(row: ProposalRow) -> StoredProposal:
    proposal = Proposal(
        id=row.id,
        action=Action(row.action),
        account=row.account,
        region=row.region,
        repository=row.repository,
        namespace=row.namespace,
        target=row.target,
        evidence=row.evidence,
        rule_codes=tuple(row.rule_codes),
        fix_safety=FixSafety(row.fix_safety),
        bytes=row.bytes,
        summary=row.summary,
        state=ProposalState(row.state),
        first_seen=row.first_seen,
        grace_until=row.grace_until,
    )
    return StoredProposal(
        proposal=proposal,
        last_seen=row.last_seen,
        notified_at=row.notified_at,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        reason=row.reason,
        finished_at=row.finished_at,
        outcome=row.outcome,
    )


def _audit(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        run_id=row.run_id,
        proposal_id=row.proposal_id,
        intent_id=row.intent_id,
        actor=row.actor,
        action=row.action,
        account=row.account,
        region=row.region,
        repository=row.repository,
        digest=row.digest,
        outcome=row.outcome,
        detail=row.detail,
        dry_run=row.dry_run,
        data=row.data,
    )


def _run(row: RunRow) -> RunRecord:
    return RunRecord(
        id=row.id,
        kind=row.kind,
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=row.status,
        source=row.source,
        host=row.host,
        counts=row.counts,
        api_calls=row.api_calls,
        errors=row.errors,
        summary=row.summary or {},
    )


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``."""
    value = int.from_bytes(hashlib.sha256(f"hygiene:{name}".encode()).digest()[:8], "big")
    return value - (1 << 64) if value >= (1 << 63) else value


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def whoami() -> str:
    """``user@host pid N``: how a lock or an audit row names this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


class Store:
    """The database behind runs, proposals, approvals, audit and locks.

    ``Store(url)`` connects and migrates (``alembic upgrade head``). ``url`` is a
    SQLAlchemy URL (``sqlite:///hygiene.db``, ``postgresql+psycopg://user@host/db``;
    ``postgresql://`` is read as psycopg 3) or a plain file path for SQLite.
    ``settings`` supplies ``grace_days`` and ``proposal_ttl_days``.
    """

    def __init__(
        self,
        url: str,
        settings: ApplySettings | None = None,
        *,
        stale_lock_after: timedelta = DEFAULT_STALE_LOCK,
    ) -> None:
        self.engine = make_engine(url)
        self.url = redact(str(self.engine.url))
        self.settings = settings or ApplySettings()
        self.stale_lock_after = stale_lock_after
        migrate(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_config(cls, config: Config, url: str | None = None) -> Store:
        """The store named by ``--store URL`` or ``config.policy.store.url``."""
        return cls(url or config.policy.store.url, config.policy.apply)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on any exception."""
        try:
            with self._session.begin() as session:
                yield session
        except OperationalError as exc:
            raise StoreError(f"store {self.url}: {exc.orig}") from exc

    # ------------------------------------------------------------------ runs

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
        """Close a run: ``status`` is ``ok``, ``incomplete`` or ``failed``.

        ``counts`` is free-form (repositories, images, findings, proposals, deleted …);
        ``errors`` is a list of strings or JSON-shaped dicts (e.g. ``asdict(ScanError)``).
        """
        if status not in RUN_STATUSES[1:]:
            raise ValueError(f"run status must be one of ok|incomplete|failed, not {status!r}")
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
            return [_run(row) for row in session.scalars(query)]

    def record_findings(self, run_id: str, findings: Iterable[Finding]) -> int:
        """Store the findings of run ``run_id`` (for trends); returns how many."""
        rows = [
            FindingRow(
                run_id=run_id,
                code=f.code,
                rule=f.rule,
                severity=f.severity.value,
                fix_safety=f.fix_safety.value,
                account=f.account,
                region=f.region,
                repository=f.repository,
                namespace=f.namespace,
                image_digest=f.image_digest,
                bytes=int(f.bytes),
                message=f.message,
                data=f.to_json(),
            )
            for f in findings
        ]
        with self.session() as session:
            session.add_all(rows)
        return len(rows)

    def findings(self, run_id: str) -> list[dict[str, Any]]:
        """The findings of one run as ``Finding.to_json()`` dicts."""
        query = select(FindingRow.data).where(FindingRow.run_id == run_id).order_by(FindingRow.id)
        with self.session() as session:
            return list(session.scalars(query))

    # ------------------------------------------------------------------ proposals

    def upsert_proposals(
        self,
        proposals: Iterable[Proposal],
        now: datetime,
        *,
        complete: bool = True,
        scopes: Iterable[tuple[str, str]] | None = None,
    ) -> dict[str, int]:
        """Merge tonight's plan into the store.

        - A known id is refreshed (``last_seen``), never duplicated; ``first_seen``,
          notification, grace date and decision are kept (a *rejected* one stays
          rejected). A finished one (expired, applied, failed, skipped) that comes back is
          proposed again: it needs a new decision and a new announcement (grace period).
        - A new id is stored as *proposed*.
        - A *proposed* proposal that this complete plan no longer contains has lost its
          finding (fixed, superseded by new evidence, or protected now): *expired*.
          ``scopes`` limits this to the (account, region) pairs the run scanned
          (sharded runs); ``complete=False`` (an incomplete scan) skips it.
        - A *proposed* or *approved* proposal not re-proposed for
          ``proposal_ttl_days`` expires whatever the scan.

        Returns counts: ``new``, ``refreshed``, ``revived``, ``expired``.
        """
        counts = {"new": 0, "refreshed": 0, "revived": 0, "expired": 0}
        seen: dict[str, tuple[str, str, str, str]] = {}
        scope_set = None if scopes is None else {(a, r) for a, r in scopes}
        incoming = list(proposals)
        with self.session() as session:
            ids = list({p.id for p in incoming})
            for start in range(0, len(ids), 500):  # load known rows in a few queries
                chunk = ids[start : start + 500]
                session.scalars(select(ProposalRow).where(ProposalRow.id.in_(chunk))).all()
            for proposal in incoming:
                where = (
                    proposal.action.value,
                    proposal.account,
                    proposal.region,
                    proposal.repository,
                )
                if proposal.id in seen:
                    if seen[proposal.id] != where:
                        raise StoreError(
                            f"two different proposals share the id {proposal.id} "
                            f"({'/'.join(seen[proposal.id])} and {'/'.join(where)}): "
                            "proposal ids must include account, region and repository"
                        )
                    continue
                seen[proposal.id] = where
                row = session.get(ProposalRow, proposal.id)
                if (
                    row is not None
                    and (row.action, row.account, row.region, row.repository) != where
                ):
                    raise StoreError(
                        f"proposal id {proposal.id} is stored for {row.repository} but now names "
                        f"{proposal.repository}: proposal ids must include the repository"
                    )
                if row is None:
                    session.add(
                        ProposalRow(
                            id=proposal.id,
                            action=proposal.action.value,
                            account=proposal.account,
                            region=proposal.region,
                            repository=proposal.repository,
                            namespace=proposal.namespace,
                            target=proposal.target,
                            evidence=proposal.evidence,
                            rule_codes=list(proposal.rule_codes),
                            fix_safety=proposal.fix_safety.value,
                            bytes=int(proposal.bytes),
                            summary=proposal.summary,
                            state=ProposalState.PROPOSED.value,
                            first_seen=now,
                            last_seen=now,
                        )
                    )
                    counts["new"] += 1
                    continue
                row.last_seen = now
                row.summary = proposal.summary or row.summary
                if row.state in FINISHED_STATES:
                    row.state = ProposalState.PROPOSED.value
                    row.first_seen = now
                    row.notified_at = row.grace_until = None
                    row.decided_at = row.decided_by = row.reason = None
                    row.outcome = None
                    row.finished_at = None
                    counts["revived"] += 1
                else:
                    counts["refreshed"] += 1
            ttl = timedelta(days=self.settings.proposal_ttl_days)
            live = (ProposalState.PROPOSED.value, ProposalState.APPROVED.value)
            for row in session.scalars(select(ProposalRow).where(ProposalRow.state.in_(live))):
                if row.id in seen:
                    continue
                in_scope = scope_set is None or (row.account, row.region) in scope_set
                if now - row.last_seen >= ttl:
                    why = f"not re-proposed for {self.settings.proposal_ttl_days} days"
                elif complete and in_scope and row.state == ProposalState.PROPOSED.value:
                    why = "no longer proposed by a complete scan (finding gone or evidence changed)"
                else:
                    continue
                row.state = ProposalState.EXPIRED.value
                row.finished_at = now
                row.outcome = why
                counts["expired"] += 1
        return counts

    def proposals(
        self,
        state: ProposalState | str | Iterable[ProposalState | str] | None = None,
        namespace: str | None = None,
        rule: str | None = None,
        ids: Iterable[str] | None = None,
        action: Action | str | None = None,
    ) -> list[StoredProposal]:
        """Proposals filtered by state(s), namespace, rule code, ids or action.

        ``namespace="-"`` selects repositories outside any namespace. Ordered by
        namespace, repository, id.
        """
        query = select(ProposalRow).order_by(
            ProposalRow.namespace, ProposalRow.repository, ProposalRow.id
        )
        if state is not None:
            states = [state] if isinstance(state, str) else list(state)
            query = query.where(ProposalRow.state.in_([ProposalState(s).value for s in states]))
        if namespace == "-":
            query = query.where(ProposalRow.namespace.is_(None))
        elif namespace is not None:
            query = query.where(ProposalRow.namespace == namespace)
        if ids is not None:
            query = query.where(ProposalRow.id.in_(list(ids)))
        if action is not None:
            query = query.where(ProposalRow.action == Action(action).value)
        with self.session() as session:
            rows = [_proposal(row) for row in session.scalars(query)]
        if rule is not None:
            rule = rule.upper()
            rows = [
                r for r in rows if any(c.upper().startswith(rule) for c in r.proposal.rule_codes)
            ]
        return rows

    def get(self, proposal_id: str) -> StoredProposal | None:
        with self.session() as session:
            row = session.get(ProposalRow, proposal_id)
            return None if row is None else _proposal(row)

    def _decide(
        self,
        ids: Iterable[str],
        approver: str,
        decision: ProposalState,
        reason: str | None,
        now: datetime | None,
    ) -> list[StoredProposal]:
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise StoreError("no proposal ids given")
        now = now or utcnow()
        verb = "approve" if decision == ProposalState.APPROVED else "reject"
        with self.session() as session:
            rows = {
                r.id: r for r in session.scalars(select(ProposalRow).where(ProposalRow.id.in_(ids)))
            }
            missing = [i for i in ids if i not in rows]
            if missing:
                raise StoreError(
                    f"unknown proposal id(s): {', '.join(missing)}; nothing was {verb}d "
                    "(list them with `hygiene proposals`)"
                )
            closed = [f"{i} ({rows[i].state})" for i in ids if rows[i].state not in OPEN_STATES]
            if closed:
                raise StoreError(
                    f"cannot {verb} proposal(s) no longer open: {', '.join(closed)}; "
                    f"nothing was {verb}d"
                )
            for proposal_id in ids:
                row = rows[proposal_id]
                row.state = decision.value
                row.decided_at = now
                row.decided_by = approver
                row.reason = reason
                session.add(
                    ApprovalRow(
                        proposal_id=proposal_id,
                        decision=decision.value,
                        approver=approver,
                        reason=reason,
                        at=now,
                    )
                )
                session.add(
                    AuditRow(
                        at=now,
                        proposal_id=proposal_id,
                        actor=approver,
                        action=verb,
                        account=row.account,
                        region=row.region,
                        repository=row.repository,
                        outcome=decision.value,
                        detail=reason or "",
                        data={},
                    )
                )
            return [_proposal(rows[i]) for i in ids]

    def approve(
        self, ids: Iterable[str], approver: str, now: datetime | None = None
    ) -> list[StoredProposal]:
        """Approve proposals (all or nothing). ``approver`` must already be checked
        against the admin list (:func:`hygiene.identity.require_admin`)."""
        return self._decide(ids, approver, ProposalState.APPROVED, None, now)

    def reject(
        self, ids: Iterable[str], approver: str, reason: str, now: datetime | None = None
    ) -> list[StoredProposal]:
        """Reject proposals with a reason (all or nothing); they are never applied."""
        if not reason or not reason.strip():
            raise StoreError("a rejection needs a reason (--reason)")
        return self._decide(ids, approver, ProposalState.REJECTED, reason.strip(), now)

    def approvals(self, proposal_id: str) -> list[dict[str, Any]]:
        """The decision history of one proposal, oldest first."""
        query = (
            select(ApprovalRow)
            .where(ApprovalRow.proposal_id == proposal_id)
            .order_by(ApprovalRow.id)
        )
        with self.session() as session:
            return [
                {
                    "decision": r.decision,
                    "approver": r.approver,
                    "reason": r.reason,
                    "at": r.at.isoformat(),
                }
                for r in session.scalars(query)
            ]

    def mark_notified(
        self,
        when: datetime,
        *,
        namespace: str | None = None,
        ids: Iterable[str] | None = None,
        outside_namespace: bool = False,
    ) -> int:
        """Record that owners were told about open proposals; starts their grace period.

        Select by ``namespace`` (the weekly owner report), ``outside_namespace=True``
        (repositories without one: the admin report) or explicit ``ids``. Only the
        first notification counts: ``grace_until = first notified + grace_days``.
        Returns how many proposals were newly marked.
        """
        if namespace is None and ids is None and not outside_namespace:
            raise ValueError("mark_notified needs namespace=, ids= or outside_namespace=True")
        grace = timedelta(days=self.settings.grace_days)
        query = update(ProposalRow).where(
            ProposalRow.notified_at.is_(None),
            ProposalRow.state.in_([s.value for s in OPEN_STATES]),
        )
        if namespace is not None:
            query = query.where(ProposalRow.namespace == namespace)
        if outside_namespace:
            query = query.where(ProposalRow.namespace.is_(None))
        if ids is not None:
            query = query.where(ProposalRow.id.in_(list(ids)))
        with self.session() as session:
            result = session.execute(
                query.values(notified_at=when, grace_until=when + grace).execution_options(
                    synchronize_session=False
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def set_state(
        self,
        proposal_id: str,
        state: ProposalState,
        outcome: str,
        now: datetime | None = None,
    ) -> None:
        """Record how apply finished a proposal (applied | failed | skipped)."""
        with self.session() as session:
            row = session.get(ProposalRow, proposal_id)
            if row is None:
                raise StoreError(f"no proposal {proposal_id!r} in the store {self.url}")
            row.state = state.value
            row.outcome = outcome
            row.finished_at = now or utcnow()

    # ------------------------------------------------------------------ audit

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
            return [_audit(row) for row in session.scalars(query)]

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
            return [_audit(row) for row in session.scalars(query)]

    # ------------------------------------------------------------------ locks

    @contextmanager
    def lock(self, name: str, *, holder: str | None = None) -> Iterator[None]:
        """Hold the named lock (``apply``, ``nightly`` …) for the ``with`` block.

        PostgreSQL: a session-level ``pg_try_advisory_lock`` on a dedicated connection
        (released by the server if the process dies). SQLite: a row in ``locks``; a row
        left by a dead process on this host, or older than ``stale_lock_after``, is
        taken over. Raises :class:`LockHeldError` naming the holder and since when.
        """
        holder = holder or whoami()
        if self.dialect == "postgresql":
            with self._pg_lock(name, holder):
                yield
        else:
            self._row_lock_acquire(name, holder)
            try:
                yield
            finally:
                with self.session() as session:
                    session.execute(
                        delete(LockRow).where(LockRow.name == name, LockRow.holder == holder)
                    )

    def lock_holder(self, name: str) -> tuple[str, datetime] | None:
        """Who holds ``name`` since when, as recorded in ``locks`` (None if free)."""
        with self.session() as session:
            row = session.get(LockRow, name)
            return None if row is None else (row.holder, row.acquired_at)

    def _held_error(self, name: str) -> LockHeldError:
        held = self.lock_holder(name)
        who = f"{held[0]} since {held[1].isoformat(timespec='seconds')}" if held else "another run"
        return LockHeldError(
            f"lock {name!r} is held by {who} (store {self.url}); wait for it to finish, "
            "or if that process is gone, run again after it is released"
        )

    def _row_lock_acquire(self, name: str, holder: str) -> None:
        now = utcnow()
        host = socket.gethostname()
        with self.session() as session:
            row = session.get(LockRow, name)
            if row is not None:
                dead = row.host == host and not _pid_alive(row.pid)
                old = now - row.acquired_at > self.stale_lock_after
                if dead or old:
                    why = "its process is gone" if dead else "it is older than the stale limit"
                    log.warning(
                        "taking over stale lock %r held by %s since %s (%s)",
                        name,
                        row.holder,
                        row.acquired_at.isoformat(),
                        why,
                    )
                    session.execute(
                        delete(LockRow).where(
                            LockRow.name == name, LockRow.acquired_at == row.acquired_at
                        )
                    )
        try:
            with self.session() as session:
                session.add(
                    LockRow(name=name, holder=holder, host=host, pid=os.getpid(), acquired_at=now)
                )
        except IntegrityError:
            raise self._held_error(name) from None

    @contextmanager
    def _pg_lock(self, name: str, holder: str) -> Iterator[None]:
        key = _lock_key(name)
        connection: Connection = self.engine.connect()
        try:
            got = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            connection.commit()
            if not got:
                raise self._held_error(name)
            with self.session() as session:
                session.merge(
                    LockRow(
                        name=name,
                        holder=holder,
                        host=socket.gethostname(),
                        pid=os.getpid(),
                        acquired_at=utcnow(),
                    )
                )
            try:
                yield
            finally:
                try:
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    connection.commit()
                finally:
                    with self.session() as session:
                        session.execute(delete(LockRow).where(LockRow.name == name))
        finally:
            # Never hand a connection that might still hold the lock back to the pool:
            # closing the server session releases every advisory lock it held.
            connection.invalidate()
            connection.close()
