"""The plain records the store hands out, and the one mapping from table rows to them.

A record is built from *every* column of its table, by name (:class:`RowMapper`). The
column names are read from the SQLAlchemy model and must equal the record's field
names: a column without a field, or a field without a column, raises ``TypeError`` when
this module is imported, so a new column cannot be silently left out of what the store
returns. Columns whose stored form differs from the record's (enum values, JSON lists
for tuples) name their conversion here, once for each direction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import DeclarativeBase

from hygiene.fixsafety import shown_safety
from hygiene.inventory import namespace_of
from hygiene.model import Action, FixSafety, Proposal, ProposalState
from hygiene.proposaltext import altered_columns, displayed, size_of
from hygiene.store.models import AuditRow, ProposalRow, RunRow

R = TypeVar("R")


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class RunRecord:
    """One row of the run history (``Store.runs``)."""

    id: str
    kind: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    source: str
    host: str
    counts: dict[str, Any] = field(default_factory=dict)
    api_calls: dict[str, Any] = field(default_factory=dict)
    errors: list[Any] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_json(self) -> dict[str, Any]:
        data = {f.name: _json_value(getattr(self, f.name)) for f in fields(self)}
        data["duration_seconds"] = self.duration_seconds
        return data


@dataclass(frozen=True)
class StoredProposal:
    """A proposal with its store bookkeeping (who decided, when notified, outcome)."""

    proposal: Proposal
    last_seen: datetime
    notified_at: datetime | None
    decided_at: datetime | None
    finished_at: datetime | None
    decided_by: str | None
    reason: str | None
    outcome: str | None
    confirmed_by: str | None = None  # the scan run that last confirmed it …
    confirmed_at: datetime | None = None  # … and when that scan started
    # displayed columns whose stored value differs from what the target and evidence say
    # (hygiene.proposaltext; fix_safety: hygiene.fixsafety): the proposal carries the
    # derived summary, rule codes and bytes, and its stored fix_safety (which apply and
    # the approval's fingerprint go by), shown as :attr:`safety`
    altered: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.proposal.id

    @property
    def safety(self) -> FixSafety:
        """The fix safety every reader shows: what apply treats the proposal as, from its
        action and the rule codes of its evidence (:func:`hygiene.fixsafety.shown_safety`),
        never safer than the stored ``fix_safety``."""
        p = self.proposal
        return shown_safety(p.fix_safety, p.action, p.target, p.evidence)

    @property
    def state(self) -> ProposalState:
        return self.proposal.state

    def to_json(self) -> dict[str, Any]:
        data = self.proposal.to_json()
        for f in fields(self):
            if f.name != "proposal":
                data[f.name] = _json_value(getattr(self, f.name))
        data["fix_safety"] = self.safety.value  # the stored one: named in "altered"
        data["altered"] = list(self.altered)
        return data


@dataclass(frozen=True)
class RepositoryScan:
    """What the store knows of the scans of one repository (its own row and the
    region-level ones): the latest scan, and the latest that could not read it whole."""

    last_scan_run: str | None = None
    last_scan_at: datetime | None = None
    last_incomplete_run: str | None = None
    last_incomplete_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit log (``Store.audit_log``); see docs/approvals.md for outcomes."""

    id: int
    at: datetime
    run_id: str | None
    proposal_id: str | None
    intent_id: int | None
    actor: str
    action: str
    account: str | None
    region: str | None
    repository: str | None
    digest: str | None
    outcome: str
    detail: str
    dry_run: bool
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {f.name: _json_value(getattr(self, f.name)) for f in fields(self)}


def column_names(model: type[DeclarativeBase]) -> tuple[str, ...]:
    """The mapped column attributes of ``model``, in table order."""
    return tuple(attribute.key for attribute in sa_inspect(model).column_attrs)


