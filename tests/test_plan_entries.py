"""The plan's evidence entries and times made from columns equal the row-by-row ones.

:func:`hygiene.planscope.evidence_entries` (every delete proposal's ``images``) and
:func:`hygiene.timetext.offset_texts` (its times) are checked against
:func:`hygiene.planscope.evidence_entry` and :func:`hygiene.model.iso_utc`, the
obvious code, on generated times and seeded registries with the cases the fast paths
branch on: tags that are not strings or not sorted, missing pull times and media types,
times with and without fractions, rows in any order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.rules import bench_config, synthetic_inventory
from hygiene import timetext
from hygiene.findingtable import NAT
from hygiene.inventory import Inventory
from hygiene.model import iso_utc
from hygiene.planscope import (
    EVIDENCE_COLUMNS,
    Scope,
    columnar_entries,
    evidence_entries,
    evidence_entry,
)
from hygiene.timetext import offset_texts
from tests.builders import NOW
from tests.conftest import examples

LOW, HIGH = np.iinfo(np.int64).min + 1, np.iinfo(np.int64).max
times = st.one_of(
    st.integers(LOW, HIGH),  # nanoseconds
    st.integers(LOW // 1000 + 1, HIGH // 1000).map(lambda v: v * 1000),  # whole microseconds
    st.integers(LOW // 10**9 + 1, HIGH // 10**9).map(lambda v: v * 10**9),  # whole seconds
    st.integers(-(10**5), 10**5).map(lambda v: v * 86_400 * 10**9),  # midnights
    st.just(NAT),
)


def _slow_times(values: np.ndarray) -> list[str | None]:
    stamps = pd.DatetimeIndex(values.view("M8[ns]")).tz_localize("UTC")
    return [iso_utc(t) for t in stamps]


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(times, max_size=60))
def test_offset_texts_are_what_iso_utc_writes(values: list[int]) -> None:
    array = np.array(values, dtype=np.int64)
    assert offset_texts(array) == _slow_times(array)


@pytest.mark.parametrize("chunk", [timetext.CHUNK, 999])
@pytest.mark.parametrize("span", ["days", "centuries"])  # every day between, distinct days
def test_offset_texts_of_many_times_equal_the_joined_strings(
    span: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timetext, "CHUNK", chunk)
    rng = np.random.default_rng(11)
    high = 4 * 10**17 if span == "days" else 9 * 10**18
    values = rng.integers(-high, high, 50_000)
    values[::3] = values[::3] // 10**9 * 10**9
    values[1::5] = values[1::5] // 1000 * 1000
    values[::17] = NAT
    expected = _slow_times(values)
    assert offset_texts(values) == expected
    assert {len(t) for t in expected if t} == {25, 32, 35}  # each kind of fraction
    assert offset_texts(np.full(3, NAT)) == [None, None, None]
    assert offset_texts(np.array([], dtype=np.int64)) == []


def test_clock_table_is_each_second_of_the_day_as_strftime_writes_it() -> None:
    table = timetext._clock()
    assert table.dtype == np.uint8 and table.shape == (86_400, 8)
    texts = table.view("S8").ravel().astype(str).tolist()
    midnight = pd.Timestamp("2026-11-28")
    expected = [(midnight + pd.Timedelta(seconds=s)).strftime("%H:%M:%S") for s in range(86_400)]
    assert texts == expected


def _registry(seed: int, media_as_text: bool = False) -> Inventory:
    """A seeded registry whose images have every case the entries branch on."""
    inventory = synthetic_inventory(3_000, 30, seed=seed)
    images = inventory.images.copy()
    rng = np.random.default_rng(seed)
    n = len(images)
    tags = images["tags"].tolist()
    for row in rng.choice(n, 200, replace=False).tolist():
        tags[row] = ["b", "a", *tags[row], "A"]  # not sorted
    images["tags"] = tags
    fraction = rng.integers(0, 10**9, n)
    fraction[::3] = fraction[::3] // 1000 * 1000
    fraction[::4] = 0
    pushed = images["pushed_at"].dt.floor("s") + pd.to_timedelta(fraction, unit="ns")
    images["pushed_at"] = pushed
    media = images["manifest_media_type"].astype(object)
    media[rng.random(n) < 0.1] = None
    images["manifest_media_type"] = media if media_as_text else media.astype("category")
    assert images["last_pull"].isna().any() and images["manifest_media_type"].isna().any()
    return Inventory(images=images, repositories=inventory.repositories, run=inventory.run)


def _slow_entries(images: pd.DataFrame, rows: np.ndarray) -> list[dict[str, Any]]:
    frame = images[EVIDENCE_COLUMNS].iloc[rows]
    return [evidence_entry(row) for row in frame.itertuples(index=False)]


@pytest.mark.parametrize("media_as_text", [False, True], ids=["category", "text"])
@pytest.mark.parametrize("seed", [1, 2])
def test_evidence_entries_equal_the_entry_of_each_row(seed: int, media_as_text: bool) -> None:
    images = _registry(seed, media_as_text).images
    rng = np.random.default_rng(seed)
    for rows in (rng.permutation(len(images)), rng.choice(len(images), 500, replace=False)):
        digests = images["digest"].iloc[rows].tolist()
        fast = evidence_entries(images, rows, digests)
        slow = _slow_entries(images, rows)
        assert fast == slow
        assert all(list(f) == list(e) for f, e in zip(fast, slow, strict=True))  # key order
        # every list is the entry's own: none is the inventory's, none shared
        lists = [id(e["tags"]) for e in fast]
        assert len(set(lists)) == len(lists)
        assert not set(lists) & {id(t) for t in images["tags"]}


def test_evidence_entries_of_tags_that_are_not_text() -> None:
    images = _registry(3).images
    tags = images["tags"].tolist()
    tags[5] = [3, "x", "10"]
    images["tags"] = tags
    rows = np.arange(len(images))[::-1].copy()
    entries = evidence_entries(images, rows, images["digest"].iloc[rows].tolist())
    assert entries == _slow_entries(images, rows)
    assert entries[len(images) - 6]["tags"] == ["10", "3", "x"]


def test_images_of_a_repository_with_a_digest_twice_and_times_as_objects() -> None:
    """An abandoned repository's entries: the last row of a repeated digest; times that
    are not a time-zone column take the row-by-row path."""
    registry = _registry(4)
    images = registry.images
    key = tuple(images[["account", "region", "repository"]].iloc[0].astype(str))
    rows = np.flatnonzero(
        (images["account"].astype(str) == key[0]).to_numpy()
        & (images["repository"].astype(str) == key[2]).to_numpy()
    )
    assert len(rows) > 3
    twice = pd.concat([images, images.iloc[rows[:2]].assign(size_bytes=7)], ignore_index=True)
    for frame in (twice, twice.assign(pushed_at=twice["pushed_at"].astype(object))):
        scope = Scope(Inventory(frame, registry.repositories, registry.run), bench_config(), NOW)
        expected: dict[str, dict[str, Any]] = {}
        in_repository = np.append(rows, [len(images), len(images) + 1])
        for row in frame[EVIDENCE_COLUMNS].iloc[in_repository].itertuples(index=False):
            expected[str(row.digest)] = evidence_entry(row)
        want = sorted(expected.values(), key=lambda info: info["digest"])
        assert sum(e["size_bytes"] == 7 for e in want) == 2
        assert scope.images_of(key) == want  # type: ignore[arg-type]
    assert columnar_entries(twice) and not columnar_entries(frame)


@pytest.mark.parametrize("chunk", [65_536, 100])
def test_columnar_plan_declines_an_inventory_where_one_digest_differs(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The findings' digests are compared with the inventory's rows they point at (in
    chunks): one digest changed (same rows, repositories and times) and the columns
    are not read."""
    from hygiene import plancolumns
    from hygiene.findingtable import Findings
    from hygiene.plancolumns import columnar_image_proposals
    from hygiene.rules import evaluate

    monkeypatch.setattr(plancolumns, "DIGEST_CHUNK", chunk)

    inventory = synthetic_inventory(3_000, 30)
    found = evaluate(inventory, bench_config(), NOW, in_use=[]).findings
    assert isinstance(found, Findings) and found.image is not None
    keep = np.ones(len(found.image), dtype=bool)
    assert columnar_image_proposals(found.image, keep, inventory)
    images = inventory.images.copy()
    digests = images["digest"].astype(object).to_numpy().copy()
    row = int(found.image.unit_rows[len(found.image.unit_rows) // 2])
    digests[row] = digests[row][:-1] + ("0" if digests[row][-1] != "0" else "1")
    images["digest"] = pd.Series(digests, index=images.index).astype(images["digest"].dtype)
    other = Inventory(images=images, repositories=inventory.repositories, run=inventory.run)
    assert columnar_image_proposals(found.image, keep, other) is None


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "ab", None]), min_size=1, max_size=12),
    st.lists(st.tuples(st.sampled_from(["a", "b", "c", None]), st.integers(1, 3)), max_size=6),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_same_values_on_codes_equal_comparing_the_values(
    values: list[str | None], units: list[tuple[str | None, int]], category: bool, rnd: Any
) -> None:
    """The columnar plan's check that each unit's images are in the unit's repository:
    on a category column's codes as on the values (missing values, values that are no
    category, units of several rows)."""
    from hygiene.plancolumns import _same_values

    column = pd.Series(values, dtype="category" if category else object)
    of_unit = np.array([value for value, _ in units] or [], dtype=object)
    lengths = np.array([length for _, length in units], dtype=np.int64)
    rows = np.array([rnd.randrange(len(values)) for _ in range(int(lengths.sum()))], np.int64)
    if rnd.random() < 0.5:  # often each unit's rows hold its value, to see matches
        text = column.astype(object).tolist()
        picks = []
        for k, length in enumerate(lengths.tolist()):
            of_unit[k] = text[rnd.randrange(len(text))]
            alike = [i for i, v in enumerate(text) if v is of_unit[k] or v == of_unit[k]]
            picks += [rnd.choice(alike) for _ in range(length)]
        rows = np.array(picks, dtype=np.int64)
    expected = np.repeat(of_unit, lengths)
    slow = np.array_equal(column.astype(object).to_numpy()[rows], expected)
    assert _same_values(column, rows, of_unit, lengths) == slow


