"""Proposals and the decisions on them: merging each plan, approving and rejecting,
starting grace periods, recording how apply finished them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from hygiene.authz.decisions import Decision, content_hash
from hygiene.authz.identity import Identity
from hygiene.errors import HygieneError, NotAuthorisedError, StoreError
from hygiene.inventory import ScanCoverage, namespace_of
from hygiene.model import Action, FixSafety, Proposal, ProposalState
from hygiene.proposaltext import displayed, size_of
from hygiene.store.base import StoreBase, utcnow
from hygiene.store.bulk import insert_many
from hygiene.store.models import ApprovalRow, ProposalRow
from hygiene.store.records import StoredProposal, proposal_columns, stored_proposal
from hygiene.store.scans import record_scan

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


class StoreProposals(StoreBase):
    """Proposals, approvals and rejections (each decision also gets an audit row)."""

    def upsert_proposals(
        self,
        proposals: Iterable[Proposal],
        now: datetime,
        *,
        complete: bool = True,
        scopes: Iterable[tuple[str, str]] | None = None,
        coverage: ScanCoverage | None = None,
    ) -> dict[str, int]:
        """Merge tonight's plan into the store.

        ``coverage`` says which repositories the plan's scan read completely (pass it for
        every plan made from a scan; :meth:`ScanCoverage.of`). Then, in the same
        transaction: the scan is recorded per repository (:mod:`hygiene.store.scans`);
        each proposal of a completely read repository is *confirmed* by it
        (``confirmed_by`` / ``confirmed_at``: apply acts on nothing else); and expiry by
        absence (below) is decided per repository, for the completely read ones only,
        whatever the rest of the scan did.

        - A known id is refreshed (``last_seen``), never duplicated; ``first_seen``,
          notification, grace date and decision are kept (a *rejected* one stays
          rejected). A finished one (expired, applied, failed, skipped) that comes back is
          proposed again: it needs a new decision and a new announcement (grace period).
        - A new id is stored as *proposed*.
        - A *proposed* proposal that this complete plan no longer contains has lost its
          finding (fixed, superseded by new evidence, or protected now): *expired*.
          ``scopes`` limits this to the (account, region) pairs the run scanned
          (sharded runs); with ``coverage``, to the repositories the scan read
          completely; ``complete=False`` (a partial plan, or an incomplete scan given
          without its coverage) skips it.
        - A *proposed* or *approved* proposal not re-proposed for
          ``proposal_ttl_days`` expires whatever the scan.

        Returns counts: ``new``, ``refreshed``, ``revived``, ``expired``, ``confirmed``.
        """
        counts = {"new": 0, "refreshed": 0, "revived": 0, "expired": 0}
        counts["confirmed"] = 0
        seen: dict[str, tuple[str, str, str, str]] = {}
        scope_set = None if scopes is None else {(a, r) for a, r in scopes}
        unique: list[Proposal] = []
        for proposal in proposals:
            where = (proposal.action.value, proposal.account, proposal.region, proposal.repository)
            if proposal.id in seen:
                if seen[proposal.id] != where:
                    raise StoreError(
                        f"two different proposals share the id {proposal.id} "
                        f"({'/'.join(seen[proposal.id])} and {'/'.join(where)}): "
                        "proposal ids must include account, region and repository"
                    )
                continue
            seen[proposal.id] = where
            unique.append(proposal)
        ids = list(seen)
        with self.session() as session:
            if coverage is not None:
                record_scan(session, coverage)
            known: dict[str, Any] = {}
            for start in range(0, len(ids), 500):  # the known rows' bookkeeping, no evidence
                chunk = ids[start : start + 500]
                query = select(
                    ProposalRow.id,
                    ProposalRow.action,
                    ProposalRow.account,
                    ProposalRow.region,
                    ProposalRow.repository,
                    ProposalRow.state,
                    ProposalRow.confirmed_at,
                ).where(ProposalRow.id.in_(chunk))
                known.update((row.id, row) for row in session.execute(query))
            new_rows: list[dict[str, Any]] = []
            refreshed: list[dict[str, Any]] = []
            reconfirmed: list[dict[str, Any]] = []
            revived: list[dict[str, Any]] = []
            for proposal in unique:
                row = known.get(proposal.id)
                confirmed = coverage is not None and coverage.is_complete(
                    (proposal.account, proposal.region, proposal.repository)
                )
                by = coverage.run_id if confirmed and coverage is not None else None
                at = coverage.scanned_at if confirmed and coverage is not None else None
                counts["confirmed"] += int(confirmed)
                if row is None:
                    columns = proposal_columns(proposal)
                    columns.update(
                        state=ProposalState.PROPOSED.value,
                        first_seen=now,
                        last_seen=now,
                        grace_until=None,  # set when the owners are notified
                        confirmed_by=by,
                        confirmed_at=at,
                    )
                    new_rows.append(columns)
                    continue
                if (row.action, row.account, row.region, row.repository) != seen[proposal.id]:
                    raise StoreError(
                        f"proposal id {proposal.id} is stored for {row.repository} but now names "
                        f"{proposal.repository}: proposal ids must include the repository"
                    )
                change = {"key": proposal.id, "summary": proposal.summary}
                if row.state in FINISHED_STATES:
                    # proposed again: confirmed by this scan, or by none yet
                    revived.append({**change, "by_run": by, "at_time": at})
                elif at is not None and (row.confirmed_at is None or at >= row.confirmed_at):
                    reconfirmed.append({**change, "by_run": by, "at_time": at})
                else:  # an older snapshot never moves a confirmation back
                    refreshed.append(change)
            table: Table = ProposalRow.__table__  # type: ignore[assignment]
            insert_many(session, table, new_rows)
            # Core statements, each run once for many rows (executemany); the summary is
            # replaced only by a non-empty one
            summary = func.coalesce(func.nullif(bindparam("summary"), ""), table.c.summary)
            key = table.c.id == bindparam("key")
            if refreshed:
                session.execute(
                    update(table).where(key).values(last_seen=now, summary=summary), refreshed
                )
            if reconfirmed:
                session.execute(
                    update(table)
                    .where(key)
                    .values(
                        last_seen=now,
                        summary=summary,
                        confirmed_by=bindparam("by_run"),
                        confirmed_at=bindparam("at_time"),
                    ),
                    reconfirmed,
                )
            if revived:
                # a revived proposal needs a new notice: on PostgreSQL the trigger of
                # migration 0008 clears it (logins the grants keep from writing the
                # notice's columns may revive), elsewhere this statement does
                notice_cleared = (
                    {}
                    if self.dialect == "postgresql"
                    else {"notified_at": None, "grace_until": None}
                )
                session.execute(
                    update(table)
                    .where(key)
                    .values(
                        last_seen=now,
                        summary=summary,
                        state=ProposalState.PROPOSED.value,
                        first_seen=now,
                        **notice_cleared,
                        decided_at=None,
                        decided_by=None,
                        reason=None,
                        outcome=None,
                        finished_at=None,
                        confirmed_by=bindparam("by_run"),
                        confirmed_at=bindparam("at_time"),
                    ),
                    revived,
                )
            counts["new"] = len(new_rows)
            counts["refreshed"] = len(refreshed) + len(reconfirmed)
            counts["revived"] = len(revived)

            ttl = timedelta(days=self.settings.proposal_ttl_days)
            live = (ProposalState.PROPOSED.value, ProposalState.APPROVED.value)
            live_rows = select(
                ProposalRow.id,
                ProposalRow.account,
                ProposalRow.region,
                ProposalRow.repository,
                ProposalRow.state,
                ProposalRow.last_seen,
            ).where(ProposalRow.state.in_(live))
            expired: list[dict[str, Any]] = []
            for row in session.execute(live_rows):
                if row.id in seen:
                    continue
                in_scope = scope_set is None or (row.account, row.region) in scope_set
                if coverage is not None:  # per repository: did the scan see all of it?
                    in_scope = in_scope and coverage.covers(
                        (row.account, row.region, row.repository)
                    )
                if now - row.last_seen >= ttl:
                    why = f"not re-proposed for {self.settings.proposal_ttl_days} days"
                elif complete and in_scope and row.state == ProposalState.PROPOSED.value:
                    why = "no longer proposed by a complete scan (finding gone or evidence changed)"
                else:
                    continue
                expired.append({"key": row.id, "outcome": why})
            if expired:
                session.execute(
                    update(table)
                    .where(key)
                    .values(
                        state=ProposalState.EXPIRED.value,
                        finished_at=now,
                        outcome=bindparam("outcome"),
                    ),
                    expired,
                )
            counts["expired"] = len(expired)
        return counts

    def proposals(
        self,
        state: ProposalState | str | Iterable[ProposalState | str] | None = None,
        namespace: str | None = None,
        rule: str | None = None,
        ids: Iterable[str] | None = None,
        action: Action | str | None = None,
        account: str | None = None,
    ) -> list[StoredProposal]:
        """Proposals filtered by state(s), namespace, rule code, ids, action or account.

        ``namespace="-"`` selects repositories outside any namespace; a namespace's
        proposals are those of every account unless ``account`` narrows them. A
        proposal's namespace is its repository's (:func:`in_namespace`), never the
        ``namespace`` column. Ordered by namespace, repository, id.
        """
        query = select(ProposalRow).order_by(
            ProposalRow.namespace, ProposalRow.repository, ProposalRow.id
        )
        if state is not None:
            states = [state] if isinstance(state, str) else list(state)
            query = query.where(ProposalRow.state.in_([ProposalState(s).value for s in states]))
        if namespace is not None:
            query = query.where(in_namespace(None if namespace == "-" else namespace))
        if ids is not None:
            query = query.where(ProposalRow.id.in_(list(ids)))
        if action is not None:
            query = query.where(ProposalRow.action == Action(action).value)
        if account is not None:
            query = query.where(ProposalRow.account == account)
        with self.session() as session:
            rows = [stored_proposal(row) for row in session.scalars(query)]
        if rule is not None:
            rule = rule.upper()
            rows = [
                r for r in rows if any(c.upper().startswith(rule) for c in r.proposal.rule_codes)
            ]
        return rows

    def as_stored(self, proposals: Iterable[Proposal]) -> list[Proposal]:
        """``proposals`` as the store holds them, ordered like :meth:`proposals`
        (namespace, repository, id): what :meth:`proposals` with their ids returns, read
        without their evidence. The stored state, dates and fix safety come from the
        store, the namespace from the repository; target and evidence from the given
        proposals (the id is their hash: a stored proposal with the same id has the same),
        and so the summary, bytes and rule codes (:mod:`hygiene.proposaltext`: the columns
        the fingerprint does not cover). Ids the store does not hold are left out.
        """
        given = {p.id: p for p in proposals}
        if not given:
            return []
        ids = Table(
            "hygiene_wanted_ids",
            MetaData(),
            Column("id", String(32), primary_key=True),
            prefixes=["TEMPORARY"],
        )
        table = ProposalRow.__table__
        query = (
            select(
                table.c.id,
                table.c.state,
                table.c.first_seen,
                table.c.grace_until,
                table.c.summary,
                table.c.bytes,
                table.c.rule_codes,
                table.c.fix_safety,
            )
            .join_from(table, ids, table.c.id == ids.c.id)
            .order_by(table.c.namespace, table.c.repository, table.c.id)
        )
        with self.session() as session:
            connection = session.connection()
            ids.create(connection)
            try:
                insert_many(session, ids, ({"id": i} for i in given))
                rows = list(session.execute(query))
            finally:
                ids.drop(connection)
        return [
            replace(
                given[row.id],
                state=ProposalState(row.state),
                first_seen=row.first_seen,
                grace_until=row.grace_until,
                namespace=namespace_of(given[row.id].repository),
                fix_safety=FixSafety(row.fix_safety),
                **_displayed_columns(given[row.id], row),
            )
            for row in rows
        ]

    def get(self, proposal_id: str) -> StoredProposal | None:
        with self.session() as session:
            row = session.get(ProposalRow, proposal_id)
            return None if row is None else stored_proposal(row)

    def _decide(
        self,
        ids: Iterable[str],
        approver: Identity | str,
        decision: ProposalState,
        reason: str | None,
        now: datetime | None,
    ) -> list[StoredProposal]:
        """Record one decision per proposal (all or nothing) by inserting decision rows.

        The database makes them take effect (the trigger of migration 0003: state,
        decider, audit row) and refuses a proposal that is no longer open. Each row
        carries the :func:`~hygiene.authz.decisions.content_hash` of the proposal as
        decided on and how the approver was verified (``sts`` or ``demo:<id>``; a plain
        string approver has no source, and apply never counts its approvals)."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise StoreError("no proposal ids given")
        now = now or utcnow()
        name = approver.name if isinstance(approver, Identity) else approver
        source = approver.source if isinstance(approver, Identity) else None
        verb = "approve" if decision == ProposalState.APPROVED else "reject"
        done = "approved" if decision == ProposalState.APPROVED else "rejected"
        try:
            with self.session() as session:
                rows = {
                    r.id: r
                    for r in session.scalars(select(ProposalRow).where(ProposalRow.id.in_(ids)))
                }
                missing = [i for i in ids if i not in rows]
                if missing:
                    raise StoreError(
                        f"unknown proposal id(s): {', '.join(missing)}; nothing was {done} "
                        "(list them with `hygiene proposals`)"
                    )
                closed = [f"{i} ({rows[i].state})" for i in ids if rows[i].state not in OPEN_STATES]
                if closed:
                    raise StoreError(
                        f"cannot {verb} proposal(s) no longer open: {', '.join(closed)}; "
                        f"nothing was {done}"
                    )
                for proposal_id in ids:
                    session.add(
                        ApprovalRow(
                            proposal_id=proposal_id,
                            decision=decision.value,
                            approver=name,
                            reason=reason,
                            at=now,
                            content_hash=content_hash(stored_proposal(rows[proposal_id]).proposal),
                            source=source,
                        )
                    )
                session.flush()
                query = (
                    select(ProposalRow)
                    .where(ProposalRow.id.in_(ids))
                    .execution_options(populate_existing=True)
                )
                decided = {r.id: stored_proposal(r) for r in session.scalars(query)}
                return [decided[i] for i in ids]
        except DBAPIError as exc:
            raise _decision_refused(exc, verb, done) from exc

    def approve(
        self, ids: Iterable[str], approver: Identity | str, now: datetime | None = None
    ) -> list[StoredProposal]:
        """Approve proposals (all or nothing). ``approver`` must already be checked
        against the deployed admins (:func:`hygiene.authz.require_admin`)."""
        return self._decide(ids, approver, ProposalState.APPROVED, None, now)

    def reject(
        self,
        ids: Iterable[str],
        approver: Identity | str,
        reason: str,
        now: datetime | None = None,
    ) -> list[StoredProposal]:
        """Reject proposals with a reason (all or nothing); they are never applied."""
        if not reason or not reason.strip():
            raise StoreError("a rejection needs a reason (--reason)")
        return self._decide(ids, approver, ProposalState.REJECTED, reason.strip(), now)

    def decisions(self, ids: Iterable[str] | None = None) -> dict[str, list[Decision]]:
        """The decision history of each proposal (all, or only ``ids``), oldest first."""
        query = select(ApprovalRow).order_by(ApprovalRow.id)
        if ids is not None:
            query = query.where(ApprovalRow.proposal_id.in_(list(ids)))
        out: dict[str, list[Decision]] = {}
        with self.session() as session:
            for r in session.scalars(query):
                out.setdefault(r.proposal_id, []).append(
                    Decision(
                        id=r.id,
                        proposal_id=r.proposal_id,
                        decision=r.decision,
                        approver=r.approver,
                        reason=r.reason,
                        at=r.at,
                        content_hash=r.content_hash,
                        source=r.source,
                        db_user=r.db_user,
                    )
                )
        return out

    def approvals(self, proposal_id: str) -> list[dict[str, Any]]:
        """The decision history of one proposal, oldest first (as JSON)."""
        return [d.to_json() for d in self.decisions([proposal_id]).get(proposal_id, [])]

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


