"""The inventory: the one data model every rule reads.

Two pandas DataFrames with fixed dtypes (see ``IMAGE_DTYPES`` / ``REPOSITORY_DTYPES``)
plus the run that produced them. Timestamps are aware UTC; sizes are bytes. ECR reports
an image index's ``imageSizeInBytes`` as its largest child's size, so ``storage_bytes``
is zero for indexes and registry/repository totals never count a child twice.

A third, small frame, ``in_use`` (``IN_USE_DTYPES``), holds what the workloads said they
run (docs/in-use.md), and ``run.in_use`` how each in-use source went.

A snapshot is one parquet file: the images table, with the repositories and in-use tables
(Arrow IPC, base64) and the run metadata (JSON) in the file's key/value metadata, so a
scan can be re-evaluated offline with ``hygiene scan --from-snapshot FILE``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hygiene.frametypes import UTC_NS, coerce, object_columns
from hygiene.imageframes import INDEX_MEDIA_TYPES as INDEX_MEDIA_TYPES
from hygiene.imageframes import REFERRERS_TAG as REFERRERS_TAG
from hygiene.imageframes import SIGNATURE_TAG as SIGNATURE_TAG
from hygiene.imageframes import ImageFrames
from hygiene.imageframes import legacy_signature_subject as legacy_signature_subject
from hygiene.imageframes import link_indexes as link_indexes
from hygiene.imageframes import tag_subject as tag_subject
from hygiene.model import iso_utc

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

IMAGE_DTYPES: dict[str, Any] = {
    "account": "category",
    "region": "category",
    "repository": "category",
    "namespace": "category",  # NA for repositories outside any namespace
    "digest": "string",
    "tags": "object",  # list[str], possibly empty
    "tag_count": "int32",
    "pushed_at": UTC_NS,
    "last_pull": UTC_NS,  # NaT if never pulled (or pull not yet recorded)
    "size_bytes": "int64",  # as reported by ECR (an index reports its largest child)
    "storage_bytes": "int64",  # size counted in totals: 0 for an index
    "manifest_media_type": "category",
    "artifact_media_type": "category",
    "status": "category",  # ACTIVE | ARCHIVED | ACTIVATING
    "is_index": "bool",
    "child_digests": "object",  # list[str]: manifests an index lists (empty otherwise)
    "parent_indexes": "object",  # list[str]: digests of indexes listing this image
    "subject_digest": "string",  # OCI referrer subject, or legacy cosign tag's subject
    # tagged only with legacy cosign sha256-<hex>.sig|att|sbom (or, on an index, with the
    # referrers tag schema's sha256-<hex>): a referrer named by its tag
    "is_signature_tag": "bool",
}

REPOSITORY_DTYPES: dict[str, Any] = {
    "account": "category",
    "region": "category",
    "name": "string",
    "namespace": "category",
    "arn": "string",
    "uri": "string",
    "created_at": UTC_NS,
    "tag_mutability": "category",
    "tag_mutability_exclusions": "object",  # list[str]
    "scan_on_push": "bool",
    # registry-level scanning covering this repository (ECR.1 accepts it too):
    # "continuous" | "on-push" | NA (none, or basic scanning without a matching rule)
    "registry_scan_frequency": "category",
    "encryption": "category",  # AES256 | KMS | KMS_DSSE
    "kms_key": "string",
    "lifecycle_policy": "string",  # JSON text or NA
    "repository_policy": "string",  # JSON text or NA
    "resource_tags": "object",  # dict[str, str]
    "image_count": "int64",
    "total_bytes": "int64",
    "scan_error": "string",  # NA when the repository was read completely
}


# One row per reference a workload makes to an image (hygiene.collect.workloads.ImageUse):
# account/region are the registry's (NA: any, the in-use file's short form).
IN_USE_DTYPES: dict[str, Any] = {
    "source": "category",  # ecs | lambda | batch | kubernetes | file
    "where": "string",  # prod/service/api …
    "account": "string",
    "region": "string",
    "repository": "string",
    "tag": "string",
    "digest": "string",
    "running": "bool",  # reported by a running task or pod
}


def cell_text(value: Any) -> str | None:
    """A text cell of an inventory frame as ``str``, or None when missing (None, NA, NaN)."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)


def namespace_of(repository: str) -> str | None:
    """``suporte/cloud/api`` → ``suporte``; ``nginx`` (no slash) → None."""
    head, sep, _ = repository.partition("/")
    return head if sep else None