tag_text = st.text(alphabet=st.sampled_from(["a", "B", "é", "ß", "1", "-", "\U0001f600", "\ud800"]))
tag_cells = st.one_of(
    st.lists(tag_text, max_size=4),
    st.lists(tag_text, max_size=3).map(tuple),
    st.lists(tag_text, max_size=3).map(lambda tags: np.array(tags, dtype=object)),
    st.lists(st.one_of(tag_text, st.integers(0, 20), st.none(), st.just(b"ab")), max_size=3),
)


def _slow_tag_lists(column: np.ndarray, rows: np.ndarray) -> list[list[str]]:
    return [sorted(str(t) for t in column[r]) for r in rows.tolist()]


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(tag_cells, min_size=1, max_size=25), st.randoms(use_true_random=False))
def test_sorted_tag_lists_are_each_rows_sorted_tags(cells: list[Any], rnd: Any) -> None:
    """Tags of any text (code points beyond the first plane sort as Python sorts them, a
    lone surrogate takes the plain path), cells as lists, tuples and arrays, tags that
    are not text; rows in any order, a row twice."""
    from hygiene.planscope import sorted_tag_lists

    column = np.empty(len(cells), dtype=object)
    column[:] = cells
    rows = np.array([rnd.randrange(len(cells)) for _ in range(rnd.randrange(30))], np.int64)
    fast = sorted_tag_lists(column, rows)
    assert fast == _slow_tag_lists(column, rows)
    assert all(type(tags) is list and all(type(t) is str for t in tags) for tags in fast)
    assert len({id(tags) for tags in fast}) == len(fast)  # no list shared


