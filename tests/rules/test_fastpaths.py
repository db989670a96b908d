"""The rules engine's fast paths give exactly what the obvious code gives.

Each helper that replaced a slower numpy or pandas call in the engine (round 8 of issue
14: docs/benchmarks.md, "Round 8: rules") is checked here against the straightforward
version on generated data: repeated values, missing values, ties, empty inputs.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hygiene.rules.columns import (
    day_strings,
    group_ids,
    pylist,
    rows_list,
    rows_list_or_none,
    stable_lexsort,
    string_codes,
    unique_rows,
)
from hygiene.rules.findings import also_of, also_of_each
from hygiene.rules.kept import KeptImages
from hygiene.rules.protections import rank_newest
from hygiene.rules.units import Units, _runs
from tests.conftest import examples

CODES = ["IM001", "IM002", "IM003", "IM004"]


def _rank_newest_reference(group: np.ndarray, when: np.ndarray) -> np.ndarray:
    """rank_newest as the engine had it: one lexsort with the input order as last key."""
    if not len(group):
        return np.zeros(0, dtype=np.int64)
    key = when.astype("datetime64[ns]").astype(np.int64)
    key = -np.maximum(key, np.iinfo(np.int64).min + 1)
    order = np.lexsort((np.arange(len(group)), key, group))
    ordered = group[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    position = np.arange(len(order))
    first = np.maximum.accumulate(np.where(starts, position, 0))
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = position - first + 1
    return ranks


def _also_reference(rows: list[int], rules: list[int]) -> list[list[str] | None]:
    """What ``details["also"]`` says: every rule that hit the row (by rule, as often as it
    hit it), without the hit's own rule; None for a row hit once."""
    hit_by: dict[int, list[int]] = defaultdict(list)
    for row, rule in zip(rows, rules, strict=True):
        hit_by[row].append(rule)
    out: list[list[str] | None] = []
    for row, rule in zip(rows, rules, strict=True):
        if len(hit_by[row]) < 2:
            out.append(None)
        else:
            out.append([CODES[r] for r in sorted(hit_by[row]) if r != rule])
    return out


hits = st.lists(st.tuples(st.integers(0, 40), st.integers(0, len(CODES) - 1)), max_size=120).map(
    lambda pairs: ([row for row, _ in pairs], [rule for _, rule in pairs])
)


@settings(max_examples=examples(300), deadline=None)
@given(hits, st.booleans())
def test_also_matches_the_plain_grouping(data: tuple[list[int], list[int]], once: bool) -> None:
    rows, rules = data
    if once:  # as the engine gives them: each rule hits a row at most once
        pairs = list(dict.fromkeys(zip(rows, rules, strict=True)))
        rows, rules = [r for r, _ in pairs], [u for _, u in pairs]
    expected = _also_reference(rows, rules)
    row_array, rule_array = np.array(rows, dtype=np.int64), np.array(rules, dtype=np.int64)
    fast = also_of(row_array, rule_array, CODES)
    assert fast == expected
    assert also_of_each(row_array, rule_array, CODES) == expected
    # each hit its own list (a reader that changed one would change no other)
    lists = [value for value in fast if value is not None]
    assert len({id(value) for value in lists}) == len(lists)


def test_also_names_the_other_rules_in_rule_order() -> None:
    rows = np.array([5, 9, 5, 5, 7], dtype=np.int64)
    rules = np.array([2, 0, 0, 1, 3], dtype=np.int64)
    assert also_of(rows, rules, CODES) == [
        ["IM001", "IM002"],
        None,
        ["IM002", "IM003"],
        ["IM001", "IM003"],
        None,
    ]


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(st.integers(0, 70_000), max_size=60),
    st.lists(
        st.one_of(st.none(), st.integers(-(2**62), 2**62)),
        min_size=60,
        max_size=60,
    ),
    st.sampled_from([3, 70_000]),
    st.sampled_from([7, 2**62]),
)
def test_rank_newest_matches_one_lexsort(
    groups: list[int], times: list[int | None], modulo: int, spread: int
) -> None:
    # small group ids take the radix sort, large ones (past 65,535) the general one;
    # few distinct times give ties, None is NaT
    group = np.array([g % modulo for g in groups], dtype=np.int64)
    values = [np.datetime64("NaT") if t is None else np.datetime64(t % spread, "ns") for t in times]
    when = np.array(values[: len(group)], dtype="datetime64[ns]")
    assert rank_newest(group, when).tolist() == _rank_newest_reference(group, when).tolist()


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.integers(0, 50), max_size=80), st.integers(0, 30))
def test_unique_rows_is_numpys_unique(rows: list[int], extra: int) -> None:
    array = np.array(rows, dtype=np.int64)
    size = (max(rows) + 1 if rows else 0) + extra
    out = unique_rows(array, size)
    assert out.dtype == np.int64
    assert out.tolist() == np.unique(array).tolist()


