"""Sharded scans: each shard reads a share of the repositories; their parts merge into one.

``hygiene scan --shard I/N`` reads the repositories whose (account, region, repository)
key hashes to shard I of N and writes the result as a *part*: an inventory snapshot (one
parquet file, :mod:`hygiene.inventory`) with the shard's number, the run id and the
(account, region) pairs it read in its metadata. ``hygiene merge`` (or ``hygiene run
nightly --parts``) reads the parts of one run, checks that every shard 0…N-1 arrived and
agrees on N and on the accounts, and concatenates them into the run's inventory, which is
then evaluated once, as if one process had read everything.

Which shard reads a repository: Jump consistent hash (Lamping and Veach, 2014) of the
first 8 bytes of SHA-256 over ``account/region/repository``. Each repository's shard
depends on its own key only, so adding or deleting repositories never moves another one;
going from N to N+1 shards moves about 1/(N+1) of them (the least any scheme can). SHA-256
and not Python's ``hash()``, which changes with every process.

Parts go to a directory or to S3 (``s3://bucket/prefix``), as
``<location>/<run-id>/part-<I>.parquet``. A part is written whole or not at all (a
temporary name renamed into place on disk; one PutObject on S3), so a merge never reads
a half-written part. A run is complete only when all N parts arrived, each complete
itself; a missing part makes the merged run incomplete for every account, so nothing of
it is applied.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import botocore.exceptions
import jump
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hygiene.errors import CollectError, ConfigError
from hygiene.inventory import (
    IMAGE_DTYPES,
    REPOSITORY_DTYPES,
    Inventory,
    RunInfo,
    ScanError,
    coerce,
    inventory_from_table,
    snapshot_table,
)

SHARD_SPEC = re.compile(r"^(?P<index>\d+)/(?P<count>\d+)$")
MAX_SHARDS = 1000
PART_NAME = re.compile(r"^part-(?P<index>\d+)\.parquet$")
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_META_SHARD = b"hygiene.shard"


# --------------------------------------------------------------------------- shards


def shard_key(account: str, region: str, repository: str) -> int:
    digest = hashlib.sha256(f"{account}/{region}/{repository}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def shard_of(account: str, region: str, repository: str, count: int) -> int:
    """The shard (0 … count-1) that reads this repository."""
    return int(jump.hash(shard_key(account, region, repository), count))


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``I/N`` on the command line, I from 0)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str, option: str = "--shard") -> Shard:
        match = SHARD_SPEC.match(text.strip())
        if match is None:
            raise ConfigError(
                f"{option} {text!r}: expected I/N, the shard number from 0 and the number of "
                "shards (in a Kubernetes Indexed Job: $(JOB_COMPLETION_INDEX)/N)"
            )
        index, count = int(match["index"]), int(match["count"])
        if not 1 <= count <= MAX_SHARDS or not 0 <= index < count:
            raise ConfigError(f"{option} {text!r}: need 0 <= I < N and 1 <= N <= {MAX_SHARDS}")
        return cls(index, count)

    def owns(self, account: str, region: str, repository: str) -> bool:
        return self.count == 1 or shard_of(account, region, repository, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def check_run_id(run_id: str) -> str:
    if not RUN_ID.match(run_id):
        raise ConfigError(
            f"--run-id {run_id!r}: 1-128 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit (it names the folder of the run's parts)"
        )
    return run_id


# --------------------------------------------------------------------------- parts


@dataclass(frozen=True)
class PartMeta:
    """What a part says about itself (its parquet metadata)."""

    run_id: str
    index: int
    count: int
    scopes: tuple[tuple[str, str], ...]  # (account, region) pairs the shard read

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "index": self.index,
            "count": self.count,
            "scopes": [list(s) for s in self.scopes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PartMeta:
        return cls(
            run_id=str(data["run_id"]),
            index=int(data["index"]),
            count=int(data["count"]),
            scopes=tuple((str(a), str(r)) for a, r in data.get("scopes", [])),
        )


def part_bytes(inventory: Inventory, meta: PartMeta) -> bytes:
    """One part: the inventory snapshot with the shard's metadata."""
    table = snapshot_table(inventory)
    metadata = dict(table.schema.metadata or {})
    metadata[_META_SHARD] = json.dumps(meta.to_json()).encode()
    sink = pa.BufferOutputStream()
    pq.write_table(table.replace_schema_metadata(metadata), sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def read_part(data: bytes, where: str) -> tuple[Inventory, PartMeta]:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (OSError, pa.ArrowInvalid) as exc:
        raise ConfigError(f"{where}: not a readable part: {exc}") from exc
    raw = (table.schema.metadata or {}).get(_META_SHARD)
    if raw is None:
        raise ConfigError(f"{where}: a snapshot, not a part of a sharded run (no shard metadata)")
    meta = PartMeta.from_json(json.loads(raw))
    inventory = inventory_from_table(table, source=f"part:{where}", where=where)
    return inventory, meta


@dataclass(frozen=True)
class StoredPart:
    index: int
    where: str  # path or s3:// URL
    modified: datetime


class PartStore(Protocol):
    """Where the parts of sharded runs are kept (a directory, or an S3 prefix)."""

    location: str

    def put(self, run_id: str, index: int, data: bytes) -> str: ...

    def parts(self, run_id: str) -> dict[int, StoredPart]: ...

    def read(self, part: StoredPart) -> bytes: ...

    def runs(self) -> list[str]: ...


class DirectoryParts:
    """``<directory>/<run-id>/part-<I>.parquet`` on a file system (a shared volume)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.location = str(directory)

    def put(self, run_id: str, index: int, data: bytes) -> str:
        folder = self.directory / run_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{index}.parquet"
        temporary = folder / f".part-{index}.parquet.{os.getpid()}.tmp"
        temporary.write_bytes(data)
        os.replace(temporary, path)  # atomic: a reader sees the whole part or none
        return str(path)

    def parts(self, run_id: str) -> dict[int, StoredPart]:
        folder = self.directory / run_id
        found: dict[int, StoredPart] = {}
        if not folder.is_dir():
            return found
        for path in folder.iterdir():
            match = PART_NAME.match(path.name)
            if match:
                modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                found[int(match["index"])] = StoredPart(int(match["index"]), str(path), modified)
        return found

    def read(self, part: StoredPart) -> bytes:
        return Path(part.where).read_bytes()

    def runs(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        folders = (p for p in self.directory.iterdir() if p.is_dir())
        return sorted(p.name for p in folders if RUN_ID.match(p.name))


class S3Parts:
    """``s3://<bucket>/<prefix>/<run-id>/part-<I>.parquet``."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.location = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def put(self, run_id: str, index: int, data: bytes) -> str:
        key = self._key(run_id, f"part-{index}.parquet")
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        return f"s3://{self.bucket}/{key}"

    def _list(self, prefix: str, delimiter: str | None = None) -> list[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            arguments["Delimiter"] = delimiter
        pages = []
        for page in paginator.paginate(**arguments):
            pages.append(page)
        return pages

    def parts(self, run_id: str) -> dict[int, StoredPart]:
        found: dict[int, StoredPart] = {}
        for page in self._list(self._key(run_id) + "/"):
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[-1]
                match = PART_NAME.match(name)
                if match:
                    index = int(match["index"])
                    where = f"s3://{self.bucket}/{item['Key']}"
                    found[index] = StoredPart(index, where, item["LastModified"])
        return found

    def read(self, part: StoredPart) -> bytes:
        key = part.where.removeprefix(f"s3://{self.bucket}/")
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def runs(self) -> list[str]:
        base = self._key() + "/" if self.prefix else ""
        names = []
        for page in self._list(base, "/"):
            for common in page.get("CommonPrefixes", []):
                name = common["Prefix"][len(base) :].strip("/")
                if RUN_ID.match(name):
                    names.append(name)
        return sorted(names)


def part_store(location: str, s3_client: Callable[[], Any]) -> PartStore:
    """A :class:`PartStore` for ``s3://bucket/prefix`` or a directory path."""
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://") :].partition("/")
        if not bucket:
            raise ConfigError(f"--parts {location!r}: no bucket (s3://BUCKET/PREFIX)")
        return S3Parts(s3_client(), bucket, prefix)
    return DirectoryParts(Path(location))


# --------------------------------------------------------------------------- writing


def write_part(
    store: PartStore,
    inventory: Inventory,
    shard: Shard,
    run_id: str,
    scopes: Sequence[tuple[str, str]],
) -> str:
    """Write one shard's inventory as part ``shard.index`` of run ``run_id``."""
    inventory.run.id = run_id
    meta = PartMeta(run_id, shard.index, shard.count, tuple(sorted(set(scopes))))
    try:
        return store.put(run_id, shard.index, part_bytes(inventory, meta))
    except (OSError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise CollectError(f"cannot write part {shard} to {store.location}: {exc}") from exc


# --------------------------------------------------------------------------- merging


@dataclass
class MergedRun:
    """A run's inventory merged from its parts, and what each part contributed."""

    inventory: Inventory
    count: int  # N, the number of shards
    arrived: list[int]
    api_calls_per_part: dict[int, dict[str, int]]


def merge_parts(
    parts: Mapping[int, tuple[Inventory, PartMeta]],
    run_id: str,
    count: int | None = None,
    *,
    now: datetime | None = None,
) -> MergedRun:
    """Concatenate the parts of run ``run_id`` (pure).

    Complete only when parts 0 … N-1 are all here, every one is complete, and they read
    the same (account, region) pairs. Anything else is a :class:`ScanError` on the merged
    run: a missing part or one for another run concerns every account (``account`` None),
    a pair some part did not read concerns that account.
    """
    errors: list[ScanError] = []
    counts = {meta.count for _, meta in parts.values()}
    if count is None:
        count = max(counts) if counts else 0
    if len(counts) > 1:
        errors.append(
            ScanError(
                region="",
                repository=None,
                operation="merge",
                message=f"the parts disagree on the number of shards ({sorted(counts)})",
                account=None,
            )
        )
    usable: dict[int, tuple[Inventory, PartMeta]] = {}
    for index, (inventory, meta) in sorted(parts.items()):
        if meta.run_id != run_id or meta.index != index or meta.count != count:
            errors.append(
                ScanError(
                    region="",
                    repository=None,
                    operation="merge",
                    message=f"part-{index} is shard {meta.index}/{meta.count} of run "
                    f"{meta.run_id}, not of {run_id} with {count} shards: left out",
                    account=None,
                )
            )
            continue
        usable[index] = (inventory, meta)
    missing = [i for i in range(count) if i not in usable]
    if count == 0:
        errors.append(
            ScanError(
                region="",
                repository=None,
                operation="merge",
                message=f"no part of run {run_id} arrived",
                account=None,
            )
        )
    for index in missing:
        if index in parts:
            continue  # already reported as left out
        errors.append(
            ScanError(
                region="",
                repository=None,
                operation="merge",
                message=f"part {index}/{count} of run {run_id} did not arrive",
                account=None,
            )
        )
    all_scopes = sorted({s for _, meta in usable.values() for s in meta.scopes})
    for index, (_, meta) in sorted(usable.items()):
        for account, region in sorted(set(all_scopes) - set(meta.scopes)):
            errors.append(
                ScanError(
                    region=region,
                    repository=None,
                    operation="merge",
                    message=f"shard {index}/{count} did not read this account and region",
                    account=account,
                )
            )
    inventories = [inv for inv, _ in (usable[i] for i in sorted(usable))]
    images = [inv.images for inv in inventories]
    repositories = [inv.repositories for inv in inventories]
    started = min((inv.run.started_at for inv in inventories), default=now or datetime.now(UTC))
    run = RunInfo(id=run_id, started_at=started, source=f"parts:{run_id}")
    finished = [inv.run.finished_at for inv in inventories if inv.run.finished_at is not None]
    run.finished_at = max(finished) if finished and not missing else None
    for inv in inventories:
        run.errors.extend(inv.run.errors)
        for operation, calls in inv.run.api_calls.items():
            run.api_calls[operation] = run.api_calls.get(operation, 0) + calls
        run.skipped_accounts.update(inv.run.skipped_accounts)
    run.errors.extend(errors)
    run.scopes = list(all_scopes)
    merged = Inventory(
        images=_concat(images, IMAGE_DTYPES),
        repositories=_concat(repositories, REPOSITORY_DTYPES),
        run=run,
    )
    return MergedRun(
        inventory=merged,
        count=count,
        arrived=sorted(usable),
        api_calls_per_part={i: dict(usable[i][0].run.api_calls) for i in sorted(usable)},
    )


def _concat(frames: list[pd.DataFrame], dtypes: Mapping[str, Any]) -> pd.DataFrame:
    if not frames:
        return coerce(pd.DataFrame(columns=list(dtypes)), dtypes)
    # categories differ from part to part: concatenate as objects, then type once
    plain = [f.astype({c: object for c, t in dtypes.items() if t == "category"}) for f in frames]
    return coerce(pd.concat(plain, ignore_index=True), dtypes)


def latest_run(store: PartStore, *, max_age: timedelta, now: datetime) -> str | None:
    """The run whose first part arrived last, if that was at most ``max_age`` ago."""
    best: tuple[datetime, str] | None = None
    for run_id in store.runs():
        parts = store.parts(run_id)
        if not parts:
            continue
        first = min(p.modified for p in parts.values())
        if now - first <= max_age and (best is None or first > best[0]):
            best = (first, run_id)
    return None if best is None else best[1]


def gather(
    store: PartStore,
    run_id: str | None,
    *,
    wait: timedelta = timedelta(0),
    max_age: timedelta = timedelta(hours=12),
    poll_seconds: float = 30.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
    stop: Any = None,
) -> MergedRun:
    """Wait up to ``wait`` for every part of ``run_id`` (or of the latest run), then merge.

    Returns whatever arrived by then, merged; missing parts make it incomplete.
    """
    try:
        return _gather(store, run_id, wait, max_age, poll_seconds, clock, sleep, stop)
    except (OSError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise CollectError(f"cannot read the parts in {store.location}: {exc}") from exc


def _gather(
    store: PartStore,
    run_id: str | None,
    wait: timedelta,
    max_age: timedelta,
    poll_seconds: float,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
    stop: Any,
) -> MergedRun:
    deadline = clock() + wait
    cache: dict[StoredPart, tuple[Inventory, PartMeta]] = {}  # each part is read once
    while True:
        chosen_now = run_id or latest_run(store, max_age=max_age, now=clock())
        parts = store.parts(chosen_now) if chosen_now else {}
        loaded: dict[int, tuple[Inventory, PartMeta]] = {}
        for index, part in sorted(parts.items()):
            if part not in cache:
                cache[part] = read_part(store.read(part), part.where)
            loaded[index] = cache[part]
        counts = {meta.count for _, meta in loaded.values()}
        done = bool(loaded) and len(counts) == 1 and len(loaded) >= next(iter(counts))
        if done or clock() >= deadline or (stop is not None and stop.is_set()):
            if chosen_now is None:
                raise CollectError(
                    f"no sharded run in {store.location} started in the last {max_age} "
                    "(nothing to merge)"
                )
            return merge_parts(loaded, chosen_now, now=clock())
        sleep(poll_seconds)
