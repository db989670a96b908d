"""The store's tables (SQLAlchemy 2 declarative models).

Schema changes go through Alembic revisions in ``hygiene/store/migrations/versions``;
these models describe the head revision. Timestamps are stored as naive UTC (SQLite has
no time zone type) and always handed out as aware UTC by :class:`UTCDateTime`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out; naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class RunRow(Base):
    """One run of a job (nightly, weekly, scan, apply): the run history."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    # running | ok | degraded | incomplete | failed | abandoned
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(255), default="")
    host: Mapped[str] = mapped_column(String(255), default="")
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    api_calls: Mapped[dict[str, Any]] = mapped_column(default=dict)
    errors: Mapped[list[Any]] = mapped_column(default=list)
    # what the reports need of past runs: per-namespace bytes, findings per rule …
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index("ix_runs_started_at", "started_at"),)


class FindingRow(Base):
    """What one run found (kept for ``store.findings_retention_days``): an image total
    (``images`` set: how many image findings of one rule in one repository, ``bytes``
    their sum; no message, no data) or one finding that names no image (``images``
    NULL). See :mod:`hygiene.store.findingrows`."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    fix_safety: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(32))
    repository: Mapped[str | None] = mapped_column(String(256))
    namespace: Mapped[str | None] = mapped_column(String(256))
    images: Mapped[int | None] = mapped_column(Integer)  # None: a finding, not a total
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    # Finding.to_json() without the columns (None for a total)
    data: Mapped[dict[str, Any] | None] = mapped_column()

    __table_args__ = (Index("ix_findings_run", "run_id"), Index("ix_findings_code", "code"))


class ProposalRow(Base):
    """A proposed change, keyed by its deterministic id (see hygiene.model.proposal_id)."""

    __tablename__ = "proposals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    action: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(32))
    repository: Mapped[str] = mapped_column(String(256))
    namespace: Mapped[str | None] = mapped_column(String(256))
    target: Mapped[dict[str, Any]] = mapped_column()
    evidence: Mapped[dict[str, Any]] = mapped_column()
    rule_codes: Mapped[list[Any]] = mapped_column()
    fix_safety: Mapped[str] = mapped_column(String(16))
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    summary: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    notified_at: Mapped[datetime | None]
    grace_until: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(512))
    reason: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)  # why applied/failed/skipped/expired
    # the last scan that read the repository completely and proposed this again
    confirmed_by: Mapped[str | None] = mapped_column(String(64))
    confirmed_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_proposals_state", "state"),
        Index("ix_proposals_namespace", "namespace"),
    )


class ApprovalRow(Base):
    """Every approve/reject decision, with who made it (history, never updated).

    Inserting a row is how a decision is made: the trigger of migration 0003 checks the
    proposal is open, sets its state and decider, and appends the audit row (on
    PostgreSQL it also records the database login in ``db_user``)."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.id", ondelete="CASCADE"))
    decision: Mapped[str] = mapped_column(String(16))  # approved | rejected
    approver: Mapped[str] = mapped_column(String(512))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]
    # hygiene.authz.decisions.content_hash of the proposal decided on (None: before 0003)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(String(80))  # sts | demo:<id>
    # written by the database (PostgreSQL trigger), never by the store: FetchedValue keeps
    # it out of the INSERT, so a login the grants allow no more than decisions can insert
    db_user: Mapped[str | None] = mapped_column(String(128), server_default=FetchedValue())

    __table_args__ = (Index("ix_approvals_proposal", "proposal_id"),)


class AuditRow(Base):
    """One row per action on the registry (and per decision): append-only.

    Apply writes an ``intent`` row (with the saved manifests) before each write call and
    one outcome row per target after it; an outcome row points at its intent through
    ``intent_id``, so an intent without outcomes marks a write interrupted by a crash.
    """

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    run_id: Mapped[str | None] = mapped_column(String(64))
    proposal_id: Mapped[str | None] = mapped_column(String(32))
    intent_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(512), default="")
    action: Mapped[str] = mapped_column(String(32))
    account: Mapped[str | None] = mapped_column(String(32))
    region: Mapped[str | None] = mapped_column(String(32))
    repository: Mapped[str | None] = mapped_column(String(256))
    digest: Mapped[str | None] = mapped_column(String(80))
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    dry_run: Mapped[bool] = mapped_column(default=False)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # manifests, targets, policies

    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_proposal", "proposal_id"),
        Index("ix_audit_intent", "intent_id"),
    )


class RepositoryScanRow(Base):
    """The last scan of each repository, and the last one that could not read it whole.

    Account and repository ``*`` hold a region-level error (the repositories there could
    not all be listed, or a registry setting every repository depends on was unreadable).
    """

    __tablename__ = "repository_scans"

    account: Mapped[str] = mapped_column(String(32), primary_key=True)
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    repository: Mapped[str] = mapped_column(String(256), primary_key=True)
    last_scan_run: Mapped[str] = mapped_column(String(64))
    last_scan_at: Mapped[datetime]
    last_complete_at: Mapped[datetime | None]
    last_incomplete_run: Mapped[str | None] = mapped_column(String(64))
    last_incomplete_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class TrustPinRow(Base):
    """The trust policy (:class:`hygiene.authz.policy.TrustPolicy`) a scheduled run
    pinned: append-only, the newest row is the deployed policy."""

    __tablename__ = "trust_pins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    run_id: Mapped[str | None] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column()
    host: Mapped[str] = mapped_column(String(255))


class LockRow(Base):
    """Who holds a named lock since when (the lock itself on SQLite; informative on PG)."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(512))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime | None]  # SQLite: the holder's last sign of life