def test_unique_rows_refuses_negative_rows() -> None:
    with pytest.raises(ValueError, match="negative"):
        unique_rows(np.array([3, -1], dtype=np.int64), 5)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.integers(0, 12), max_size=60), st.booleans())
def test_runs_are_numpys_unique(values: list[int], sort: bool) -> None:
    array = np.array(sorted(values) if sort else values, dtype=np.int64)
    unique, starts, counts = _runs(array)
    expected = np.unique(array, return_index=True, return_counts=True)
    for got, want in zip((unique, starts, counts), expected, strict=True):
        assert got.tolist() == want.tolist()


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 99), min_size=1, max_size=4), max_size=12),
    st.data(),
)
def test_gather_takes_each_rows_unit(units: list[list[int]], data: Any) -> None:
    roots = sorted({unit[0] for unit in units})
    members_of = {root: [root] for root in roots}
    for unit in units:
        members_of[unit[0]] += [m + 100 for m in unit[1:]]  # dependents: rows past 99
    flat_roots = [root for root in roots for _ in members_of[root]]
    flat = [member for root in roots for member in members_of[root]]
    built = Units.build(
        np.array(flat_roots, dtype=np.int64),
        np.array(flat, dtype=np.int64),
        np.array([f"d{m}" for m in flat], dtype=object),
        np.array([m * 10 for m in flat], dtype=np.int64),
    )
    rows = data.draw(st.lists(st.sampled_from(roots), max_size=20)) if roots else []
    offsets, member_rows, digests, sizes = built.gather(np.array(rows, dtype=np.int64))
    expected = [members_of[row] for row in rows]
    assert offsets.tolist() == [0, *np.cumsum([len(m) for m in expected]).tolist()]
    assert member_rows.tolist() == [m for unit in expected for m in unit]
    assert digests.tolist() == [f"d{m}" for unit in expected for m in unit]
    assert sizes.tolist() == [sum(m * 10 for m in unit) for unit in expected]
    absent = [r for r in range(101) if r not in members_of]
    if absent:
        with pytest.raises(AssertionError, match="without a deletion unit"):
            built.gather(np.array([*rows, data.draw(st.sampled_from(absent))], dtype=np.int64))


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.sampled_from(["a", "bb", "suporte", "ml/x"])), max_size=40),
    st.sampled_from(["category", "str", "object"]),
    st.data(),
)
def test_rows_lists_are_the_columns_values(values: list[str | None], dtype: str, data: Any) -> None:
    # categorical (the inventory's own) and not (an inventory pieced together by concat)
    column = pd.Series(values, dtype=dtype)
    positions = data.draw(st.lists(st.integers(0, len(values) - 1), max_size=30)) if values else []
    rows = np.array(positions, dtype=np.int64)
    # account, region, repository: what pylist gave (NaN for a missing categorical value)
    plain = rows_list(column, rows)
    expected = pylist(column.iloc[rows])
    assert len(plain) == len(expected)
    for got, want in zip(plain, expected, strict=True):
        assert type(got) is type(want)
        assert (got == want) if isinstance(want, str) else (pd.isna(got) and pd.isna(want))
    # namespace: None for a missing value
    spaces = column.iloc[rows]
    expected_spaces = spaces.astype(object).where(spaces.notna(), None).tolist()
    assert rows_list_or_none(column, rows) == expected_spaces


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-5, 5)),
            st.integers(0, 3),
            st.integers(-3, 70_000),
        ),
        max_size=60,
    ),
    st.booleans(),
)
def test_stable_lexsort_is_numpys_lexsort(
    rows: list[tuple[int | None, int, int]], wide: bool
) -> None:
    # times with NaT (sorted last), small ints (the radix sort), ints past 16 bits or
    # negative (the general one); few distinct values give ties, kept in input order
    when = np.array(
        [np.datetime64("NaT") if t is None else np.datetime64(t, "D") for t, _, _ in rows],
        dtype="datetime64[ns]",
    )
    small = np.array([s for _, s, _ in rows], dtype=np.int64)
    other = np.array([w if wide else w % 4 for _, _, w in rows], dtype=np.int64)
    keys = (when, other, small)
    assert stable_lexsort(keys).tolist() == np.lexsort(keys).tolist()
    assert stable_lexsort((small,)).tolist() == np.lexsort((small,)).tolist()


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.integers(-(10**18), 10**18), st.integers(-(10**14), 10**14)),
        max_size=40,
    )
)
def test_day_strings_are_numpys(times: list[int | None]) -> None:
    # before and after 1970 (days are floored), within a day of midnight, NaT, far apart
    values = np.array(
        [np.datetime64("NaT") if t is None else np.datetime64(t, "ns") for t in times],
        dtype="datetime64[ns]",
    )
    expected = np.datetime_as_string(values, unit="D").tolist()
    got = day_strings(values)
    assert got == expected
    assert all(type(text) is str for text in got)


