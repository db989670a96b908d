"""What every planner reads: the inventory indexed once (:class:`Scope`), the evidence
entry of an image, where a proposal is, and the fix safety a rule declares.

Split from :mod:`hygiene.plan` so that the plan module holds the proposers alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hygiene.config import Config
from hygiene.fixsafety import code_safety
from hygiene.inventory import Inventory, cell_text
from hygiene.model import Finding, FixSafety, iso_utc
from hygiene.timetext import offset_texts


def repo_where(repo_key: tuple[str, str, str]) -> dict[str, Any]:
    """Account, region and repository go into every id: replicated registries hold the
    same digests in several regions, and each deletion there is a separate proposal."""
    account, region, repository = repo_key
    return {"account": account, "region": region, "repository": repository}


def finding_safety(finding: Finding) -> FixSafety:
    """The fix safety the rule declares (a finding of an unknown code: unsafe;
    :func:`hygiene.fixsafety.code_safety`)."""
    return code_safety(finding.code)


class Repositories:
    """The repositories frame by (account, region, name): each row as a dict when asked
    (a plan reads few), the last one when a key is there twice (as a dict built from
    every row would hold)."""

    def __init__(self, inventory: Inventory) -> None:
        frame = inventory.repositories
        self.frame = frame
        keys = zip(
            frame["account"].astype(str),
            frame["region"].astype(str),
            frame["name"].astype(str),
            strict=True,
        )
        self.rows = {key: position for position, key in enumerate(keys)}
        errors = frame["scan_error"].astype(object).tolist()
        self.broken = {key for key, p in self.rows.items() if cell_text(errors[p]) is not None}
        self._columns: dict[str, list[Any]] | None = None

    def get(self, key: tuple[str, str, str]) -> dict[str, Any] | None:
        position = self.rows.get(key)
        if position is None:
            return None
        if self._columns is None:
            self._columns = {c: self.frame[c].tolist() for c in self.frame.columns}
        return {column: values[position] for column, values in self._columns.items()}


@dataclass
class Scope:
    """What every proposer may read: the inventory (indexed once, when first needed)."""

    inventory: Inventory
    config: Config
    now: datetime

    @cached_property
    def images(self) -> dict[tuple[str, str, str, str], dict[str, Any]]:
        """(account, region, repository, digest) → the image's evidence entry."""
        index: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for row in self.inventory.images[EVIDENCE_COLUMNS].itertuples(index=False):
            key = (str(row.account), str(row.region), str(row.repository), str(row.digest))
            index[key] = evidence_entry(row)
        return index

    @cached_property
    def repositories(self) -> Repositories:
        return Repositories(self.inventory)

    @cached_property
    def _rows_by_repository(self) -> dict[tuple[str, str, str], np.ndarray]:
        """(account, region, repository) → the positions of its images' rows."""
        images = self.inventory.images
        if images.empty:
            return {}
        groups = images.groupby(
            ["account", "region", "repository"], observed=True, sort=False, dropna=False
        ).indices
        return {(str(a), str(r), str(name)): rows for (a, r, name), rows in groups.items()}

    def images_of(self, key: tuple[str, str, str]) -> list[dict[str, Any]]:
        """Evidence entries of every image of one repository, by digest (the entries of
        :attr:`images`, made for this repository's rows alone: a few abandoned
        repositories need not index a million-image registry)."""
        return self.images_of_many([key])[key]

    def images_of_many(
        self, keys: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
        """:meth:`images_of` of each repository of ``keys``, the entries of all of them
        made in one :func:`evidence_entries` (not a few hundred calls of it)."""
        keys = list(dict.fromkeys(keys))
        images = self.inventory.images
        groups = self._rows_by_repository
        if not columnar_entries(images):
            return {key: self._objects_of(groups.get(key)) for key in keys}
        row_lists = [np.sort(groups.get(key, _NO_ROWS)) for key in keys]
        every = np.concatenate([_NO_ROWS, *row_lists])
        digest_of = images["digest"].iloc[every].tolist()
        rows: list[int] = []
        digests: list[str] = []
        counts = []
        start = 0
        for key_rows in row_lists:
            stop = start + len(key_rows)
            # a digest twice: its last row's entry (as the index of every image keeps)
            last = {
                str(d): r for d, r in zip(digest_of[start:stop], key_rows.tolist(), strict=True)
            }
            start = stop
            ordered = sorted(last)
            digests += ordered
            rows += [last[d] for d in ordered]
            counts.append(len(ordered))
        entries = evidence_entries(images, np.array(rows, dtype=np.int64), digests)
        bounds = np.cumsum([0, *counts]).tolist()
        return {key: entries[bounds[k] : bounds[k + 1]] for k, key in enumerate(keys)}

    def _objects_of(self, rows: np.ndarray | None) -> list[dict[str, Any]]:
        """The entries of ``rows`` made one by one (times that are not a time-zone column)."""
        if rows is None:
            return []
        entries: dict[str, dict[str, Any]] = {}
        frame = self.inventory.images[EVIDENCE_COLUMNS].iloc[np.sort(rows)]
        for row in frame.itertuples(index=False):
            entries[str(row.digest)] = evidence_entry(row)
        return sorted(entries.values(), key=lambda info: info["digest"])


_NO_ROWS = np.empty(0, dtype=np.int64)


EVIDENCE_COLUMNS = ["account", "region", "repository", "digest", "tags", "pushed_at"]
EVIDENCE_COLUMNS += ["last_pull", "size_bytes", "storage_bytes", "manifest_media_type", "is_index"]


def evidence_entry(row: Any) -> dict[str, Any]:
    """An image's entry in a proposal's evidence (a row of the inventory's images)."""
    return {
        "digest": str(row.digest),
        "tags": sorted(str(t) for t in row.tags),
        "pushed_at": iso_utc(row.pushed_at),
        "last_pull": iso_utc(row.last_pull),
        "bytes": int(row.storage_bytes),
        "size_bytes": int(row.size_bytes),
        "media_type": None if pd.isna(row.manifest_media_type) else str(row.manifest_media_type),
        "is_index": bool(row.is_index),
    }


def columnar_entries(images: pd.DataFrame) -> bool:
    """Whether :func:`evidence_entries` reads these columns (times with a time zone)."""
    return all(isinstance(images[c].dtype, pd.DatetimeTZDtype) for c in ("pushed_at", "last_pull"))


def evidence_entries(
    images: pd.DataFrame, rows: np.ndarray, digests: list[str]
) -> list[dict[str, Any]]:
    """:func:`evidence_entry` of each of the image ``rows`` (positions in ``images``, whose
    digests are ``digests``), read from the columns (times with a time zone:
    :func:`columnar_entries`).

    The tags are read in the frame's order (:func:`sorted_tag_lists`)."""
    rows = np.asarray(rows, dtype=np.int64)
    tags_of = sorted_tag_lists(images["tags"].to_numpy(), rows)
    media = images["manifest_media_type"]
    if isinstance(media.dtype, pd.CategoricalDtype):
        names = np.empty(len(media.cat.categories) + 1, dtype=object)
        names[:] = [str(c) for c in media.cat.categories] + [None]
        media_of = names[media.cat.codes.to_numpy()[rows]].tolist()  # code -1 (missing): None
    else:
        media_of = [None if pd.isna(k) else str(k) for k in media.to_numpy(dtype=object)[rows]]
    return [
        {
            "digest": digest,
            "tags": tags,
            "pushed_at": pushed,
            "last_pull": pulled,
            "bytes": stored,
            "size_bytes": size,
            "media_type": kind,
            "is_index": index,
        }
        for digest, tags, pushed, pulled, stored, size, kind, index in zip(
            digests,
            tags_of,
            offset_texts(ns_ints(images["pushed_at"].iloc[rows])),
            offset_texts(ns_ints(images["last_pull"].iloc[rows])),
            images["storage_bytes"].to_numpy(dtype=np.int64)[rows].tolist(),
            images["size_bytes"].to_numpy(dtype=np.int64)[rows].tolist(),
            media_of,
            images["is_index"].to_numpy(dtype=bool)[rows].tolist(),
            strict=True,
        )
    ]


def sorted_tag_lists(tag_column: np.ndarray, rows: np.ndarray) -> list[list[str]]:
    """``sorted(str(t) for t in tags)`` of the tags of each of ``rows`` (positions in
    ``tag_column``): new lists, of new strings when every tag is a ``str``.

    Reading a million rows' lists in ``rows`` order (an evidence's, by repository then
    digest) walks memory at random: a cache miss on every list and every tag, several
    times slower than in the frame's order. So the lists are read in the frame's order,
    into Arrow, sorted there (bytes of UTF-8 sort as Python sorts code points), taken in
    ``rows`` order, and made Python strings in that order: each entry's strings sit next
    to the one before, as whatever encodes the evidence later reads them."""
    by_frame = np.argsort(rows, kind="stable")
    in_frame_order = tag_column[rows[by_frame]].tolist()
    if set(map(type, in_frame_order)) <= {list, tuple, np.ndarray} and set(
        map(type, itertools.chain.from_iterable(in_frame_order))
    ) <= {str}:
        try:
            lists = pa.array(in_frame_order, type=pa.list_(pa.large_string()))
        except (UnicodeEncodeError, pa.ArrowException):  # a lone surrogate
            lists = None
        if isinstance(lists, pa.ChunkedArray):
            lists = lists.combine_chunks()
        if lists is not None:
            return _sorted_lists(lists, by_frame)
    return [sorted(map(str, tags)) for tags in tag_column[rows].tolist()]


def _sorted_lists(lists: Any, by_frame: np.ndarray) -> list[list[str]]:
    """The Arrow ``lists`` (position k: the row ``by_frame[k]`` of the result) each sorted,
    as Python lists in the result's order."""
    values = lists.flatten()
    owner = pc.list_parent_indices(lists)
    within = pc.sort_indices(
        pa.table({"owner": owner, "value": values}),
        sort_keys=[("owner", "ascending"), ("value", "ascending")],
    )
    ordered = pa.ListArray.from_arrays(lists.offsets, values.take(within))
    position = np.empty(len(by_frame), dtype=np.int64)
    position[by_frame] = np.arange(len(by_frame))
    taken = ordered.take(pa.array(position))
    del lists, values, owner, within, ordered, position
    lengths = pc.list_value_length(taken).to_numpy().tolist()  # small numbers: no new ints
    strings = iter(taken.flatten().to_numpy(zero_copy_only=False).tolist())
    del taken
    pa.default_memory_pool().release_unused()  # Arrow's copies go back now, not later
    return [list(itertools.islice(strings, length)) for length in lengths]


def all_text(values: Iterable[Any]) -> bool:
    return all(type(v) is str for v in values)


def by_digest(info: dict[str, Any]) -> str:
    return str(info["digest"])


def ns_ints(values: pd.Series) -> np.ndarray:
    return values.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").view(np.int64)


def arrow_strings(values: pd.Series) -> Any:
    """A string column as one Arrow string array (no per-row pandas)."""
    import pyarrow as pa

    array = pa.array(values.array, type=pa.string()) if len(values) else pa.array([], pa.string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array
