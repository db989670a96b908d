"""The report input: :class:`ReportData`, plain JSON-shaped data every report renders from.

Reports never read AWS, the store or DataFrames directly. The caller (the nightly/weekly
job, or ``hygiene report --from-json``) builds one :class:`ReportData` with
:func:`build_report_data` from

- the scan JSON contract (``run``, ``inventory``, ``findings``, ``kept``, ``proposals``),
- optionally the :class:`~hygiene.inventory.Inventory` of the same run (for per-repository
  sizes and the image age distribution, which the scan contract does not carry),
- the store's run history (:class:`HistoryRun`, oldest first, the current run excluded),
- what apply did in this run (:class:`ApplyOutcome`) and deliveries that failed before.

``ReportData.to_json()`` / ``ReportData.from_json()`` round-trip, so a job can save the
exact input of a report next to it and re-render it offline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from hygiene.errors import ConfigError
from hygiene.fixsafety import shown_proposal_json
from hygiene.inventory import Inventory, namespace_of
from hygiene.model import iso_utc
from hygiene.report.findingrows import FindingRows, codes_in_order, present

SCHEMA = "hygiene-report-data/1"

# Upper bounds (days) of the image age buckets; the last bucket is open-ended.
AGE_BUCKETS: tuple[int, ...] = (7, 30, 90, 180, 365)
AGE_BUCKET_KEYS: tuple[str, ...] = ("lt7", "lt30", "lt90", "lt180", "lt365", "ge365")
NO_NAMESPACE = ""  # key of repositories outside any namespace in per-namespace maps


@dataclass(frozen=True)
class RepositoryStat:
    """One repository's size, as the report needs it."""

    name: str
    namespace: str | None
    image_count: int
    bytes: int
    scan_error: str | None = None
    account: str = ""  # a repository name may exist in several accounts and regions
    region: str = ""


@dataclass(frozen=True)
class HistoryRun:
    """One past run from the store (oldest first in :attr:`ReportData.history`).

    ``status`` is ``complete``, ``incomplete`` (some repository/region unread) or
    ``failed``. ``namespace_bytes`` uses ``""`` for repositories outside a namespace.
    ``findings_by_code`` is optional; with it the report shows finding deltas per rule.
    """

    id: str
    finished_at: datetime | None
    status: str
    images: int
    bytes: int
    repositories: int = 0
    namespace_bytes: dict[str, int] = field(default_factory=dict)
    findings_by_code: dict[str, int] = field(default_factory=dict)
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["finished_at"] = iso_utc(self.finished_at)
        data["errors"] = list(self.errors)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HistoryRun:
        return cls(
            id=str(data["id"]),
            finished_at=_parse_dt(data.get("finished_at")),
            status=str(data.get("status", "complete")),
            images=int(data.get("images", 0)),
            bytes=int(data.get("bytes", 0)),
            repositories=int(data.get("repositories", 0)),
            namespace_bytes={str(k): int(v) for k, v in data.get("namespace_bytes", {}).items()},
            findings_by_code={str(k): int(v) for k, v in data.get("findings_by_code", {}).items()},
            errors=tuple(str(e) for e in data.get("errors", ())),
        )


@dataclass(frozen=True)
class ApplyOutcome:
    """What apply did with one proposal in this run: applied, skipped or failed, and why."""

    proposal_id: str
    state: str  # applied | skipped | failed
    action: str
    repository: str
    namespace: str | None
    reason: str = ""
    bytes: int = 0
    account: str = ""
    region: str = ""


@dataclass(frozen=True)
class DeliveryFailure:
    """A report delivery that failed after all retries (recorded by the store)."""

    channel: str
    target: str
    report: str
    error: str
    at: datetime | None = None


