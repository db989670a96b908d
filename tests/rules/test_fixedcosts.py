"""The shortcuts that cut fixed costs after a scan's last read give exactly what the plain
code gives (round 9 of issue 14: docs/benchmarks.md, "Round 9: after the last answer").

- :func:`hygiene.frametypes.coerce` keeps a column that already has the schema's dtype
  instead of converting it again: checked against ``coerce`` with the check turned off.
- RP003 (abandoned repository) aggregates each repository's activity with numpy instead
  of a pandas ``groupby``: checked against the rule as it was, on generated images.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hygiene.frametypes as frametypes
from hygiene.frametypes import UTC_NS, coerce
from hygiene.messages import message
from hygiene.rules.base import RuleContext
from hygiene.rules.columns import utc_ns
from hygiene.rules.repositories import (
    IDLE,
    IDLE_NEVER_PULLED,
    abandoned_repository,
    repository_activity,
)
from tests.conftest import examples

NOW = pd.Timestamp("2026-11-28T03:00:00", tz="UTC")


def _plain_coerce(frame: Any, dtypes: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        patch.setattr(frametypes, "_typed_already", lambda values, dtype: False)
        return coerce(frame, dtypes)


def _same_frames(fast: pd.DataFrame, plain: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(fast, plain, check_exact=True, check_categorical=True)
    for column in plain:
        assert repr(fast[column].dtype) == repr(plain[column].dtype), column
        assert type(fast[column].dtype) is type(plain[column].dtype), column
        if isinstance(plain[column].dtype, pd.DatetimeTZDtype):
            assert fast[column].dtype.tz is plain[column].dtype.tz, column
        if isinstance(plain[column].dtype, pd.CategoricalDtype):
            assert list(fast[column].cat.categories) == list(plain[column].cat.categories)
            assert fast[column].cat.ordered == plain[column].cat.ordered


SCHEMA = {
    "cat": "category",
    "text": "string",
    "count": "int64",
    "small": "int32",
    "flag": "bool",
    "when": UTC_NS,
    "anything": "object",
}

texts = st.one_of(st.none(), st.sampled_from(["a", "b", "ä", "", "b "]))
times = st.one_of(
    st.none(),
    st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2040, 1, 1)).map(
        lambda t: t.replace(tzinfo=dt.UTC)
    ),
)


@st.composite
def typed_frames(draw: st.DrawFn) -> pd.DataFrame:
    """Frames whose columns have the schema's dtype, or a near one (another string
    storage, another UTC zone object, nullable booleans and integers, objects)."""
    n = draw(st.integers(0, 12))
    cells = draw(st.lists(texts, min_size=n, max_size=n))
    when = draw(st.lists(times, min_size=n, max_size=n))
    numbers = draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n))
    flags = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    columns: dict[str, Any] = {}
    columns["cat"] = draw(
        st.sampled_from(
            [
                pd.Categorical(cells),
                pd.Categorical(cells, categories=sorted({"b", "a", "ä", "", "b "}, reverse=True)),
                pd.Categorical(cells, ordered=True),
                pd.array(cells, dtype=object),
                pd.array(cells, dtype="string"),
            ]
        )
    )
    columns["text"] = draw(
        st.sampled_from(
            [
                pd.array(cells, dtype="string"),
                pd.array(cells, dtype=pd.StringDtype("python")),
                pd.array(cells, dtype=object),
                pd.Categorical(cells),
            ]
        )
    )
    columns["count"] = draw(
        st.sampled_from(
            [
                np.array(numbers, dtype=np.int64),
                np.array(numbers, dtype=np.int32),
                pd.array(numbers, dtype="Int64"),
                np.array(numbers, dtype=float),
            ]
        )
    )
    columns["small"] = draw(
        st.sampled_from([np.array(numbers, dtype=np.int32), np.array(numbers, dtype=np.int64)])
    )
    columns["flag"] = draw(
        st.sampled_from(
            [
                np.array(flags, dtype=bool),
                pd.array(flags, dtype="boolean"),
                pd.array([None if i % 3 == 0 else f for i, f in enumerate(flags)], "boolean"),
            ]
        )
    )
    instants = pd.Series(pd.to_datetime(when, utc=True)).astype(UTC_NS)
    columns["when"] = draw(
        st.sampled_from(
            [
                instants.array,
                instants.dt.tz_convert(zoneinfo.ZoneInfo("UTC")).array,
                instants.dt.tz_convert("Europe/Paris").array,
                instants.astype("datetime64[us, UTC]").array,
                pd.array(when, dtype=object),
            ]
        )
    )
    columns["anything"] = pd.array([[c] if c else {} for c in cells], dtype=object)
    return pd.DataFrame(columns, index=pd.RangeIndex(n) + draw(st.integers(0, 3)))


@settings(max_examples=examples(300), deadline=None)
@given(typed_frames(), st.booleans())
def test_coerce_keeps_a_typed_column_as_converting_it_would(
    frame: pd.DataFrame, as_mapping: bool
) -> None:
    monkeypatch = pytest.MonkeyPatch()
    given_frame: Any = dict(frame.items()) if as_mapping else frame
    _same_frames(coerce(given_frame, SCHEMA), _plain_coerce(given_frame, SCHEMA, monkeypatch))


def test_coerce_gives_a_copy_of_a_typed_column() -> None:
    """The kept column is not shared with the frame it came from."""
    source = coerce(
        pd.DataFrame({"count": np.arange(3, dtype=np.int64), "text": ["x", "y", None]}),
        {"count": "int64", "text": "string"},
    )
    again = coerce(source, {"count": "int64", "text": "string"})
    source.loc[0, "count"] = 99
    source.loc[0, "text"] = "changed"
    assert again["count"].tolist() == [0, 1, 2]
    assert again["text"].tolist()[0] == "x"


def test_a_typed_column_is_kept_and_a_near_one_converted() -> None:
    """Which columns the shortcut takes (a mutation that keeps every column, or none,
    fails here or in the property above)."""
    keep = frametypes._typed_already
    assert keep(pd.Series(pd.Categorical(["a"])), "category")
    assert keep(pd.Series(["a"], dtype="string"), "string")
    assert not keep(pd.Series(["a"], dtype=pd.StringDtype("python")), "string")
    assert not keep(pd.Series(["a"], dtype=object), "string")
    assert keep(pd.Series([1], dtype="int64"), "int64")
    assert not keep(pd.Series([1], dtype="int32"), "int64")
    assert not keep(pd.Series([1], dtype="Int64"), "int64")
    assert keep(pd.Series([True]), "bool")
    assert not keep(pd.Series([True], dtype="boolean"), "bool")
    assert not keep(pd.Series([[1]], dtype=object), "object")
    utc = pd.Series(pd.to_datetime(["2026-01-01"], utc=True)).astype(UTC_NS)
    assert keep(utc, UTC_NS)
    assert not keep(utc.dt.tz_convert(zoneinfo.ZoneInfo("UTC")), UTC_NS)
    assert not keep(utc.astype("datetime64[us, UTC]"), UTC_NS)


# ---------------------------------------------------------------------------- RP003


def _abandoned_reference(ctx: RuleContext) -> pd.DataFrame:
    """RP003 as it was before round 9 (a pandas groupby per repository row)."""
    images = ctx.images
    if not len(images):
        return pd.DataFrame({"message": [], "details": []})
    cutoff = ctx.days_ago(ctx.options["days"])
    activity = images.groupby("repo_row", sort=True).agg(
        last_push=("pushed_at", "max"), last_pull=("last_pull", "max"), images=("digest", "size")
    )
    activity = activity[activity.index >= 0]
    idle = (activity["last_push"] < cutoff) & (
        activity["last_pull"].isna() | (activity["last_pull"] < cutoff)
    )
    sub = activity[idle.fillna(False)]
    push = np.datetime_as_string(utc_ns(sub["last_push"]), unit="D")
    pull = np.datetime_as_string(utc_ns(sub["last_pull"]), unit="D")
    messages, details = [], []
    threshold = ctx.options["days"]
    for pushed, pulled, count in zip(
        push.tolist(), pull.tolist(), sub["images"].tolist(), strict=True
    ):
        messages.append(
            message(IDLE_NEVER_PULLED, pushed=pushed, images=count, threshold=threshold)
            if pulled == "NaT"
            else message(IDLE, pushed=pushed, pulled=pulled, images=count, threshold=threshold)
        )
        details.append(
            {
                "last_push": pushed,
                "last_pull": None if pulled == "NaT" else pulled,
                "images": int(count),
            }
        )
    return pd.DataFrame({"message": messages, "details": details}, index=sub.index.astype(int))


# days before NOW, around the threshold (a push exactly at the cutoff is not idle)
ages = st.one_of(st.none(), st.sampled_from([0, 1, 29, 30, 31, 400]), st.integers(0, 900))


@st.composite
def activity_images(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 30))
    rows = draw(st.lists(st.integers(-1, 6), min_size=n, max_size=n))
    pushed = draw(st.lists(ages, min_size=n, max_size=n))
    pulled = draw(st.lists(ages, min_size=n, max_size=n))

    def instants(days: list[int | None]) -> pd.Series:
        values = [None if d is None else NOW - pd.Timedelta(days=d) for d in days]
        return pd.Series(pd.to_datetime(values, utc=True)).astype(UTC_NS)

    index = pd.Index(draw(st.permutations(range(n))), dtype=np.int64) if n else None
    frame = pd.DataFrame(
        {
            "repo_row": np.array(rows, dtype=np.int64),
            "pushed_at": instants(pushed).array,
            "last_pull": instants(pulled).array,
            "digest": pd.array([f"sha256:{i}" if i % 4 else None for i in range(n)], "string"),
        }
    )
    if index is not None:
        frame.index = index
    return frame


def _context(images: pd.DataFrame, days: int) -> RuleContext:
    return RuleContext(
        images=images,
        repositories=pd.DataFrame(),
        options={"days": days},
        now=NOW,
        config=None,  # type: ignore[arg-type]
        tag_table=pd.DataFrame(),
    )


@settings(max_examples=examples(400), deadline=None)
@given(activity_images(), st.sampled_from([1, 30, 180]))
def test_abandoned_repositories_as_the_groupby_found_them(images: pd.DataFrame, days: int) -> None:
    ctx = _context(images, days)
    fast, plain = abandoned_repository(ctx), _abandoned_reference(ctx)
    pd.testing.assert_frame_equal(fast, plain, check_exact=True)
    assert fast.index.name == plain.index.name
    assert fast["details"].tolist() == plain["details"].tolist()


@settings(max_examples=examples(300), deadline=None)
@given(activity_images())
def test_repository_activity_is_the_groupbys(images: pd.DataFrame) -> None:
    rows, push, pull, counts = repository_activity(images)
    grouped = images[images["repo_row"] >= 0].groupby("repo_row", sort=True)
    assert rows.tolist() == list(grouped.groups)
    nat = np.iinfo(np.int64).min
    for newest, column in ((push, "pushed_at"), (pull, "last_pull")):
        expected = grouped[column].max()
        assert newest.tolist() == [
            nat if pd.isna(value) else value.value for value in expected.tolist()
        ]
    assert counts.tolist() == grouped.size().tolist()


def test_a_push_on_the_cutoff_is_not_idle_and_a_later_pull_keeps_it() -> None:
    """Hand-made: the comparisons are strict, NaT is neither old nor new."""
    images = pd.DataFrame(
        {
            "repo_row": np.array([0, 1, 1, 2, 3], dtype=np.int64),
            "pushed_at": pd.Series(
                pd.to_datetime(
                    [
                        NOW - pd.Timedelta(days=30),
                        NOW - pd.Timedelta(days=31),
                        None,
                        None,
                        NOW - pd.Timedelta(days=40),
                    ],
                    utc=True,
                )
            )
            .astype(UTC_NS)
            .array,
            "last_pull": pd.Series(
                pd.to_datetime([None, NOW - pd.Timedelta(days=31), None, NOW, NOW], utc=True)
            )
            .astype(UTC_NS)
            .array,
            "digest": pd.array(["a", "b", "c", "d", "e"], dtype="string"),
        }
    )
    found = abandoned_repository(_context(images, 30))
    assert found.index.tolist() == [1]
    assert found["details"].tolist() == [
        {"last_push": "2026-10-28", "last_pull": "2026-10-28", "images": 2}
    ]


# ---------------------------------------------------------------------- repo_row (derive)


def _repository_rows_reference(
    frame: pd.DataFrame, keys: list[str], repositories: pd.DataFrame
) -> np.ndarray:
    """derive's repository row of each repo_id as it was before round 9 (a pandas merge)."""
    groups = (
        frame[keys]
        .assign(repo_id=frame["repo_id"])
        .drop_duplicates("repo_id")
        .astype({k: str for k in keys})
    )
    repo_keys = repositories[["account", "region", "name"]].astype(str).copy()
    repo_keys["repo_row"] = np.arange(len(repositories))
    repo_keys = repo_keys.drop_duplicates(["account", "region", "name"])
    matched = groups.merge(
        repo_keys, how="left", left_on=keys, right_on=["account", "region", "name"]
    )
    rows = np.full(int(frame["repo_id"].max()) + 1, -1, dtype=np.int64)
    rows[matched["repo_id"].to_numpy()] = matched["repo_row"].fillna(-1).to_numpy(dtype=np.int64)
    return rows