def test_day_strings_of_nearby_days_share_the_table() -> None:
    values = np.array(["2026-11-28T03:00", "2026-11-27T23:59", "NaT", "2026-11-28"], "M8[ns]")
    assert day_strings(values) == ["2026-11-28", "2026-11-27", "NaT", "2026-11-28"]


@settings(max_examples=examples(200), deadline=None)
@given(
    st.dictionaries(st.integers(0, 60), st.lists(st.sampled_from(["a", "b", "c"])), max_size=20),
    st.lists(st.integers(0, 80), max_size=40),
)
def test_discard_forgets_exactly_the_rows_given(
    reasons: dict[int, list[str]], rows: list[int]
) -> None:
    kept = KeptImages()
    for row, why in reasons.items():
        kept.add(row, why)
    expected = {row: list(dict.fromkeys(why)) for row, why in kept._reasons.items()}
    kept.discard(np.array(rows, dtype=np.int64))
    gone = set(rows)
    assert list(kept._reasons.items()) == [
        (row, why) for row, why in expected.items() if row not in gone
    ]


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["111", "222", None]),
            st.sampled_from(["us-east-1", "sa-east-1"]),
            st.sampled_from(["a", "b/c", "d", None]),
        ),
        max_size=40,
    ),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_group_ids_are_pandas_ngroup(
    rows: list[tuple[Any, ...]], categorical: bool, unused: bool, backwards: bool
) -> None:
    # missing values, an unused category or none, categories in another order than the
    # rows (sorted, or backwards)
    columns = {
        key: [row[i] for row in rows] for i, key in enumerate(("account", "region", "repository"))
    }

    def categories(values: list[Any]) -> list[str]:
        named = sorted({*filter(None, values), *(["zz"] if unused else [])})
        return named[::-1] if backwards else named

    frame = pd.DataFrame(
        {
            key: pd.Categorical(values, categories=categories(values))
            if categorical
            else pd.Series(values, dtype=object)
            for key, values in columns.items()
        }
    )
    keys = ["account", "region", "repository"]
    expected = frame.groupby(keys, observed=True, sort=False, dropna=False).ngroup()
    got = group_ids(frame, keys)
    assert got.dtype == np.int64
    assert got.tolist() == expected.tolist()


DIGESTS = [f"sha256:{i:064x}" for i in (0, 1, 2**64, 2**200 + 5, 7 * 2**128)]
# the same last 16 characters as DIGESTS[0], the same key: only the full compare tells
TWIN = "sha256:" + "f" * 48 + "0" * 16


@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(st.sampled_from([*DIGESTS, TWIN]), max_size=50),
    st.sampled_from(["string", "large_string"]),
    st.integers(0, 3),
)
def test_string_codes_are_arrows_dictionary_codes(values: list[str], kind: str, skip: int) -> None:
    array = pa.array(["x" * 71] * skip + values, type=getattr(pa, kind)())[skip:]  # sliced
    got = string_codes(array)
    assert got.dtype == np.int64
    assert got.tolist() == pc.dictionary_encode(array).indices.to_pylist()


@pytest.mark.parametrize(
    "values",
    [
        [DIGESTS[0], TWIN, DIGESTS[0], TWIN],  # two strings, one key
        [DIGESTS[1], "sha256:abc", DIGESTS[1]],  # lengths differ
        ["short", "short", "other"],  # shorter than 16 bytes
        [DIGESTS[2], None, DIGESTS[2]],  # a null
    ],
)
def test_string_codes_of_strings_the_key_cannot_tell_apart(values: list[str | None]) -> None:
    array = pa.array(values, type=pa.string())
    # what derive had: Arrow's codes as int64 (a null code as whatever numpy makes of NaN)
    with np.errstate(invalid="ignore"):
        indices = pc.dictionary_encode(array).indices.to_numpy(zero_copy_only=False)
        expected = indices.astype(np.int64).tolist()
        assert string_codes(array).tolist() == expected


def test_string_codes_of_a_null_that_holds_bytes() -> None:
    # a null slot need not be empty: one built over a digest's bytes is still a null
    full = pa.array([DIGESTS[0], DIGESTS[1], DIGESTS[0]], type=pa.string())
    _, offsets, data = full.buffers()
    validity = pa.array([True, False, True]).buffers()[1]
    array = pa.Array.from_buffers(pa.string(), 3, [validity, offsets, data], null_count=1)
    with np.errstate(invalid="ignore"):
        indices = pc.dictionary_encode(array).indices.to_numpy(zero_copy_only=False)
        assert string_codes(array).tolist() == indices.astype(np.int64).tolist()
