"""The one timestamp formatter of the JSON outputs and the one reader of text cells."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from hygiene.inventory import cell_text
from hygiene.model import iso_utc


def test_iso_utc_writes_utc_with_an_offset() -> None:
    fortaleza = timezone(timedelta(hours=-3))
    assert iso_utc(datetime(2026, 11, 28, 0, 0, tzinfo=fortaleza)) == "2026-11-28T03:00:00+00:00"
    assert iso_utc(None) is None


def test_iso_utc_reads_frame_cells_as_before() -> None:
    # proposal ids hash these strings: frame cells must format as pandas did
    column = pd.Series(
        pd.to_datetime(["2026-11-28T03:04:05.123456789Z", None], utc=True, format="ISO8601")
    )
    stamp, missing = column.tolist()
    assert iso_utc(stamp) == pd.Timestamp(stamp).tz_convert("UTC").isoformat()
    assert iso_utc(stamp) == "2026-11-28T03:04:05.123456789+00:00"
    assert missing is pd.NaT and iso_utc(missing) is None


@pytest.mark.parametrize(
    ("cell", "text"),
    [(None, None), (pd.NA, None), (np.nan, None), ("", ""), ("{}", "{}"), ("NA", "NA")],
)
def test_cell_text(cell: object, text: str | None) -> None:
    assert cell_text(cell) == text


def test_cell_text_of_a_string_column() -> None:
    column = pd.Series(["a", None], dtype="string")
    assert [cell_text(v) for v in column] == ["a", None]
