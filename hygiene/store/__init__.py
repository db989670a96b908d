"""The store: SQLite (default, WAL) or PostgreSQL, migrated by Alembic on open.

Public API (see docs/approvals.md for the admin's view)::

    from hygiene.store import Store
    store = Store.from_config(config)          # or Store("sqlite:///hygiene.db")
    run_id = store.record_run("nightly", source="ecr")
    store.record_findings(run_id, evaluation.findings)
    store.upsert_proposals(proposals, now, complete=inventory.run.complete)
    store.mark_notified(now, namespace="suporte")   # after the owner report went out
    store.finish_run(run_id, "ok", counts={...}, api_calls={...}, errors=[...])
    store.runs(last=12)                         # run history, newest first
    store.proposals(state="proposed", namespace="suporte", rule="IM002")
    store.approve(ids, approver) / store.reject(ids, approver, reason)
    store.audit_log(since=...)                  # what apply did, oldest first
    with store.lock("registry"): ...            # LockHeldError if another run holds it
"""

from hygiene.store.base import whoami
from hygiene.store.engine import make_engine, migrate, normalise_url
from hygiene.store.records import AuditEntry, RunRecord, StoredProposal
from hygiene.store.store import Store

__all__ = [
    "AuditEntry",
    "RunRecord",
    "Store",
    "StoredProposal",
    "make_engine",
    "migrate",
    "normalise_url",
    "whoami",
]