@dataclass
class ScanError:
    """A part of the registry that could not be read; it makes the run incomplete.

    ``account`` None means the part is not one account's (the tool's own credentials'
    account without ``registry.accounts``, or a missing part of a sharded run): the run
    is then incomplete for every account.
    """

    region: str
    repository: str | None
    operation: str
    message: str
    account: str | None = None


@dataclass
class SourceStatus:
    """How one in-use source went: ``ok`` with the number of references it found,
    ``failed`` with the reason, or ``not-configured`` (not consulted at all)."""

    name: str  # e.g. "ecs us-east-1", "ecs 210987654321/us-east-1", "kubernetes lab"
    source: str  # ecs | lambda | batch | kubernetes | file
    state: str  # ok | failed | not-configured
    detail: str = ""
    references: int = 0
    account: str | None = None  # the workloads' account, when not the tool's own

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SourceStatus:
        return cls(
            name=str(data["name"]),
            source=str(data["source"]),
            state=str(data["state"]),
            detail=str(data.get("detail", "")),
            references=int(data.get("references", 0)),
            account=data.get("account"),
        )


@dataclass
class RunInfo:
    id: str
    started_at: datetime
    finished_at: datetime | None = None
    errors: list[ScanError] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)
    source: str = "ecr"  # ecr | embedded | snapshot:<file> | parts:<run id>
    # (account, region) pairs the run read; with several accounts, the expiry of absent
    # proposals is limited to the complete ones
    scopes: list[tuple[str, str]] = field(default_factory=list)
    # accounts not read, and why (suspended in the Organization, excluded)
    skipped_accounts: dict[str, str] = field(default_factory=dict)
    # every in-use source and how it went; empty when no discovery ran (offline inventories)
    in_use: list[SourceStatus] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.errors

    def complete_for(self, account: str) -> bool:
        """True when nothing of ``account`` went unread (an error of no particular
        account, such as a missing part, counts for every account)."""
        return not any(e.account is None or e.account == account for e in self.errors)

    @property
    def incomplete_accounts(self) -> list[str | None]:
        """Accounts with an unread part (None: the run as a whole)."""
        return sorted({e.account for e in self.errors}, key=lambda a: (a is not None, a or ""))

    def complete_scopes(self) -> list[tuple[str, str]]:
        """The (account, region) pairs read completely."""
        return [(a, r) for a, r in self.scopes if self.complete_for(a)]

    @property
    def in_use_failed(self) -> list[SourceStatus]:
        """In-use sources that could not be read: no image may be deleted on this run."""
        return [s for s in self.in_use if s.state == "failed"]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started_at": iso_utc(self.started_at),
            "finished_at": iso_utc(self.finished_at),
            "complete": self.complete,
            "errors": [asdict(e) for e in self.errors],
            "api_calls": dict(sorted(self.api_calls.items())),
            "source": self.source,
            "scopes": [list(s) for s in sorted(self.scopes)],
            "skipped_accounts": dict(sorted(self.skipped_accounts.items())),
            "in_use": [status.to_json() for status in self.in_use],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunInfo:
        return cls(
            id=data["id"],
            started_at=datetime.fromisoformat(data["started_at"]),
            finished_at=(
                datetime.fromisoformat(data["finished_at"]) if data.get("finished_at") else None
            ),
            errors=[ScanError(**e) for e in data.get("errors", [])],
            api_calls=dict(data.get("api_calls", {})),
            source=data.get("source", "ecr"),
            scopes=[(str(a), str(r)) for a, r in data.get("scopes", [])],
            skipped_accounts=dict(data.get("skipped_accounts", {})),
            in_use=[SourceStatus.from_json(s) for s in data.get("in_use", [])],
        )


@dataclass
class Inventory:
    images: pd.DataFrame
    repositories: pd.DataFrame
    run: RunInfo
    in_use: pd.DataFrame = field(default_factory=lambda: build_in_use([]))

    @property
    def total_bytes(self) -> int:
        return int(self.images["storage_bytes"].sum())

    def summary(self) -> dict[str, int]:
        return {
            "repositories": len(self.repositories),
            "images": len(self.images),
            "bytes": self.total_bytes,
        }


RepositoryKey = tuple[str, str, str]  # (account, region, repository)
ANY = "*"  # account or repository of a coverage entry about a whole region


