"""Inventory typing: schema coercion keeps rows aligned whatever the input index."""

from __future__ import annotations

import pandas as pd

from hygiene.inventory import IMAGE_DTYPES, coerce


def test_coerce_a_filtered_frame_with_missing_columns() -> None:
    frame = pd.DataFrame(
        {"digest": ["sha256:a", "sha256:b"], "tags": [["v1"], []], "size_bytes": [10, 20]},
        index=[7, 42],  # what a filtered selection looks like
    )
    typed = coerce(frame, IMAGE_DTYPES)
    assert list(typed.columns) == list(IMAGE_DTYPES)
    assert typed["digest"].tolist() == ["sha256:a", "sha256:b"]
    assert typed["size_bytes"].tolist() == [10, 20]
    assert typed["is_index"].tolist() == [False, False]  # missing bool column → False
    assert (
        typed["pushed_at"].isna().all() and str(typed["pushed_at"].dtype) == "datetime64[ns, UTC]"
    )


# --------------------------------------------------------------------------- build_images

from datetime import UTC, datetime, timedelta, timezone  # noqa: E402

from dateutil.tz import tzlocal  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hygiene.inventory import INDEX_MEDIA_TYPES, build_images, tag_subject  # noqa: E402


def link_indexes_reference(images: pd.DataFrame) -> pd.DataFrame:
    """Every row asks for its parents (what link_indexes did before it asked only the
    rows some index lists): the indexes of the same account, region and repository."""
    keys = ["account", "region", "repository", "digest"]
    parents: dict[tuple[str, ...], list[str]] = {}
    indexes = images[images["is_index"]]
    for (account, region, repository, digest), children in zip(
        indexes[keys].itertuples(index=False), indexes["child_digests"], strict=True
    ):
        for child in children or ():
            key = (str(account), str(region), str(repository), child)
            parents.setdefault(key, []).append(str(digest))
    images = images.copy()
    images["parent_indexes"] = [
        parents.get(tuple(map(str, row)), []) for row in images[keys].itertuples(index=False)
    ]
    return images


def reference_build_images(records: list[dict]) -> pd.DataFrame:
    """The obvious construction build_images replaced (pandas guesses every column's
    type, then the schema's is given; every row asked for its signature subject)."""
    frame = coerce(pd.DataFrame.from_records(records, columns=list(IMAGE_DTYPES)), IMAGE_DTYPES)
    frame["tags"] = [list(t) if isinstance(t, list | tuple) else [] for t in frame["tags"]]
    frame["tag_count"] = frame["tags"].map(len).astype("int32")
    frame["child_digests"] = [
        list(c) if isinstance(c, list | tuple) else [] for c in frame["child_digests"]
    ]
    frame["is_index"] = frame["manifest_media_type"].astype(object).isin(INDEX_MEDIA_TYPES)
    frame["storage_bytes"] = frame["size_bytes"].where(~frame["is_index"], 0).astype("int64")
    subject = pd.Series(
        [tag_subject(t, bool(i)) for t, i in zip(frame["tags"], frame["is_index"], strict=True)],
        dtype=object,
    )
    frame["is_signature_tag"] = subject.notna()
    frame["subject_digest"] = (
        frame["subject_digest"].fillna(subject.astype("string")).astype("string")
    )
    return coerce(link_indexes_reference(frame), IMAGE_DTYPES)


DIGESTS = [f"sha256:{n:064x}" for n in range(6)]
ZONES = [UTC, tzlocal(), timezone(timedelta(hours=-3)), timezone(timedelta(hours=5, minutes=30))]
MEDIA = [None, "application/vnd.oci.image.manifest.v1+json", *sorted(INDEX_MEDIA_TYPES)]
times = st.one_of(
    st.none(),
    st.builds(
        lambda seconds, micro, zone: (
            datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=micro)
        ).astimezone(zone),
        st.integers(0, 10**8),
        st.integers(0, 999_999),
        st.sampled_from(ZONES),
    ),
)
tags = st.lists(
    st.sampled_from(
        ["v1", "latest", f"sha256-{1:064x}.sig", f"sha256-{2:064x}", f"sha256-{3:064x}.att"]
    ),
    max_size=3,
)
records = st.lists(
    st.fixed_dictionaries(
        {
            "account": st.sampled_from(["111122223333", "444455556666"]),
            "region": st.sampled_from(["us-east-1", "sa-east-1"]),
            "repository": st.sampled_from(["ml/train", "ml/serve", "nginx"]),
            "digest": st.sampled_from(DIGESTS),
            "tags": st.one_of(tags, tags.map(tuple), st.none()),
            "pushed_at": times,
            "size_bytes": st.one_of(st.none(), st.integers(0, 2**40)),
            "manifest_media_type": st.sampled_from(MEDIA),
            "child_digests": st.one_of(st.none(), st.lists(st.sampled_from(DIGESTS), max_size=3)),
            "subject_digest": st.one_of(st.none(), st.sampled_from(DIGESTS)),
        },
        optional={
            "last_pull": times,
            "namespace": st.sampled_from(["ml", None]),
            "status": st.sampled_from(["ACTIVE", "ARCHIVED"]),
            "artifact_media_type": st.sampled_from([None, "application/x"]),
        },
    ),
    max_size=12,
)


def assert_equals_the_obvious_construction(built: pd.DataFrame, rows: list[dict]) -> None:
    """``built`` is the images frame of ``rows`` as :func:`reference_build_images` makes
    it (every column and dtype exactly; list cells as lists)."""
    expected = reference_build_images([dict(r) for r in rows])
    for column in expected.columns:
        # a column with no value at all: pandas' guess made its (empty) categories float
        if (
            isinstance(expected[column].dtype, pd.CategoricalDtype)
            and expected[column].isna().all()
        ):
            expected[column] = expected[column].astype(object).astype("category")
    pd.testing.assert_frame_equal(built, expected, check_exact=True)
    for column in ("tags", "child_digests", "parent_indexes"):  # lists, not arrays
        assert [repr(v) for v in built[column]] == [repr(v) for v in expected[column]]


@settings(max_examples=150, deadline=None)
@given(records)
def test_build_images_equals_the_obvious_construction(rows: list[dict]) -> None:
    assert_equals_the_obvious_construction(build_images([dict(r) for r in rows]), rows)


def test_times_in_any_zone_become_the_same_instant_in_utc() -> None:
    instant = datetime(2026, 11, 28, 3, 0, 0, 123456, tzinfo=UTC)
    rows = [
        {"repository": "ml/a", "digest": DIGESTS[i], "pushed_at": instant.astimezone(zone)}
        for i, zone in enumerate(ZONES)
    ]
    pushed = build_images(rows)["pushed_at"]
    assert str(pushed.dtype) == "datetime64[ns, UTC]"
    assert set(pushed) == {pd.Timestamp(instant)}
