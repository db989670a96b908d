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
