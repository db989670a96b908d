"""A stored proposal's summary, rule codes and bytes are what its target and evidence
say (:mod:`hygiene.proposaltext`), whatever the columns hold; a changed column is named
in ``altered``. On SQLite and on the real PostgreSQL server."""

from __future__ import annotations

from sqlalchemy import update

from hygiene.model import Action
from hygiene.store import Store
from hygiene.store.models import ProposalRow
from tests import builders
from tests.builders import NOW


def test_tampered_display_columns_are_derived_and_named(store_url: str) -> None:
    proposal = builders.proposal(
        Action.ENABLE_SCAN_ON_PUSH,
        "suporte/cloud/api",
        target={"scan_on_push": True},
        evidence={"rule_codes": ["SC001"], "scan_on_push": False},
        rule_codes=("SC001",),
        summary="enable scan on push for suporte/cloud/api",
    )
    store = Store(store_url)
    store.upsert_proposals([proposal], NOW)
    assert store.get(proposal.id).altered == ()  # type: ignore[union-attr]
    with store.engine.begin() as connection:
        connection.execute(
            update(ProposalRow)
            .where(ProposalRow.id == proposal.id)
            .values(summary="nothing to see", rule_codes=["NS004"], bytes=5)
        )
    stored = store.get(proposal.id)
    assert stored is not None
    assert stored.altered == ("summary", "rule_codes", "bytes")
    shown = stored.proposal
    assert (shown.summary, shown.rule_codes, shown.bytes) == (proposal.summary, ("SC001",), 0)
    assert [s.id for s in store.proposals(rule="SC001")] == [proposal.id]
    assert store.proposals(rule="NS004") == []
    (as_stored,) = store.as_stored([proposal])
    assert as_stored.summary == proposal.summary and as_stored.rule_codes == ("SC001",)
    store.close()
