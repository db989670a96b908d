"""Grace periods: when owners were first told about a proposal (:meth:`mark_notified`),
and the audit trail apply checks that notice against (:meth:`notices`).

Marking a proposal notified sets its ``notified_at`` and ``grace_until`` and, in the same
transaction, appends one ``grace-started`` audit row per proposal, naming the run whose
report reached a person. Apply trusts a grace date only when such a row backs it
(:mod:`hygiene.apply.notice`): a ``grace_until`` or ``notified_at`` moved in the table
alone, by a login that may write ``proposals``, does not make an unsafe proposal due.
With PostgreSQL and cron/postgres/grants.sql only the tables' owner (the scheduled job's
login) may write these two columns; an operator's hand-run job starts no grace (it logs
a warning; the next scheduled report that reaches the owners starts it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import DBAPIError

from hygiene.inventory import namespace_of
from hygiene.model import ProposalState
from hygiene.store.base import StoreBase
from hygiene.store.models import AuditRow, ProposalRow, RunRow
from hygiene.store.records import AuditEntry, RunRecord, audit_entry, run_record

log = logging.getLogger(__name__)

GRACE_STARTED = "grace-started"
"""The audit outcome of a proposal's first notice (one row per proposal marked)."""

ANNOUNCED_STATES = (ProposalState.PROPOSED, ProposalState.APPROVED)
"""The states a report announces with a grace date (:meth:`mark_notified`): a rejected
proposal is shown without one, so its grace starts from the first report after an admin
approves it, not from a notice that never gave its owners a date."""


class StoreNotices(StoreBase):
    """``mark_notified`` (the jobs, after a report reached a person) and the audit trail
    of those notices (apply)."""

    def mark_notified(
        self,
        when: datetime,
        *,
        namespace: str | None = None,
        ids: Iterable[str] | None = None,
        outside_namespace: bool = False,
        unregistered: Iterable[str] | None = None,
        run_id: str | None = None,
    ) -> int:
        """Record that owners were told about proposed or approved proposals (not
        rejected ones, :data:`ANNOUNCED_STATES`); starts their grace period.

        Call it only for a notice that reached a person (a sent e-mail, a posted Slack
        message). Select by ``namespace`` (the weekly owner report), by
        ``unregistered=<the registered namespaces>`` (proposals outside any namespace or
        in a namespace that is not a registered project: the admins are their owners of
        record, and the admin report is their notice), ``outside_namespace=True``
        (repositories without a namespace only) or explicit ``ids`` (combined with the
        others: only those). A proposal's namespace is its repository's, never the
        ``namespace`` column (a writer of the store could point that at another project,
        whose report would then start the grace). Only the first notification counts:
        ``grace_until = first notified + grace_days``. ``run_id``: the job whose report
        was delivered (recorded in each proposal's ``grace-started`` audit row).

        Returns how many were marked; 0, with a warning, when this database login may not
        start a grace period (cron/postgres/grants.sql keeps that to the owner).
        """
        if namespace is None and ids is None and not outside_namespace and unregistered is None:
            raise ValueError(
                "mark_notified needs namespace=, ids=, unregistered= or outside_namespace=True"
            )
        grace = timedelta(days=self.settings.grace_days)
        unnotified = (
            ProposalRow.notified_at.is_(None),
            ProposalRow.state.in_([s.value for s in ANNOUNCED_STATES]),
        )
        query = select(ProposalRow.id, ProposalRow.repository).where(*unnotified)
        if ids is not None:
            query = query.where(ProposalRow.id.in_(list(ids)))
        registered = None if unregistered is None else set(unregistered)

        def told(repository: str) -> bool:  # by the repository's namespace, not the column
            owner = namespace_of(repository)
            return (
                (namespace is None or owner == namespace)
                and (not outside_namespace or owner is None)
                and (registered is None or owner is None or owner not in registered)
            )

        detail = (
            f"grace period started: the first notice reached a person at {when.isoformat()}; "
            f"not applied before {(when + grace).isoformat()} ({self.settings.grace_days} days)"
        )
        data = {
            "notified_at": when.isoformat(),
            "grace_until": (when + grace).isoformat(),
            "grace_days": self.settings.grace_days,
        }
        marked: list[dict[str, Any]] = []
        try:
            with self.session() as session:
                chosen = [row.id for row in session.execute(query) if told(row.repository)]
                for start in range(0, len(chosen), 500):
                    result = session.execute(
                        update(ProposalRow)
                        .where(ProposalRow.id.in_(chosen[start : start + 500]), *unnotified)
                        .values(notified_at=when, grace_until=when + grace)
                        .returning(
                            ProposalRow.id,
                            ProposalRow.account,
                            ProposalRow.region,
                            ProposalRow.repository,
                        )
                        .execution_options(synchronize_session=False)
                    )
                    marked += [
                        dict(
                            at=when,
                            run_id=run_id,
                            proposal_id=row.id,
                            actor="",
                            action="notify",
                            account=row.account,
                            region=row.region,
                            repository=row.repository,
                            outcome=GRACE_STARTED,
                            detail=detail,
                            dry_run=False,
                            data=data,
                        )
                        for row in result
                    ]
                if marked:
                    session.execute(insert(AuditRow), marked)
        except DBAPIError as exc:
            if "permission denied" not in str(exc.orig):
                raise
            log.warning(
                "this store login may not start grace periods (cron/postgres/grants.sql "
                "keeps that to the scheduled job's login); the next scheduled report that "
                "reaches the owners starts them: %s",
                str(exc.orig).strip().splitlines()[0],
            )
            return 0
        return len(marked)

    def notices(self, ids: Iterable[str]) -> dict[str, list[AuditEntry]]:
        """The ``grace-started`` audit rows of each proposal in ``ids``, oldest first."""
        wanted = list(dict.fromkeys(ids))
        out: dict[str, list[AuditEntry]] = {}
        with self.session() as session:
            for start in range(0, len(wanted), 500):
                query = (
                    select(AuditRow)
                    .where(
                        AuditRow.outcome == GRACE_STARTED,
                        AuditRow.proposal_id.in_(wanted[start : start + 500]),
                    )
                    .order_by(AuditRow.id)
                )
                for row in session.scalars(query):
                    out.setdefault(str(row.proposal_id), []).append(audit_entry(row))
        return out

    def runs_by_id(self, ids: Iterable[str]) -> dict[str, RunRecord]:
        """The runs of ``ids`` the store holds."""
        wanted = [i for i in dict.fromkeys(ids) if i]
        out: dict[str, RunRecord] = {}
        with self.session() as session:
            for start in range(0, len(wanted), 500):
                query = select(RunRow).where(RunRow.id.in_(wanted[start : start + 500]))
                out.update((row.id, run_record(row)) for row in session.scalars(query))
        return out