KEY_VALUES: dict[str, list[Any]] = {
    "account": [1, 2],  # numbers: compared as text with the repositories' "1" and "2"
    "region": ["r", "s"],
    "repository": ["a", "b/c", "nan", "<NA>", "None"],
}


@st.composite
def registries_with_keys(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = draw(st.integers(1, 20))
    images = pd.DataFrame(
        {
            k: pd.Categorical(
                draw(
                    st.lists(st.one_of(st.none(), st.sampled_from(values)), min_size=n, max_size=n)
                )
            )
            for k, values in KEY_VALUES.items()
        }
    )
    from hygiene.rules.columns import group_ids

    images["repo_id"] = group_ids(images, list(KEY_VALUES))
    if draw(st.booleans()):  # ids with no row (group_ids never leaves one out)
        images["repo_id"] = images["repo_id"] * 2
    m = draw(st.integers(0, 8))
    columns = {}
    for k, key in (("account", "account"), ("region", "region"), ("name", "repository")):
        texts = [str(v) for v in KEY_VALUES[key]]
        cells = draw(st.lists(st.one_of(st.none(), st.sampled_from(texts)), min_size=m, max_size=m))
        kind = draw(st.sampled_from(["category", "string", "object"]))
        columns[k] = pd.Series(cells, dtype=kind)
    return images, pd.DataFrame(columns)


@settings(max_examples=examples(400), deadline=None)
@given(registries_with_keys())
def test_repository_rows_are_the_merges(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    from hygiene.rules.protections import repository_rows

    images, repositories = data
    keys = list(KEY_VALUES)
    got = repository_rows(images, keys, repositories)
    assert got.dtype == np.int64
    assert got.tolist() == _repository_rows_reference(images, keys, repositories).tolist()


def test_a_missing_key_is_none_for_the_lookup() -> None:
    from hygiene.rules.protections import _cells

    for kind in ("str", "string", "object", "category"):
        assert _cells(pd.Series(["a", None, "nan"], dtype=kind).astype(str)) == ["a", None, "nan"]
