"""The batch preview's columns read in the images frame's order, and the tag match, equal
the obvious code: the block's cells converted in its own order, ``Series.explode``, a
loop over each image's tags."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from hygiene.lifecycle.batch import _InFrameOrder
from hygiene.lifecycle.policy import pattern_regex
from hygiene.lifecycle.preview import _tag_match
from tests.conftest import examples

text = st.text(alphabet=st.sampled_from(["a", "b", "1", ".", "-", "é", "\U0001f600"]), max_size=4)
cells = st.one_of(
    st.lists(text, max_size=3),
    st.lists(st.one_of(text, st.none(), st.integers(0, 9), st.just("\ud800")), max_size=3),
    st.lists(text, max_size=2).map(tuple),
    st.none(),
)


def _block(column: list[Any], rnd: Any) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A frame of these tags and the block's rows of it: some rows, by a random key."""
    images = pd.DataFrame({"tags": pd.Series(column, dtype=object)})
    selected = np.array(sorted(rnd.sample(range(len(column)), rnd.randrange(len(column) + 1))))
    selected = selected.astype(np.int64)
    keys = np.array([rnd.randrange(3) for _ in selected], dtype=np.int64)
    return images, selected, np.argsort(keys, kind="stable")


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(cells, min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_tags_read_in_frame_order_are_the_blocks_exploded_tags(column: list[Any], rnd: Any) -> None:
    images, selected, by_repo = _block(column, rnd)
    frame = images.iloc[selected[by_repo]].reset_index(drop=True)
    source = _InFrameOrder(images, selected, by_repo)
    fast = source.exploded_tags()
    plain = all(
        type(c) is list and all(type(t) is str and "\ud800" not in t for t in c)
        for c in frame["tags"]
    )
    assert (fast is not None) == plain
    if fast is not None:
        exploded = frame["tags"].explode()
        exploded = exploded[exploded.notna()].astype(str)
        pd.testing.assert_series_equal(fast, exploded, check_index_type=False)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.one_of(st.lists(text, max_size=3), st.none()), min_size=1, max_size=12))
def test_lists_read_in_frame_order_are_the_blocks_converted(column: list[Any]) -> None:
    import random

    rnd = random.Random(len(column))
    images, selected, by_repo = _block(column, rnd)
    frame = images.iloc[selected[by_repo]].reset_index(drop=True)
    expected = pa.array(frame["tags"].tolist(), type=pa.list_(pa.string()))
    assert _InFrameOrder(images, selected, by_repo).string_lists("tags").equals(expected)


entries = st.lists(st.sampled_from(["a", "a*", "*.*", "*", "b-*", "1", "é*", ""]), max_size=3)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.lists(text, max_size=3), max_size=10), entries, st.booleans())
def test_tag_match_is_every_entry_matched_by_some_tag(
    tags: list[list[str]], wanted: list[str], prefix: bool
) -> None:
    exploded = pd.Series(tags, dtype=object).explode()
    exploded = exploded[exploded.notna()].astype(str)

    def hit(tag: str, entry: str) -> bool:
        return tag.startswith(entry) if prefix else bool(pattern_regex(entry).fullmatch(tag))

    slow = [all(any(hit(t, e) for t in image) for e in wanted) for image in tags]
    fast = _tag_match(exploded, len(tags), tuple(wanted), prefix=prefix)
    assert fast.tolist() == slow
