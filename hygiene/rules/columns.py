"""Vectorised helpers over the inventory's columns (numpy and pyarrow, no Python loops
per row): timestamps, string columns, glob matching."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hygiene.findingtable import iso_strings


def utc_ns(values: pd.Series) -> np.ndarray:
    """Aware UTC timestamps → naive ``datetime64[ns]`` (UTC) without a Python loop."""
    return values.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")


def glob_to_regex(patterns: Iterable[str]) -> str:
    """fnmatch-style globs (``*``, ``?``) → one anchored RE2-compatible regex."""
    parts = []
    for pattern in patterns:
        out = []
        for char in pattern:
            if char == "*":
                out.append(".*")
            elif char == "?":
                out.append(".")
            else:
                out.append(re.escape(char))
        parts.append("".join(out))
    if not parts:
        return r"^\b\B$"  # matches nothing
    return "^(?:" + "|".join(parts) + ")$"


def match_globs(values: pd.Series | pa.Array, patterns: Sequence[str]) -> np.ndarray:
    """Boolean mask: which values match any of the glob patterns (pyarrow RE2, fast)."""
    array = values if isinstance(values, pa.Array) else pa.array(values, type=pa.string())
    if len(array) == 0 or not patterns:
        return np.zeros(len(array), dtype=bool)
    mask = pc.match_substring_regex(array, glob_to_regex(patterns))
    return np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def arrow_strings(values: pd.Series) -> pa.Array:
    """A string column as one pyarrow string array (zero-copy when pyarrow-backed)."""
    array = pa.array(values.array, type=pa.string()) if len(values) else pa.array([], pa.string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array


def pylist(values: pd.Series) -> list[Any]:
    """A column as a list of Python objects, without pandas' per-element iteration of
    pyarrow-backed strings (categoricals convert fast on their own)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.tolist()
    return values.to_numpy(dtype=object, na_value=None).tolist()


def stable_lexsort(keys: Sequence[np.ndarray]) -> np.ndarray:
    """``np.lexsort(keys)`` (last key first, ties in input order) as one stable argsort
    per key, from the first: a key whose values fit in 16 bits (rule indexes,
    repository ids up to 65,535) takes numpy's radix sort, linear in the rows, where
    lexsort merge-sorts every key."""
    order: np.ndarray | None = None
    for key in keys:
        values = key if order is None else key[order]
        if (
            values.dtype.kind in "iu"
            and len(values)
            and int(values.min()) >= 0
            and int(values.max()) <= np.iinfo(np.uint16).max
        ):
            values = values.astype(np.uint16)
        step = np.argsort(values, kind="stable")
        order = step if order is None else order[step]
    if order is None:
        raise ValueError("no keys to sort by")
    return order


def day_strings(values: np.ndarray) -> list[str]:
    """``np.datetime_as_string(values, unit="D").tolist()`` of ``datetime64[ns]`` values
    (``"2026-11-28"``, ``"NaT"``): each day written once, then looked up (pushes and pulls
    span a few hundred days; numpy wrote 460k dates one by one at a million images)."""
    days = values.astype("datetime64[D]").view(np.int64)
    missing = np.isnat(values)
    present = days[~missing]
    if not len(present) or int(present.max()) - int(present.min()) > len(values):
        return np.datetime_as_string(values, unit="D").tolist()
    low, high = int(present.min()), int(present.max())
    table = np.empty(high - low + 2, dtype=object)
    table[:-1] = np.datetime_as_string(np.arange(low, high + 1).astype("datetime64[D]"), unit="D")
    table[-1] = "NaT"
    return table[np.where(missing, high - low + 1, days - low)].tolist()


