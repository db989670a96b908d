"""One unit system: binary sizes with IEC names in the CLI, reports, exports and docs."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hygiene.report.format import Formatter
from hygiene.units import human_bytes, split_size
from tests.builders import REPO_ROOT


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (5_410_000_000, "5.0 GiB"),
        (480_245_554_375, "447.3 GiB"),  # the demo registry: 447.3 GiB everywhere
        (2_500_000_000_000, "2.3 TiB"),
        (-3 * 1024**3, "-3.0 GiB"),
    ],
)
def test_human_bytes(size: int, text: str) -> None:
    assert human_bytes(size) == text


@pytest.mark.parametrize("size", [0, 512, 1536, 5_410_000_000, 480_245_554_375, -(1024**2)])
def test_the_cli_and_the_reports_say_the_same_size(size: int) -> None:
    report = Formatter(locale="en", timezone="UTC", usd_per_gib_month=0.1).size(size)
    assert report.replace("\u00a0", " ") == human_bytes(size)
    pt = Formatter(locale="pt_BR", timezone="UTC", usd_per_gib_month=0.1).size(size)
    assert pt.replace("\u00a0", " ") == human_bytes(size).replace(".", ",")


def test_no_decimal_units_left_in_code_templates_or_docs() -> None:
    """GB/MB/KB/TB for sizes are gone; "GB-month" (AWS's price unit) may stay."""
    files = [*REPO_ROOT.glob("hygiene/**/*.py"), *REPO_ROOT.glob("reports/*.*")]
    files += [*REPO_ROOT.glob("docs/*.md"), REPO_ROOT / "README.md"]
    decimal = re.compile(r"\d\s?(?:KB|MB|GB|TB)\b(?!-month)")
    found = [
        f"{path.relative_to(REPO_ROOT)}: {match.group(0)}"
        for path in files
        for match in decimal.finditer(path.read_text(encoding="utf-8"))
    ]
    assert found == []


@given(
    st.one_of(
        st.integers(-(2**80), 2**80),
        st.integers(0, 60).flatmap(lambda n: st.sampled_from([2**n - 1, 2**n, 2**n + 1])),
        st.integers(0, 7).map(lambda n: 1024**n - 1),
    )
)
def test_human_bytes_of_an_integer_is_the_loops_answer(size: int) -> None:
    """The unit comes from the bit length for integers; the loop in split_size says."""
    amount, unit = split_size(size)
    assert human_bytes(size) == (f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}")