def in_namespace(namespace: str | None) -> ColumnElement[bool]:
    """Proposals whose repository is in ``namespace`` (None: outside any), as
    :func:`~hygiene.inventory.namespace_of` names a repository's namespace."""
    repository = ProposalRow.repository
    if namespace is None:
        return ~repository.contains("/")
    prefix = f"{namespace}/"
    return func.substr(repository, 1, len(prefix)) == prefix


def _decision_refused(exc: DBAPIError, verb: str, done: str) -> HygieneError:
    """The database refused a decision: its trigger (the proposal changed meanwhile),
    or its grants (cron/postgres/grants.sql: this login may not record it)."""
    text = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    if "row-level security" in text or "permission denied" in text:
        return NotAuthorisedError(
            f"your database login may not {verb} (store grants: owners may only reject, "
            f"readers may decide nothing): {text}; nothing was {done}"
        )
    if "hygiene:" in text:
        return StoreError(f"the store refused to {verb}: {text}; nothing was {done}")
    return StoreError(f"cannot {verb}: {text}; nothing was {done}")


def _displayed_columns(proposal: Proposal, row: Any) -> dict[str, Any]:
    """Summary, rule codes and bytes as ``proposal``'s target and evidence say (as
    :func:`hygiene.store.records.stored_proposal` shows them), else the stored ones."""
    derived = displayed(proposal.action, proposal.repository, proposal.target, proposal.evidence)
    if derived is None:
        return {
            "summary": row.summary,
            "bytes": size_of(row.bytes),
            "rule_codes": tuple(row.rule_codes),
        }
    return {"summary": derived.summary, "bytes": derived.bytes, "rule_codes": derived.rule_codes}