def test_sorted_tag_lists_of_many_rows_take_the_columnar_path() -> None:
    """A seeded column of text tags (the Arrow path: the strings are new), rows in a
    random order: each row's tags sorted, in the rows' order."""
    from hygiene.planscope import sorted_tag_lists

    rng = np.random.default_rng(5)
    words = np.array(["latest", "v1.2", "V1.2", "b", "a", "é", "sha-1", "prod", ""], dtype=object)
    column = np.empty(5_000, dtype=object)
    column[:] = [list(rng.choice(words, rng.integers(0, 5))) for _ in range(len(column))]
    rows = rng.permutation(len(column))[:4_000]
    fast = sorted_tag_lists(column, rows)
    assert fast == _slow_tag_lists(column, rows)
    assert sum(t != list(column[r]) for t, r in zip(fast, rows, strict=True)) > 100  # unsorted
    # the strings are new (Python shares "" and one-letter strings, whoever makes them)
    ours = {id(t) for row_tags in fast for t in row_tags if len(t) > 1}
    assert ours and not ours & {id(t) for r in rows.tolist() for t in column[r]}


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(st.sampled_from(["sha256:a", "sha256:b", "sha256:é", "x"]), min_size=1, max_size=9),
    st.lists(st.integers(0, 8), max_size=12),
    st.lists(st.sampled_from(["sha256:a", "sha256:é", b"sha256:a", "\ud800", None, 3]), max_size=3),
    st.sampled_from([65_536, 2]),
    st.randoms(use_true_random=False),
)
def test_same_digests_is_comparing_each_rows_digest(
    inventory: list[str], picks: list[int], odd: list[Any], chunk: int, rnd: Any
) -> None:
    """The columnar plan's check that the findings' digests are the inventory's at their
    rows: as comparing the Python values with a ``str`` on each side (bytes, a lone
    surrogate, a missing digest or a number are no match), in chunks of any size."""
    import pyarrow as pa

    from hygiene import plancolumns

    rows = np.array([p % len(inventory) for p in picks], dtype=np.int64)
    digests = np.empty(len(rows), dtype=object)
    digests[:] = [inventory[r] for r in rows.tolist()]
    for value in odd:  # often a digest replaced by another, or by something not text
        if len(rows):
            digests[rnd.randrange(len(rows))] = value
    slow = all(
        type(d) is str and d == inventory[r] for d, r in zip(digests, rows.tolist(), strict=True)
    )
    old = plancolumns.DIGEST_CHUNK
    plancolumns.DIGEST_CHUNK = chunk
    try:
        at_rows = pa.array(inventory, pa.string()).take(pa.array(rows, pa.int64()))
        fast = plancolumns._same_digests(at_rows, digests, rows)
    finally:
        plancolumns.DIGEST_CHUNK = old
    assert fast == slow


