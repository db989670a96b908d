"""A stored proposal's row changed behind the tool's back, as a writer of the database
could (the tests of what readers show and apply does with a tampered row)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from hygiene.store import Store
from hygiene.store.models import ProposalRow


def tamper(store: Store, proposal_id: str, **values: Any) -> None:
    """Write ``values`` into the stored row of ``proposal_id``."""
    with store.engine.begin() as connection:
        connection.execute(
            update(ProposalRow).where(ProposalRow.id == proposal_id).values(**values)
        )