@dataclass
class ReportData:
    """Everything a nightly or weekly report shows. JSON-shaped; see the module docstring."""

    generated_at: datetime
    run: dict[str, Any]  # RunInfo.to_json()
    totals: dict[str, int]  # repositories, images, bytes
    # Finding.to_json() of every finding, built when read (hygiene.report.findingrows)
    findings: Sequence[Mapping[str, Any]] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)  # KeptImage.to_json()
    proposals: list[dict[str, Any]] = field(default_factory=list)  # Proposal.to_json()
    repositories: list[RepositoryStat] = field(default_factory=list)
    # namespace ("" = none) → bucket key (AGE_BUCKET_KEYS) → image count
    age_buckets: dict[str, dict[str, int]] = field(default_factory=dict)
    history: list[HistoryRun] = field(default_factory=list)
    outcomes: list[ApplyOutcome] = field(default_factory=list)
    delivery_failures: list[DeliveryFailure] = field(default_factory=list)
    # expired mutelist entries: {"message", "message_template", "message_params"} (or text)
    mute_warnings: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.findings = FindingRows.of(self.findings)
        # every report and export shows a proposal's safety as apply takes it, whatever
        # the store's (or a saved document's) fix_safety says: hygiene.fixsafety
        self.proposals = [shown_proposal_json(p) for p in self.proposals]

    @property
    def finding_rows(self) -> FindingRows:
        return FindingRows.of(self.findings)

    # ------------------------------------------------------------------ derived views
    @property
    def complete(self) -> bool:
        return bool(self.run.get("complete", not self.run.get("errors")))

    def namespaces(self) -> list[str]:
        """Namespaces seen in this run (repositories, findings or proposals), sorted."""
        names = {r.namespace for r in self.repositories if r.namespace}
        names |= present(self.finding_rows.columns().namespace)
        names |= {p["namespace"] for p in self.proposals if p.get("namespace")}
        return sorted(names)

    def namespace_bytes(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for repo in self.repositories:
            key = repo.namespace or NO_NAMESPACE
            sizes[key] = sizes.get(key, 0) + repo.bytes
        return sizes

    # ------------------------------------------------------------------ JSON round trip
    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "generated_at": iso_utc(self.generated_at),
            "run": self.run,
            "totals": self.totals,
            "findings": list(self.findings),
            "kept": self.kept,
            "proposals": self.proposals,
            "repositories": [asdict(r) for r in self.repositories],
            "age_buckets": self.age_buckets,
            "history": [h.to_json() for h in self.history],
            "outcomes": [asdict(o) for o in self.outcomes],
            "delivery_failures": [
                {**asdict(d), "at": iso_utc(d.at)} for d in self.delivery_failures
            ],
            "mute_warnings": self.mute_warnings,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReportData:
        try:
            return cls(
                generated_at=_parse_dt(data["generated_at"]) or datetime.now(UTC),
                run=dict(data["run"]),
                totals={k: int(v) for k, v in data["totals"].items()},
                findings=list(data.get("findings", [])),
                kept=list(data.get("kept", [])),
                proposals=list(data.get("proposals", [])),
                repositories=[RepositoryStat(**r) for r in data.get("repositories", [])],
                age_buckets={
                    str(ns): {str(k): int(v) for k, v in buckets.items()}
                    for ns, buckets in data.get("age_buckets", {}).items()
                },
                history=[HistoryRun.from_json(h) for h in data.get("history", [])],
                outcomes=[ApplyOutcome(**o) for o in data.get("outcomes", [])],
                delivery_failures=[
                    DeliveryFailure(**{**d, "at": _parse_dt(d.get("at"))})
                    for d in data.get("delivery_failures", [])
                ],
                mute_warnings=[
                    w if isinstance(w, dict) else str(w) for w in data.get("mute_warnings", [])
                ],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"report data: malformed or missing key: {exc}") from exc


# --------------------------------------------------------------------------- building


# How ``hygiene report`` gets live data without --from-json: the scan/store side
# registers ``source(config) -> ReportData`` (scan the registry, read the store history).
def build_report_data(
    scan: Mapping[str, Any],
    *,
    inventory: Inventory | None = None,
    history: Iterable[HistoryRun | Mapping[str, Any]] = (),
    outcomes: Iterable[ApplyOutcome] = (),
    delivery_failures: Iterable[DeliveryFailure] = (),
    mute_warnings: Sequence[Any] = (),
    now: datetime | None = None,
) -> ReportData:
    """Turn one scan (JSON contract) + store history into the input of every report.

    ``scan`` is what ``hygiene scan --format json`` prints. With ``inventory`` (the same
    run's :class:`Inventory`) the report also gets per-repository sizes and the image age
    distribution; without it, ``scan["inventory"]`` may carry ``repository_stats`` and
    ``age_buckets`` in the shapes of :class:`ReportData` (``hygiene report --from-json``).
    ``history`` holds earlier runs only (not the one being reported), oldest first; its
    entries may be :class:`HistoryRun` or their JSON.
    """
    for key in ("run", "inventory", "findings", "proposals"):
        if key not in scan:
            raise ConfigError(f"scan JSON: missing top-level key {key!r}")
    summary = scan["inventory"]
    generated_at = now or datetime.now(UTC)
    if inventory is not None:
        repositories = repository_stats(inventory)
        age_buckets = image_age_buckets(inventory, generated_at)
    else:
        repositories = [RepositoryStat(**r) for r in summary.get("repository_stats", [])]
        age_buckets = {
            str(ns): {str(k): int(v) for k, v in b.items()}
            for ns, b in summary.get("age_buckets", {}).items()
        }
    runs = [h if isinstance(h, HistoryRun) else HistoryRun.from_json(h) for h in history]
    runs = [h for h in runs if h.id != scan["run"].get("id")]  # the current run is not history
    runs.sort(key=lambda h: h.finished_at or datetime.min.replace(tzinfo=UTC))
    return ReportData(
        generated_at=generated_at,
        run=dict(scan["run"]),
        totals={
            "repositories": int(summary.get("repositories", len(repositories))),
            "images": int(summary.get("images", 0)),
            "bytes": int(summary.get("bytes", 0)),
        },
        findings=FindingRows.of(scan["findings"]),
        kept=list(scan.get("kept", [])),
        proposals=list(scan["proposals"]),
        repositories=repositories,
        age_buckets=age_buckets,
        history=runs,
        outcomes=list(outcomes),
        delivery_failures=list(delivery_failures),
        mute_warnings=list(mute_warnings or scan.get("mute_warnings", [])),
    )


def history_entry(data: ReportData) -> HistoryRun:
    """The :class:`HistoryRun` the store should record for the run ``data`` reports on."""
    by_code = codes_in_order(data.finding_rows.columns())
    return HistoryRun(
        id=str(data.run.get("id", "")),
        finished_at=_parse_dt(data.run.get("finished_at")),
        status="complete" if data.complete else "incomplete",
        images=data.totals["images"],
        bytes=data.totals["bytes"],
        repositories=data.totals["repositories"],
        namespace_bytes=data.namespace_bytes(),
        findings_by_code=by_code,
        errors=tuple(str(e.get("message", e)) for e in data.run.get("errors", [])),
    )


def repository_stats(inventory: Inventory) -> list[RepositoryStat]:
    frame = inventory.repositories
    stats = []
    for row in frame.itertuples(index=False):
        namespace = row.namespace if isinstance(row.namespace, str) else namespace_of(row.name)
        error = row.scan_error if isinstance(row.scan_error, str) else None
        stats.append(
            RepositoryStat(
                name=str(row.name),
                namespace=namespace,
                image_count=int(row.image_count),
                bytes=int(row.total_bytes),
                scan_error=error,
                account=str(row.account),
                region=str(row.region),
            )
        )
    return stats


def image_age_buckets(inventory: Inventory, now: datetime) -> dict[str, dict[str, int]]:
    """Count images per namespace by age since push (indexes' children counted once)."""
    images = inventory.images
    buckets: dict[str, dict[str, int]] = {}
    if images.empty:
        return buckets
    days = (now - images["pushed_at"]).dt.days.fillna(0).to_numpy(dtype=np.int64)
    bucket = np.searchsorted(np.array(AGE_BUCKETS), days, side="right")  # as age_bucket
    namespaces = images["namespace"].astype(object)
    keys = namespaces.where(namespaces.map(lambda v: isinstance(v, str)), NO_NAMESPACE)
    codes, names = pd.factorize(keys)  # namespaces in order of first appearance
    counts = np.zeros((len(names), len(AGE_BUCKET_KEYS)), dtype=np.int64)
    np.add.at(counts, (codes, bucket), 1)
    for name, row in zip(names, counts.tolist(), strict=True):
        buckets[str(name)] = dict(zip(AGE_BUCKET_KEYS, row, strict=True))
    return buckets


def age_bucket(age_days: int) -> str:
    for bound, key in zip(AGE_BUCKETS, AGE_BUCKET_KEYS, strict=False):
        if age_days < bound:
            return key
    return AGE_BUCKET_KEYS[-1]


def _parse_dt(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    result = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return result if result.tzinfo else result.replace(tzinfo=UTC)