@pytest.mark.parametrize("as_objects", [False, True], ids=["columns", "objects"])
def test_images_of_many_repositories_are_each_ones_entries(as_objects: bool) -> None:
    """The entries of many abandoned repositories, made in one pass, are each
    repository's own (a digest twice, a repository with no image, one asked twice)."""
    registry = _registry(6)
    images = registry.images
    twice = pd.concat([images, images.iloc[[0, 1]].assign(size_bytes=7)], ignore_index=True)
    if as_objects:
        twice = twice.assign(pushed_at=twice["pushed_at"].astype(object))
    inventory = Inventory(twice, registry.repositories, registry.run)
    where = twice[["account", "region", "repository"]].astype(str)
    keys = list(dict.fromkeys(map(tuple, where.to_numpy().tolist())))
    keys = [*keys[::-1], ("851296927411", "us-east-1", "no/such"), keys[0]]
    many = Scope(inventory, bench_config(), NOW).images_of_many(keys)
    assert list(many) == list(dict.fromkeys(keys)) and many[keys[-2]] == []
    for key in keys:
        rows = np.flatnonzero((where.to_numpy() == np.array(key, dtype=object)).all(axis=1))
        expected: dict[str, dict[str, Any]] = {}
        for row in twice[EVIDENCE_COLUMNS].iloc[rows].itertuples(index=False):
            expected[str(row.digest)] = evidence_entry(row)
        assert many[key] == sorted(expected.values(), key=lambda info: info["digest"])
    assert sum(e["size_bytes"] == 7 for entries in many.values() for e in entries) == 2
