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
    store.approve(ids, identity) / store.reject(ids, identity, reason)   # decision rows
    store.decisions(ids)                        # the decision history apply verifies
    store.pin_trust(policy, run_id=…) / store.pinned_trust()   # the deployed admins
    store.audit_log(since=...)                  # what apply did, oldest first
    with store.lock(): ...                      # the registry lock; LockHeldError if held
"""

from hygiene.store.base import whoami
from hygiene.store.engine import make_engine, migrate, normalise_url
from hygiene.store.locks import REGISTRY_LOCK
from hygiene.store.records import AuditEntry, RunRecord, StoredProposal
from hygiene.store.store import Store

__all__ = [
    "REGISTRY_LOCK",
    "AuditEntry",
    "RunRecord",
    "Store",
    "StoredProposal",
    "make_engine",
    "migrate",
    "normalise_url",
    "whoami",
]