@dataclass(frozen=True)
class ScanCoverage:
    """Which repositories one scan read completely: what a proposal's confirmation means.

    A repository is *complete* in a scan when the scan read it entirely (no
    ``scan_error``) and nothing the rules read about its whole account and region failed
    (the repository listing, or GetRegistryScanningConfiguration, which SC001 needs). A
    region-level error makes every repository of that account and region incomplete,
    including those the scan could not even list (``incomplete_regions``; account or
    region ``*`` when the error names none, as a single-account scan's or a missing
    shard part's do).

    ``scanned_at`` is when the scan started: the time its data describes, the same for a
    snapshot re-evaluated later. The store keeps, per repository, the last scan and the
    last incomplete one; apply acts only on a proposal confirmed by the latest scan of
    its repository, and only if that scan was complete (docs/approvals.md).
    """

    run_id: str
    scanned_at: datetime
    complete: frozenset[RepositoryKey]
    incomplete: dict[RepositoryKey, str]  # repository → why
    incomplete_regions: dict[tuple[str, str], str]  # (account|*, region|*) → why
    # (account, region) pairs whose repositories were all listed: a repository of such a
    # pair that is not in the scan no longer exists
    listed: frozenset[tuple[str, str]] = frozenset()

    def is_complete(self, key: RepositoryKey) -> bool:
        return key in self.complete

    def covers(self, key: RepositoryKey) -> bool:
        """Did the scan see all there is of ``key``? Read completely, or gone from a
        listing that succeeded (its proposals may expire for being absent)."""
        if key in self.complete:
            return True
        return key not in self.incomplete and (key[0], key[1]) in self.listed

    @classmethod
    def of(cls, inventory: Inventory, run_id: str | None = None) -> ScanCoverage:
        """The coverage of ``inventory``'s scan (``run_id``: the run that confirms, by
        default the scan's own id)."""
        run = inventory.run
        regional: dict[tuple[str, str], str] = {}
        for error in run.errors:
            if error.repository is None:
                where = (error.account or ANY, error.region or ANY)
                regional.setdefault(where, f"{error.operation}: {error.message}")

        def region_error(account: str, region: str) -> str | None:
            for key in ((account, region), (ANY, region), (account, ANY), (ANY, ANY)):
                if key in regional:
                    return regional[key]
            return None

        complete: set[RepositoryKey] = set()
        incomplete: dict[RepositoryKey, str] = {}
        repos = inventory.repositories
        for account, region, name, error in zip(
            repos["account"].astype(str),
            repos["region"].astype(str),
            repos["name"].astype(str),
            repos["scan_error"].astype(object),
            strict=True,
        ):
            repository = (account, region, name)
            why = error if isinstance(error, str) else region_error(account, region)
            if why is None:
                complete.add(repository)
            else:
                incomplete[repository] = why
        pairs = {(str(a), str(r)) for a, r in run.scopes} | {(k[0], k[1]) for k in complete}
        listed = frozenset(p for p in pairs if p[0] and region_error(*p) is None)
        return cls(
            run_id=run_id or run.id,
            scanned_at=run.started_at,
            complete=frozenset(complete),
            incomplete=incomplete,
            incomplete_regions=regional,
            listed=listed,
        )

    def restricted_to(self, keys: Iterable[RepositoryKey]) -> ScanCoverage:
        """Only ``keys`` (a partial plan: the other repositories' proposals were not
        re-proposed, so the scan must neither confirm nor outdate them)."""
        wanted = set(keys)
        return ScanCoverage(
            run_id=self.run_id,
            scanned_at=self.scanned_at,
            complete=frozenset(k for k in self.complete if k in wanted),
            incomplete={k: v for k, v in self.incomplete.items() if k in wanted},
            incomplete_regions={},
        )


# --------------------------------------------------------------------------- building


def _typed(records: Iterable[Mapping[str, Any]], dtypes: Mapping[str, Any]) -> pd.DataFrame:
    """Records → a frame of exactly ``dtypes`` (missing keys → NA)."""
    return coerce(object_columns(list(records), dtypes), dtypes)


