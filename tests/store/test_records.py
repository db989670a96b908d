"""The row → record mapping: every column, both ways, or an error at import time."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from hygiene.model import Action, FixSafety, ProposalState
from hygiene.store.models import ProposalRow
from hygiene.store.records import RowMapper, proposal_columns, stored_proposal
from tests import builders
from tests.builders import NOW


class _Base(DeclarativeBase):  # not the store's metadata: the migrations test stays exact
    pass


class _Thing(_Base):
    __tablename__ = "things"

    id: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(8))
    colour: Mapped[str] = mapped_column(String(8))


@dataclasses.dataclass(frozen=True)
class _ThingRecord:
    id: str
    name: str


def test_a_column_the_record_does_not_declare_is_an_error() -> None:
    with pytest.raises(TypeError, match=r"columns without a record field: \['colour'\]"):
        RowMapper(_Thing, ["id", "name"], _ThingRecord)


def test_a_record_field_no_column_fills_is_an_error() -> None:
    with pytest.raises(TypeError, match=r"record fields without a column: \['size'\]"):
        RowMapper(_Thing, ["id", "name", "colour", "size"], _ThingRecord)


def test_a_conversion_for_an_unknown_column_is_an_error() -> None:
    with pytest.raises(TypeError, match=r"unknown columns \['nmae'\]"):
        RowMapper(_Thing, ["id", "name", "colour"], dict, convert={"nmae": str.upper})


def test_every_column_reaches_the_record() -> None:
    mapper = RowMapper(_Thing, ["id", "name", "colour"], dict, convert={"name": str.upper})
    assert mapper(_Thing(id="t1", name="box", colour="red")) == {
        "id": "t1",
        "name": "BOX",
        "colour": "red",
    }


def test_a_proposal_survives_the_row_both_ways() -> None:
    proposal = builders.proposal(
        Action.REMOVE_POLICY_STATEMENT,
        "suporte/api",
        id="p-0123456789ab",
        target={"statements": [{"Sid": "Public"}]},
        evidence={"policy": "{}", "rule_codes": ["RP003", "RP004"]},
        rule_codes=("RP003", "RP004"),
        fix_safety=FixSafety.MANUAL,
        bytes=0,
        # what the target and evidence say (hygiene.proposaltext), so nothing is altered
        summary="remove 1 public/foreign statement(s) from suporte/api's policy",
        state=ProposalState.APPROVED,
        first_seen=NOW,
        grace_until=NOW,
    )
    columns = proposal_columns(proposal)
    assert columns["action"] == "remove-policy-statement"
    assert columns["rule_codes"] == ["RP003", "RP004"]
    row = ProposalRow(
        **columns,
        last_seen=NOW,
        notified_at=None,
        decided_at=NOW,
        decided_by="admin",
        reason=None,
        finished_at=None,
        outcome=None,
    )
    stored = stored_proposal(row)
    assert stored.proposal == proposal
    assert stored.altered == ()
    assert (stored.last_seen, stored.decided_at, stored.decided_by) == (NOW, NOW, "admin")
    assert isinstance(stored.proposal.action, Action)
    assert isinstance(stored.proposal.rule_codes, tuple)