def group_ids(frame: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """``frame.groupby(keys, observed=True, sort=False, dropna=False).ngroup()`` as int64:
    each combination of the keys numbered in order of first appearance, a missing value
    a value of its own. For categorical keys, from their codes (one int64 per row
    and one hash of them) instead of pandas' grouper; other keys go to pandas."""
    columns = [frame[key] for key in keys]
    sizes = [len(c.cat.categories) + 1 for c in columns if isinstance(c.dtype, pd.CategoricalDtype)]
    if len(sizes) < len(keys) or float(np.prod(sizes, dtype=np.float64)) >= 2.0**62:
        grouped = frame.groupby(keys, observed=True, sort=False, dropna=False)
        return grouped.ngroup().to_numpy(dtype=np.int64)
    combined = np.zeros(len(frame), dtype=np.int64)
    for column, size in zip(columns, sizes, strict=True):
        combined *= size
        combined += column.cat.codes.to_numpy().astype(np.int64) + 1  # missing: -1 → 0
    codes, _ = pd.factorize(combined)
    return np.asarray(codes, dtype=np.int64)


def string_codes(array: pa.Array) -> np.ndarray:
    """``pc.dictionary_encode(array).indices`` as int64: equal strings, equal codes,
    numbered in order of first appearance (nulls are not allowed).

    Image digests (``sha256:`` and 64 hex digits, 1.3 million of them at a million
    images) take a shorter way when every string has the same length: a 64-bit key from
    each string's last 16 bytes, numbered by pandas' integer hash table, then every
    string compared byte for byte with one string of its number. Only if two
    different strings shared a key (then the check fails) does Arrow encode the strings
    themselves, as for any other array. 0.10 s instead of 0.34."""
    codes = _fixed_width_codes(array)
    if codes is None:
        codes = pc.dictionary_encode(array).indices.to_numpy(zero_copy_only=False)
    return np.asarray(codes, dtype=np.int64)


def _fixed_width_codes(array: pa.Array) -> np.ndarray | None:
    """:func:`string_codes` for strings of one length (at least 16 bytes), or None."""
    offset_type = {pa.string(): np.int32, pa.large_string(): np.int64}.get(array.type)
    count = len(array)
    if offset_type is None or not count or array.null_count:
        return None
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offset_type)[array.offset : array.offset + count + 1]
    width = int(offsets[1] - offsets[0])
    if width < 16 or not bool(np.all(np.diff(offsets) == width)):
        return None
    data = np.frombuffer(buffers[2], dtype=np.uint8)[int(offsets[0]) : int(offsets[-1])]
    strings = data.reshape(count, width)
    words = np.ascontiguousarray(strings[:, width - 16 :]).view("<u8")
    keys = words[:, 0] * np.uint64(0x9E3779B97F4A7C15) ^ words[:, 1]
    codes, uniques = pd.factorize(keys)
    first = np.empty(len(uniques), dtype=np.int64)
    first[codes] = np.arange(count)  # one string of each code (any one will do)
    same = first[codes]
    for start in range(0, count, 65_536):
        stop = start + 65_536
        if not np.array_equal(strings[start:stop], strings[same[start:stop]]):
            return None  # two strings share a key: encode the strings
    return np.asarray(codes, dtype=np.int64)


def unique_rows(rows: np.ndarray, size: int) -> np.ndarray:
    """``np.unique(rows)`` for row positions (integers in ``[0, size)``): sorted, each
    once, as int64. A mask over the rows instead of numpy's hash table, which took
    0.4 s for the 900k rows of the image findings at a million images."""
    if len(rows) and int(rows.min()) < 0:
        raise ValueError("a negative row position")
    seen = np.zeros(size, dtype=bool)
    seen[rows] = True
    return np.flatnonzero(seen).astype(np.int64, copy=False)


def rows_list(values: pd.Series, rows: np.ndarray) -> list[Any]:
    """``pylist(values.iloc[rows])``: a categorical column's values looked up by code
    (:func:`_category_list`; NaN for a missing value, as pandas gives), any other column
    through pandas."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return _category_list(values, rows, np.nan)
    return pylist(values.iloc[rows])


def rows_list_or_none(values: pd.Series, rows: np.ndarray) -> list[Any]:
    """The values of ``values.iloc[rows]`` as objects, None for a missing value (a
    categorical column looked up by code, any other through pandas)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return _category_list(values, rows, None)
    taken = values.iloc[rows]
    return taken.astype(object).where(taken.notna(), None).tolist()


def _category_list(values: pd.Series, rows: np.ndarray, missing: Any) -> list[Any]:
    """Values of categorical column ``values`` at positions ``rows``: each category's
    Python object (one per category, shared by every row that has it), ``missing`` where
    the value is missing. ``Series.tolist()`` makes a new string for every row (900k of
    each column at a million images)."""
    categorical = values.array
    assert isinstance(categorical, pd.Categorical)
    lookup = np.empty(len(categorical.categories) + 1, dtype=object)
    for position, category in enumerate(categorical.categories.tolist()):
        lookup[position] = category
    lookup[-1] = missing  # code -1
    return lookup[categorical.codes[rows]].tolist()


def utc_iso_strings(values: pd.Series) -> list[str | None]:
    """ISO 8601 UTC strings (``2026-11-28T03:00:00Z``), None for NaT
    (:func:`hygiene.findingtable.iso_strings` of the column's nanoseconds)."""
    return iso_strings(utc_ns(values).view(np.int64))