def build_images(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Image records (collector output) → typed images frame with derived columns (the
    collector builds it a repository at a time: :class:`hygiene.imageframes.ImageFrames`)."""
    frames = ImageFrames(IMAGE_DTYPES)
    frames.add(0, records if isinstance(records, list) else list(records))
    return frames.frame([0])


def build_repositories(records: Iterable[Mapping[str, Any]], images: pd.DataFrame) -> pd.DataFrame:
    """Repository records → typed frame with image_count/total_bytes from ``images``."""
    frame = _typed(records, REPOSITORY_DTYPES)
    frame["resource_tags"] = [t if isinstance(t, dict) else {} for t in frame["resource_tags"]]
    frame["tag_mutability_exclusions"] = [
        list(t) if isinstance(t, list | tuple) else [] for t in frame["tag_mutability_exclusions"]
    ]
    if len(images):
        totals = _repository_totals(frame, images)
        if totals is None:
            totals = _repository_totals_grouped(frame, images)
        frame["image_count"], frame["total_bytes"] = totals
    return coerce(frame, REPOSITORY_DTYPES)


def _repository_totals_grouped(
    frame: pd.DataFrame, images: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Each repository's number of images and their storage bytes (0 and 0 for one
    without images), from a pandas ``groupby``: the general path."""
    import pandas as pd

    grouped = images.groupby(["account", "region", "repository"], observed=True).agg(
        image_count=("digest", "size"), total_bytes=("storage_bytes", "sum")
    )
    keys = pd.MultiIndex.from_arrays(
        [frame["account"].astype(str), frame["region"].astype(str), frame["name"].astype(str)]
    )
    grouped.index = grouped.index.set_levels([level.astype(str) for level in grouped.index.levels])
    aligned = grouped.reindex(keys)
    return (
        aligned["image_count"].fillna(0).to_numpy().astype("int64"),
        aligned["total_bytes"].fillna(0).to_numpy().astype("int64"),
    )


DENSE_KEYS = 4  # _repository_totals counts by position up to this many keys an image


def _repository_totals(
    frame: pd.DataFrame, images: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`_repository_totals_grouped` from the images' category codes (its set-up
    cost more than the work at a few thousand images; tested against it). None when a
    key column of ``images`` is not categorical with text categories (the general
    path)."""
    import numpy as np
    import pandas as pd

    columns = [images[c] for c in ("account", "region", "repository")]
    if not all(isinstance(c.dtype, pd.CategoricalDtype) for c in columns):
        return None
    categories = [c.cat.categories.tolist() for c in columns]
    if not all(type(v) is str for values in categories for v in values):
        return None  # the grouped path compares the categories as str()
    codes = [c.cat.codes.to_numpy(dtype=np.int64) for c in columns]
    present = (codes[0] >= 0) & (codes[1] >= 0) & (codes[2] >= 0)  # groupby drops NA keys
    sizes = [len(values) for values in categories]
    key = (codes[0] * sizes[1] + codes[1]) * sizes[2] + codes[2]
    stored = images["storage_bytes"].to_numpy(dtype=np.int64)[present]
    if sizes[0] * sizes[1] * sizes[2] <= DENSE_KEYS * (len(key) + 256):  # counted by position
        counts = np.bincount(key[present], minlength=sizes[0] * sizes[1] * sizes[2])
        groups = np.flatnonzero(counts)
        totals = np.zeros(len(counts), dtype=np.int64)
        np.add.at(totals, key[present], stored)
        counts, totals = counts[groups], totals[groups]
    else:
        groups, inverse = np.unique(key[present], return_inverse=True)
        counts = np.bincount(inverse, minlength=len(groups))
        totals = np.zeros(len(groups), dtype=np.int64)
        np.add.at(totals, inverse, stored)
    counts = counts.astype(np.int64)
    account, rest = np.divmod(groups, sizes[1] * sizes[2])
    region, repository = np.divmod(rest, sizes[2])
    position = {
        (categories[0][a], categories[1][r], categories[2][p]): i
        for i, (a, r, p) in enumerate(
            zip(account.tolist(), region.tolist(), repository.tolist(), strict=True)
        )
    }
    wanted = zip(
        frame["account"].astype(str).tolist(),
        frame["region"].astype(str).tolist(),
        frame["name"].astype(str).tolist(),
        strict=True,
    )
    rows = np.array([position.get(k, -1) for k in wanted], dtype=np.int64)
    found = rows >= 0
    if not len(groups):  # no image with all three keys
        counts, totals, rows = np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros_like(rows)
    image_count = np.where(found, counts[rows], 0)
    total_bytes = np.where(found, totals[rows], 0)
    if not found.all():  # the grouped path's totals went through float64 (missing: NaN)
        total_bytes = total_bytes.astype(np.float64).astype(np.int64)
    return image_count.astype(np.int64), total_bytes.astype(np.int64)


def build_in_use(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """In-use references (``ImageUse.to_json()`` records) → the typed ``in_use`` frame."""
    return _typed(records, IN_USE_DTYPES)


def empty_inventory(run: RunInfo) -> Inventory:
    images = build_images([])
    return Inventory(images=images, repositories=build_repositories([], images), run=run)


# --------------------------------------------------------------------------- snapshots

_META_REPOSITORIES = b"hygiene.repositories"
_META_RUN = b"hygiene.run"
_META_IN_USE = b"hygiene.in_use"


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    import pyarrow as pa

    frame = frame.copy()
    if "resource_tags" in frame:
        frame["resource_tags"] = frame["resource_tags"].map(json.dumps)
    return pa.Table.from_pandas(frame, preserve_index=False)


def snapshot_table(inventory: Inventory) -> pa.Table:
    """The images table with the repositories and the run in its metadata (a snapshot,
    or with shard metadata added, a part of a sharded run)."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    repositories = _to_arrow(inventory.repositories)
    with pa.ipc.new_stream(sink, repositories.schema) as writer:
        writer.write_table(repositories)
    in_use_sink = pa.BufferOutputStream()
    in_use = _to_arrow(inventory.in_use)
    with pa.ipc.new_stream(in_use_sink, in_use.schema) as writer:
        writer.write_table(in_use)
    images = _to_arrow(inventory.images)
    metadata = dict(images.schema.metadata or {})
    metadata[_META_REPOSITORIES] = base64.b64encode(sink.getvalue().to_pybytes())
    metadata[_META_IN_USE] = base64.b64encode(in_use_sink.getvalue().to_pybytes())
    metadata[_META_RUN] = json.dumps(inventory.run.to_json()).encode()
    return images.replace_schema_metadata(metadata)


def write_snapshot(inventory: Inventory, path: Path) -> Path:
    """Write ``inventory`` to one parquet file (see module docstring). The file appears
    whole or not at all: it is written next to ``path`` and renamed, so a process that
    ends while writing (a crash, an interrupt) leaves no half-written snapshot under the
    name a later ``--from-snapshot`` would read."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        pq.write_table(snapshot_table(inventory), partial, compression="zstd")
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def read_snapshot(path: Path) -> Inventory:
    """Read a snapshot written by :func:`write_snapshot`; dtypes are restored exactly."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hygiene.errors import ConfigError

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ConfigError(f"{path}: not a readable snapshot: {exc}") from exc
    return inventory_from_table(table, source=f"snapshot:{path}", where=str(path))


def inventory_from_table(table: pa.Table, *, source: str, where: str = "") -> Inventory:
    """The inventory of a table made by :func:`snapshot_table`."""
    import pyarrow as pa

    from hygiene.errors import ConfigError

    metadata = table.schema.metadata or {}
    if _META_REPOSITORIES not in metadata or _META_RUN not in metadata:
        raise ConfigError(f"{where}: parquet file has no registry-hygiene snapshot metadata")
    reader = pa.ipc.open_stream(base64.b64decode(metadata[_META_REPOSITORIES]))
    repositories = reader.read_all().to_pandas()
    repositories["resource_tags"] = repositories["resource_tags"].map(json.loads)
    images = table.to_pandas()
    for frame, column in ((images, "tags"), (images, "child_digests"), (images, "parent_indexes")):
        frame[column] = frame[column].map(lambda v: [str(x) for x in v] if v is not None else [])
    repositories["tag_mutability_exclusions"] = repositories["tag_mutability_exclusions"].map(
        lambda v: [str(x) for x in v] if v is not None else []
    )
    run = RunInfo.from_json(json.loads(metadata[_META_RUN]))
    run.source = source
    in_use = build_in_use([])
    if _META_IN_USE in metadata:  # snapshots from before in-use discovery have none
        stream = pa.ipc.open_stream(base64.b64decode(metadata[_META_IN_USE]))
        in_use = coerce(stream.read_all().to_pandas(), IN_USE_DTYPES)
    return Inventory(
        images=coerce(images, IMAGE_DTYPES),
        repositories=coerce(repositories, REPOSITORY_DTYPES),
        run=run,
        in_use=in_use,
    )
