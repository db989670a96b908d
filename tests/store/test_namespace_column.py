"""A proposal's namespace is its repository's, whatever the ``namespace`` column says.

The approval fingerprint (:func:`hygiene.authz.content_hash`) covers the repository,
not the stored ``namespace`` column. Someone with write access to the store could move a
proposal to another namespace in that column: its owners' weekly report would leave it
out (and the other namespace's report would start its grace), and the other namespace's
owners could object to it while its own could not. So every use of a stored proposal's
namespace (selection, the owners' notice, objections) derives it from the repository
(:func:`hygiene.inventory.namespace_of`, as the rules name a repository's namespace).
Every test runs on SQLite and on the real PostgreSQL server.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from hygiene.config import ApplySettings
from hygiene.store import Store
from tests import builders
from tests.builders import NOW


def _moved(store: Store, proposal_id: str, namespace: str | None) -> None:
    """Write another namespace into the stored row, as a writer of the database could."""
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE proposals SET namespace = :n WHERE id = :i"),
            {"n": namespace, "i": proposal_id},
        )


def _three(store: Store) -> tuple[str, str, str]:
    suporte = builders.proposal(repository="suporte/cloud/api", digests=["a"])
    ml = builders.proposal(repository="ml/train", digests=["b"])
    bare = builders.proposal(repository="nginx", digests=["c"])
    store.upsert_proposals([suporte, ml, bare], NOW)
    return suporte.id, ml.id, bare.id


def test_a_moved_namespace_column_changes_neither_selection_nor_records(store_url: str) -> None:
    store = Store(store_url)
    suporte, ml, bare = _three(store)
    _moved(store, suporte, "ml")
    _moved(store, bare, "ml")
    _moved(store, ml, None)
    assert {s.id for s in store.proposals(namespace="suporte")} == {suporte}
    assert {s.id for s in store.proposals(namespace="ml")} == {ml}
    assert {s.id for s in store.proposals(namespace="-")} == {bare}
    assert store.get(suporte).proposal.namespace == "suporte"  # type: ignore[union-attr]
    assert store.get(bare).proposal.namespace is None  # type: ignore[union-attr]
    by_id = {s.id: s.proposal.namespace for s in store.proposals()}
    assert by_id == {suporte: "suporte", ml: "ml", bare: None}
    plan = [builders.proposal(repository="suporte/cloud/api", digests=["a"])]
    (as_stored,) = store.as_stored(plan)
    assert as_stored.namespace == "suporte"
    store.close()


def test_a_moved_namespace_column_does_not_start_another_namespaces_grace(
    store_url: str,
) -> None:
    """The ml owners' report must not start the grace of a suporte proposal moved to ml
    in the column; suporte's report starts it."""
    store = Store(store_url, ApplySettings(grace_days=7))
    suporte, ml, _ = _three(store)
    _moved(store, suporte, "ml")
    assert store.mark_notified(NOW, namespace="ml") == 1
    assert store.get(suporte).notified_at is None  # type: ignore[union-attr]
    assert store.get(ml).notified_at == NOW  # type: ignore[union-attr]
    later = NOW + timedelta(days=1)
    assert store.mark_notified(later, namespace="suporte") == 1
    assert store.get(suporte).proposal.grace_until == later + timedelta(days=7)  # type: ignore[union-attr]
    store.close()


def test_the_admins_notice_goes_by_the_repository_too(store_url: str) -> None:
    """Moved to an unregistered namespace (or to none), a registered project's proposal
    is still its owners' to be told about: the admin report's notice starts nothing."""
    store = Store(store_url, ApplySettings(grace_days=7))
    suporte, ml, bare = _three(store)
    _moved(store, suporte, "tcc-joao")
    _moved(store, ml, None)
    _moved(store, bare, "suporte")  # and an unowned one moved into a project
    assert store.mark_notified(NOW, unregistered=["suporte", "ml"]) == 1
    assert store.get(bare).notified_at == NOW  # type: ignore[union-attr]
    assert store.get(suporte).notified_at is None  # type: ignore[union-attr]
    assert store.get(ml).notified_at is None  # type: ignore[union-attr]
    assert store.mark_notified(NOW, outside_namespace=True) == 0  # bare: told already
    store.close()
