"""The repositories frame's image counts and storage totals from the images' category codes
(round 9 of issue 14) are the pandas ``groupby``'s, which stays the general path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hygiene.inventory import _repository_totals, _repository_totals_grouped
from tests.conftest import examples

ACCOUNTS = ["111111111111", "222222222222"]
REGIONS = ["eu-west-1", "us-east-1"]
NAMES = ["app", "ml/trainer", "nan", "web", "z"]


@st.composite
def registries(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = draw(st.integers(1, 25))

    def column(values: list[str]) -> pd.Categorical:
        cells = draw(
            st.lists(st.one_of(st.none(), st.sampled_from(values)), min_size=n, max_size=n)
        )
        extra = draw(st.lists(st.sampled_from(values), max_size=2))  # categories no row has
        categories = sorted({c for c in cells if c is not None} | set(extra))
        return pd.Categorical(cells, categories=categories)

    images = pd.DataFrame(
        {
            "account": column(ACCOUNTS),
            "region": column(REGIONS),
            "repository": column(NAMES),
            "digest": pd.array([f"sha256:{i}" for i in range(n)], dtype="string"),
            "storage_bytes": np.array(
                draw(st.lists(st.integers(0, 2**40), min_size=n, max_size=n)), dtype=np.int64
            ),
        }
    )
    m = draw(st.integers(0, 8))

    def keys(values: list[str]) -> pd.Categorical:
        return pd.Categorical(
            draw(st.lists(st.one_of(st.none(), st.sampled_from(values)), min_size=m, max_size=m))
        )

    repositories = pd.DataFrame(
        {"account": keys(ACCOUNTS), "region": keys(REGIONS), "name": keys(NAMES).astype(object)}
    )
    return repositories, images


@settings(max_examples=examples(400), deadline=None)
@given(registries(), st.booleans())
def test_totals_from_codes_are_the_groupbys(
    data: tuple[pd.DataFrame, pd.DataFrame], sparse: bool
) -> None:
    import hygiene.inventory as inventory

    repositories, images = data
    with pytest.MonkeyPatch.context() as patch:
        if sparse:  # the keys sorted (np.unique), as for many keys and few images
            patch.setattr(inventory, "DENSE_KEYS", 0)
        fast = _repository_totals(repositories, images)
    assert fast is not None  # categorical text keys: the codes' path is taken
    plain = _repository_totals_grouped(repositories, images)
    for got, expected in zip(fast, plain, strict=True):
        assert got.dtype == expected.dtype == np.int64
        assert got.tolist() == expected.tolist()


@pytest.mark.parametrize("dense", [4, 0])
def test_totals_of_repositories_with_and_without_images(
    dense: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hygiene.inventory as inventory

    monkeypatch.setattr(inventory, "DENSE_KEYS", dense)
    images = pd.DataFrame(
        {
            "account": pd.Categorical(["1", "1", "1", None]),
            "region": pd.Categorical(["r", "r", "r", "r"]),
            "repository": pd.Categorical(["a", "a", "b", "a"]),
            "digest": pd.array(["x", "y", "z", "w"], dtype="string"),
            "storage_bytes": np.array([5, 7, 11, 13], dtype=np.int64),
        }
    )
    repositories = pd.DataFrame(
        {
            "account": pd.Categorical(["1", "1", "1", "1"]),
            "region": pd.Categorical(["r", "r", "r", "s"]),
            "name": ["b", "a", "c", "a"],
        }
    )
    counts, totals = _repository_totals(repositories, images)  # type: ignore[misc]
    assert counts.tolist() == [1, 2, 0, 0]
    assert totals.tolist() == [11, 12, 0, 0]


def test_keys_that_are_not_text_categories_take_the_groupby() -> None:
    images = pd.DataFrame(
        {
            "account": pd.Categorical([1, 1]),
            "region": pd.Categorical(["r", "r"]),
            "repository": pd.Categorical(["a", "a"]),
            "digest": pd.array(["x", "y"], dtype="string"),
            "storage_bytes": np.array([5, 7], dtype=np.int64),
        }
    )
    repositories = pd.DataFrame(
        {"account": pd.Categorical(["1"]), "region": pd.Categorical(["r"]), "name": ["a"]}
    )
    assert _repository_totals(repositories, images) is None
    assert _repository_totals(repositories, images.astype({"region": object})) is None
    counts, totals = _repository_totals_grouped(repositories, images)
    assert counts.tolist() == [2] and totals.tolist() == [12]


def test_the_repositories_frame_takes_the_codes_path(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import hygiene.inventory as inventory

    def grouped(*args: object) -> None:
        raise AssertionError("the groupby path was taken")

    monkeypatch.setattr(inventory, "_repository_totals_grouped", grouped)
    images = pd.DataFrame(
        {
            "account": pd.Categorical(["1", "1"]),
            "region": pd.Categorical(["r", "r"]),
            "repository": pd.Categorical(["a", "b"]),
            "digest": pd.array(["x", "y"], dtype="string"),
            "storage_bytes": np.array([5, 7], dtype=np.int64),
        }
    )
    frame = inventory.build_repositories(
        [
            {"account": "1", "region": "r", "name": "b"},
            {"account": "1", "region": "r", "name": "c"},
        ],
        images,
    )
    assert frame["image_count"].tolist() == [1, 0]
    assert frame["total_bytes"].tolist() == [7, 0]
