"""The one size formatter of the CLI, plan summaries and lifecycle previews."""

from __future__ import annotations

import pytest

from hygiene.units import human_bytes


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 KB"),
        (5_410_000_000, "5.4 GB"),
        (480_245_554_375, "480.2 GB"),
        (2_500_000_000_000, "2.5 TB"),
    ],
)
def test_human_bytes(size: int, text: str) -> None:
    assert human_bytes(size) == text