class RowMapper(Generic[R]):
    """``mapper(row)`` → a record built from every column of ``model``.

    ``record_fields`` are the keyword arguments ``build`` takes; they must be exactly the
    model's columns (checked here, when the mapper is made). ``convert`` maps a column to
    the function that turns its stored value into the record's (``Action``, ``tuple`` …).
    """

    def __init__(
        self,
        model: type[DeclarativeBase],
        record_fields: Iterable[str],
        build: Callable[..., R],
        convert: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        self.columns = column_names(model)
        wanted = set(record_fields)
        unmapped = [c for c in self.columns if c not in wanted]
        unfilled = sorted(wanted - set(self.columns))
        if unmapped or unfilled:
            raise TypeError(
                f"{model.__name__} and its record disagree: columns without a record field: "
                f"{unmapped or 'none'}; record fields without a column: {unfilled or 'none'}"
            )
        self.convert = dict(convert or {})
        unknown = sorted(set(self.convert) - set(self.columns))
        if unknown:
            raise TypeError(f"{model.__name__}: conversions for unknown columns {unknown}")
        self.build = build

    def __call__(self, row: Any) -> R:
        values = {column: getattr(row, column) for column in self.columns}
        for column, to_record in self.convert.items():
            values[column] = to_record(values[column])
        return self.build(**values)


def _names(record: type[Any], *, without: tuple[str, ...] = ()) -> list[str]:
    return [f.name for f in fields(record) if f.name not in without]


PROPOSAL_FIELDS = tuple(_names(Proposal))


def _stored_proposal(**values: Any) -> StoredProposal:
    # the namespace is the repository's, as the rules name it: the approval fingerprint
    # covers the repository, not the ``namespace`` column, which a writer of the store
    # could point at another project (its owners would then object and be told in vain)
    values["namespace"] = namespace_of(values["repository"])
    # summary, rule codes and bytes are shown beside the id but not fingerprinted: shown
    # as the target and evidence (which the fingerprint covers) say
    derived = displayed(
        values["action"], values["repository"], values["target"], values["evidence"]
    )
    altered = altered_columns(values, derived)
    stored_safety = values["fix_safety"]
    safety = shown_safety(stored_safety, values["action"], values["target"], values["evidence"])
    if safety is not stored_safety:
        altered += ("fix_safety",)
    if derived is not None:
        values.update(summary=derived.summary, rule_codes=derived.rule_codes, bytes=derived.bytes)
    elif size_of(values["bytes"]) != values["bytes"]:  # shown as stored, but never negative
        values["bytes"] = size_of(values["bytes"])
        altered += ("bytes",)
    proposal = Proposal(**{name: values.pop(name) for name in PROPOSAL_FIELDS})
    return StoredProposal(proposal=proposal, altered=altered, **values)


def _enum_value(value: Enum) -> Any:
    return value.value


run_record = RowMapper(
    RunRow, _names(RunRecord), RunRecord, convert={"summary": lambda value: value or {}}
)
audit_entry = RowMapper(AuditRow, _names(AuditEntry), AuditEntry)
stored_proposal = RowMapper(
    ProposalRow,
    [*PROPOSAL_FIELDS, *_names(StoredProposal, without=("proposal", "altered"))],
    _stored_proposal,
    convert={
        "action": Action,
        "fix_safety": FixSafety,
        "state": ProposalState,
        "rule_codes": tuple,
    },
)

# Proposal fields stored in another form: the other direction of ``stored_proposal``.
_PROPOSAL_TO_COLUMN: dict[str, Callable[[Any], Any]] = {
    "action": _enum_value,
    "fix_safety": _enum_value,
    "state": _enum_value,
    "rule_codes": list,
    "bytes": int,
}
if not set(_PROPOSAL_TO_COLUMN) <= set(PROPOSAL_FIELDS):
    raise TypeError(f"conversions for unknown Proposal fields: {sorted(_PROPOSAL_TO_COLUMN)}")


def _same(value: Any) -> Any:
    return value


def proposal_columns(proposal: Proposal) -> dict[str, Any]:
    """Every field of ``proposal`` as the ``proposals`` column of the same name holds it."""
    return {
        name: _PROPOSAL_TO_COLUMN.get(name, _same)(getattr(proposal, name))
        for name in PROPOSAL_FIELDS
    }
