"""The images frame built a repository at a time (:mod:`hygiene.imageframes`) equals the
one built from all the records at once, in the one-shot build's order.

Pure: pieces of hypothesis records added in any order, some added again (a repository
read again replaces what its earlier read gave) and some never named (a read not kept).
Integration: the collector against the embedded registry, with reads that fail and are
read again in a later pass, and two targets holding repositories of the same names; the
frame must equal ``build_images`` of what the reads kept, concatenated the way the
collector concatenated them before it built the frame while reading.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hygiene.collect.ecr as ecr_module
from hygiene.collect.ecr import (
    RepositoryData,
    RepositoryReadError,
    ScanTarget,
    collect_inventory,
    fixed_client,
)
from hygiene.config import CollectSettings
from hygiene.imageframes import ImageFrames
from hygiene.inventory import IMAGE_DTYPES, build_images
from hygiene_demo.registry import EmbeddedRegistry
from hygiene_demo.scale import seed_scale_registry
from tests.test_inventory import DIGESTS, assert_equals_the_obvious_construction, records

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


def assert_same_frame(built: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(built, expected, check_exact=True)
    for column in ("tags", "child_digests", "parent_indexes"):  # lists, not arrays
        assert [repr(v) for v in built[column]] == [repr(v) for v in expected[column]]


@st.composite
def pieces(draw: st.DrawFn) -> tuple[list[list[dict[str, Any]]], list[tuple[int, list[dict]]]]:
    """Records cut into pieces (some empty), and the adds that make them: every piece
    added once last, in any order, after earlier adds under the same key (stale reads)
    and adds under keys never named."""
    rows = draw(records)
    cuts = sorted(draw(st.lists(st.integers(0, len(rows)), max_size=5)))
    bounds = [0, *cuts, len(rows)]
    parts = [rows[a:b] for a, b in itertools.pairwise(bounds)]
    order = draw(st.permutations(range(len(parts))))
    stale = draw(st.lists(st.tuples(st.integers(0, len(parts) + 2), records), max_size=3))
    adds: list[tuple[int, list[dict]]] = list(stale)  # keys ≥ len(parts) are never named
    adds += [(key, parts[key]) for key in order]
    return parts, adds


@settings(max_examples=150, deadline=None)
@given(pieces())
def test_pieces_in_any_order_equal_the_one_shot_build(
    drawn: tuple[list[list[dict[str, Any]]], list[tuple[int, list[dict]]]],
) -> None:
    parts, adds = drawn
    frames = ImageFrames(IMAGE_DTYPES)
    for key, rows in adds:
        frames.add(key, [dict(r) for r in rows])
    built = frames.frame(range(len(parts)))
    whole = [dict(r) for part in parts for r in part]
    assert_same_frame(built, build_images(whole))
    assert_equals_the_obvious_construction(built, whole)


@settings(max_examples=150, deadline=None)
@given(records, st.randoms(use_true_random=False))
def test_a_piece_per_repository_equals_the_one_shot_build(rows: list[dict], rng: Any) -> None:
    """As the collector adds them: one piece per repository name (each piece's index
    links are then the whole's), added in any order."""
    names = list(dict.fromkeys(r["repository"] for r in rows))
    parts = [[dict(r) for r in rows if r["repository"] == name] for name in names]
    frames = ImageFrames(IMAGE_DTYPES)
    for key in rng.sample(range(len(parts)), len(parts)):
        frames.add(key, parts[key])
    built = frames.frame(range(len(parts)))
    whole = [r for part in parts for r in part]
    assert_same_frame(built, build_images(whole))
    assert_equals_the_obvious_construction(built, whole)


def test_values_that_are_not_text_take_the_whole_columns_way() -> None:
    """A category or link value that is not text: that column (or the links) is made
    from the whole, as by the one-shot build."""
    first: list[dict[str, Any]] = [
        {"repository": "a", "digest": DIGESTS[0], "status": 3, "child_digests": [DIGESTS[1]],
         "manifest_media_type": "application/vnd.oci.image.index.v1+json"},
        {"repository": "a", "digest": DIGESTS[1], "status": "ACTIVE"},
    ]  # fmt: skip
    second: list[dict[str, Any]] = [
        {"repository": "b", "digest": None, "status": None},
        {"repository": "b", "digest": DIGESTS[1], "manifest_media_type": 7},
    ]
    frames = ImageFrames(IMAGE_DTYPES)
    frames.add(1, second)
    frames.add(0, first)
    built = frames.frame([0, 1])
    assert_same_frame(built, build_images(first + second))
    assert_equals_the_obvious_construction(built, first + second)
    assert built["parent_indexes"].tolist() == [[], [DIGESTS[0]], [], []]


def test_a_piece_with_other_times_converts_the_whole_column_as_the_one_shot_build() -> None:
    """Strings and pandas timestamps in one piece: the whole column goes through pandas,
    as it does when all the records are built at once."""
    instant = datetime(2026, 11, 28, 3, 0, 0, 123456, tzinfo=UTC)
    first = [{"repository": "a", "digest": DIGESTS[0], "pushed_at": instant}]
    second: list[dict[str, Any]] = [
        {"repository": "b", "digest": DIGESTS[1], "pushed_at": "2026-11-28T03:00:00Z"},
        {"repository": "b", "digest": DIGESTS[2], "pushed_at": pd.Timestamp(instant)},
        {"repository": "b", "digest": DIGESTS[3], "pushed_at": None},
    ]
    frames = ImageFrames(IMAGE_DTYPES)
    frames.add("b", second)
    frames.add("a", first)
    frames.add("empty", [])
    built = frames.frame(["a", "empty", "b"])
    assert_same_frame(built, build_images(first + second))
    assert_equals_the_obvious_construction(built, first + second)
    assert built["pushed_at"].isna().tolist() == [False, False, False, True]


def test_nothing_named_is_the_empty_frame() -> None:
    frames = ImageFrames(IMAGE_DTYPES)
    frames.add("unnamed", [{"repository": "a", "digest": DIGESTS[0]}])
    assert_same_frame(frames.frame([]), build_images([]))


# --------------------------------------------------------------------------- the collector


class FlakyReads:
    """``collect_repository`` whose first read of the chosen repositories fails (after
    reading it: a read that fails late), and that records what every read that
    succeeded gave, by (region, repository)."""

    def __init__(self, real: Any, flaky: set[tuple[str, str]]) -> None:
        self.real, self.flaky = real, flaky
        self.calls: Counter[tuple[str, str]] = Counter()
        self.kept: dict[tuple[str, str], RepositoryData] = {}
        self.lock = threading.Lock()

    def __call__(self, client: Any, repo: Any, region: str, settings: Any) -> RepositoryData:
        key = (region, repo["repositoryName"])
        with self.lock:
            self.calls[key] += 1
            first = self.calls[key] == 1
        data = self.real(client, repo, region, settings)
        if first and key in self.flaky:
            data.images[0]["tags"] = ["stale"]  # what a failed read saw is never kept
            raise RepositoryReadError("BatchGetImage", "flaky (test)")
        with self.lock:
            self.kept[key] = data
        return data


@pytest.mark.integration
def test_reads_failed_and_read_again_appear_once_with_the_later_read(
    ecr: EmbeddedRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_scale_registry(ecr, 12, 6, NOW, index_every=2)
    client = ecr.client()
    names = sorted(r["repositoryName"] for r in client.describe_repositories()["repositories"])
    flaky = {("us-east-1", names[0]), ("us-east-1", names[5]), ("eu-west-1", names[-1])}
    reads = FlakyReads(ecr_module.collect_repository, flaky)
    monkeypatch.setattr(ecr_module, "collect_repository", reads)
    # the same repositories as two regions: names repeat across the frame's pieces
    targets = [
        ScanTarget(None, "us-east-1", fixed_client(client)),
        ScanTarget(None, "eu-west-1", fixed_client(client)),
    ]
    settings = CollectSettings(max_workers=4, pass_backoff_seconds=0, read_passes=2)
    inventory = collect_inventory(targets, settings, now=NOW)

    assert inventory.run.complete
    assert {key for key, n in reads.calls.items() if n == 2} == flaky
    assert all(n == 1 for key, n in reads.calls.items() if key not in flaky)
    # what collect_region handed over before: each target's kept reads by name, in order
    expected = build_images(
        [
            image
            for region in ("us-east-1", "eu-west-1")
            for name in names
            for image in reads.kept[(region, name)].images
        ]
    )
    assert_same_frame(inventory.images, expected)
    assert "stale" not in {tag for tags in inventory.images["tags"] for tag in tags}
    assert len(inventory.images) == 2 * sum(len(reads.kept[("us-east-1", n)].images) for n in names)
    # an index's children are linked within its own region's repository only: the other
    # region's same-named repository has the same index, and each child one parent
    parents = inventory.images["parent_indexes"].map(len)
    assert parents.max() == 1
    assert (
        (parents == 1).sum()
        == 2 * (parents[inventory.images["region"] == "us-east-1"] == 1).sum()
        > 0
    )


@pytest.mark.integration
def test_a_repository_never_read_has_no_images(
    ecr: EmbeddedRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_scale_registry(ecr, 4, 3, NOW)
    client = ecr.client()
    names = sorted(r["repositoryName"] for r in client.describe_repositories()["repositories"])
    reads = FlakyReads(ecr_module.collect_repository, {("us-east-1", names[1])})
    monkeypatch.setattr(ecr_module, "collect_repository", reads)
    settings = CollectSettings(max_workers=2, pass_backoff_seconds=0, read_passes=1)
    inventory = collect_inventory({"us-east-1": client}, settings, now=NOW)

    assert not inventory.run.complete
    assert names[1] not in set(inventory.images["repository"].astype(str))
    expected = build_images(
        [
            image
            for name in names
            if name != names[1]
            for image in reads.kept[("us-east-1", name)].images
        ]
    )
    assert_same_frame(inventory.images, expected)
    repositories = inventory.repositories.set_index("name")
    assert repositories.loc[names[1], "image_count"] == 0
    assert isinstance(repositories.loc[names[1], "scan_error"], str)
