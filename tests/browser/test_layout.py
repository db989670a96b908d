"""Every report, full and as mailed, laid out by a real browser at phone and desktop
width: nothing is wider than the screen. Screenshots go to reports/out/screenshots/ for
people to look at (the demo's reports are checked the same way in tests/test_demo.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hygiene.config import Config
from hygiene.report import ReportData, render_nightly, render_weekly, write_report
from tests.browser.chromium import DESKTOP, PHONE, inner_text, layout
from tests.builders import REPO_ROOT
from tests.report import sample

SCREENSHOTS = REPO_ROOT / "reports" / "out" / "screenshots"
# a legacy cosign signature tag: one 76-character token that must break, not overflow
SIGNATURE_TAG = "sha256-" + "9a3c" * 16 + ".sig"


def long_token_data() -> ReportData:
    """The sample registry with what overflowed before: a signature tag on an image that
    goes, a long repository path and a long namespace in the charts."""
    data = sample.report_data(incomplete=True)
    proposal = next(p for p in data.proposals if p["repository"] == "ml/training")
    proposal["evidence"]["images"][0]["tags"] = ["v1.4.0", SIGNATURE_TAG]
    long_repo = "ml/" + "very-long-repository-name-" * 4 + "end"
    data.proposals.append({**proposal, "id": "p-00000000long", "repository": long_repo})
    return data


@pytest.fixture(scope="module")
def written(config: Config, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    data = long_token_data()
    out = tmp_path_factory.mktemp("layout")
    reports = [render_nightly(data, config), render_nightly(data, config, locale="pt_BR")]
    reports += [render_weekly(data, config, ns) for ns in ("suporte", "ml", "eureca")]
    files = []
    for report in reports:
        folder = out / report.locale
        write_report(report, folder, exports=("csv",))
        files += [report.files["html"], report.files["mail_html"]]
    return files


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_no_report_is_wider_than_the_screen(written: list[Path], chromium: Any, width: int) -> None:
    checked = []
    for html in written:
        shot_dir = SCREENSHOTS / "sample" / html.parent.name
        result = layout(chromium, html, width, shot_dir)
        assert result.fits, (html.name, width, result.scroll_width, result.overflowing)
        assert result.screenshot is not None and result.screenshot.stat().st_size > 10_000
        checked.append(html.name)
    assert len(checked) == 10


def test_phone_layout_stacks_table_rows_as_labelled_cards(
    written: list[Path], chromium: Any
) -> None:
    weekly = next(p for p in written if p.name == "weekly-ml.html")
    page = chromium.new_page()
    try:
        rows_of_figures = {}
        for width, display in ((PHONE, "block"), (DESKTOP, "table-cell")):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(weekly.resolve().as_uri())
            cell = page.locator("table.data td[data-label]").first
            assert cell.evaluate("e => getComputedStyle(e).display") == display
            label = cell.evaluate("e => getComputedStyle(e, '::before').content")
            # on a phone, each value has its column's name in front of it
            assert label == ('"Repository: "' if width == PHONE else "none")
            tops = page.locator(".kpi").evaluate_all("els => els.map(e => e.offsetTop)")
            rows_of_figures[width] = len(set(tops))
        # the key figures wrap into two rows on a phone instead of one row that never wraps
        assert rows_of_figures == {PHONE: 2, DESKTOP: 1}
    finally:
        page.close()


def test_the_long_signature_tag_breaks_inside_its_cell(written: list[Path], chromium: Any) -> None:
    weekly = next(p for p in written if p.name == "weekly-ml.html")
    text = inner_text(chromium, weekly, DESKTOP)
    assert SIGNATURE_TAG[:20] in text.replace("\n", "")
    page = chromium.new_page()
    try:
        page.set_viewport_size({"width": DESKTOP, "height": 900})
        page.goto(weekly.resolve().as_uri())
        tag = page.locator(f"text={SIGNATURE_TAG}").first
        box = tag.bounding_box()
        group = page.locator(".group").first.bounding_box()
        assert box is not None and group is not None
        assert box["x"] + box["width"] <= group["x"] + group["width"]
    finally:
        page.close()
