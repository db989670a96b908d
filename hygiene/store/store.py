"""The :class:`Store`: run history, findings, proposals, decisions, audit log and locks.

One object per process; every method opens its own short transaction, so a crash never
leaves half a decision behind. Everything handed out is plain data (dataclasses from
:mod:`hygiene.model` and :mod:`hygiene.store.records`), never ORM rows.

Each concern is its own module, joined here into one class:

- :mod:`~hygiene.store.base`: engine, migrations, settings, transactions;
- :mod:`~hygiene.store.runs`: the run history and each run's findings;
- :mod:`~hygiene.store.proposals`: proposals, approvals, rejections, apply's outcome;
- :mod:`~hygiene.store.notices`: grace periods (the first notice) and their audit trail;
- :mod:`~hygiene.store.scans`: per repository, the last scan and the last incomplete one;
- :mod:`~hygiene.store.audit`: the append-only audit log;
- :mod:`~hygiene.store.locks`: the registry lock (and any other named lock);
- :mod:`~hygiene.store.trust`: the deployed trust policy, pinned by the scheduled runs.
"""

from __future__ import annotations

from hygiene.store.audit import StoreAudit
from hygiene.store.locks import StoreLocks
from hygiene.store.notices import StoreNotices
from hygiene.store.proposals import StoreProposals
from hygiene.store.runs import StoreRuns
from hygiene.store.scans import StoreScans
from hygiene.store.trust import StoreTrust


class Store(
    StoreRuns, StoreProposals, StoreNotices, StoreScans, StoreAudit, StoreLocks, StoreTrust
):
    """The database behind runs, proposals, approvals, audit and locks.

    ``Store(url)`` connects and migrates (``alembic upgrade head``). ``url`` is a
    SQLAlchemy URL (``sqlite:///hygiene.db``, ``postgresql+psycopg://user@host/db``;
    ``postgresql://`` is read as psycopg 3) or a plain file path for SQLite.
    ``settings`` supplies ``grace_days`` and ``proposal_ttl_days``.
    """
