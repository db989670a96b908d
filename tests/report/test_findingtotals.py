"""The findings CSV's image findings counted per rule and repository
(:mod:`hygiene.report.findingtotals`), against an obvious count over each finding's own
JSON row, on a seeded synthetic registry."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hygiene.config import ReportSettings
from hygiene.findingtable import NAT, ImageFindings
from hygiene.report import exports
from hygiene.report.findingrows import FindingRows
from hygiene.report.findingtotals import GROUP, total_rows
from tests.conftest import examples
from tests.report.test_findingrows import synthetic_rows


def csv_columns(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the findings CSV writes of each row."""
    return [{k: row.get(k) for k in exports.FINDING_TOTAL_COLUMNS} for row in rows]


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def obvious_totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each finding's row, grouped by hand: image findings per rule and repository, one
    total row per group of two or more, the finding's own row for a group of one."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    rest = []
    for row in rows:
        if row.get("image_digest") is None:
            rest.append({**row, "images": None})
        else:
            groups.setdefault(tuple(row[k] for k in GROUP), []).append(row)
    out = []
    for members in groups.values():
        if len(members) == 1:
            out.append({**members[0], "images": 1})
            continue
        first = members[0]
        pushed = [m["details"]["pushed_at"] for m in members if m["details"]["pushed_at"]]
        pulled = [m["details"]["last_pull"] for m in members if m["details"]["last_pull"]]
        digest = first["image_digest"]
        out.append(
            {
                **{k: first[k] for k in [*GROUP, "fix"]},
                "image_digest": None,
                "tags": None,
                "images": len(members),
                "bytes": sum(m["bytes"] for m in members),
                "message": f"{len(members)} images, for example {digest[:19]}: " + first["message"],
                "details": {
                    "example": digest,
                    "oldest_push": min(pushed, key=moment) if pushed else None,
                    "newest_push": max(pushed, key=moment) if pushed else None,
                    "latest_pull": max(pulled, key=moment) if pulled else None,
                },
            }
        )
    return out + rest


@pytest.fixture(scope="module")
def rows() -> FindingRows:
    made = synthetic_rows(3_000, 30)
    assert made.image is not None
    image = made.image
    image.pushed_at[5] = NAT  # a time the registry did not give
    same = [i for i in range(len(image)) if image.repository[i] == image.repository[0]]
    image.pushed_at[[i for i in same if image.rule[i] == image.rule[0]]] = NAT  # a group's all
    image.last_pull[: len(image) // 3] = NAT  # whole groups never pulled
    return made


def shuffled(image: ImageFindings, seed: int) -> ImageFindings:
    """``image`` in another order: a group's findings no longer next to each other."""
    order = np.random.default_rng(seed).permutation(len(image)).tolist()
    offsets = image.unit_offsets.tolist()
    spans = [(offsets[i], offsets[i + 1]) for i in order]
    lists = {
        name: [getattr(image, name)[i] for i in order]
        for name in ("account", "region", "repository", "namespace", "tags", "message",
                     "details", "also")
    }  # fmt: skip
    arrays = {
        name: getattr(image, name)[order]
        for name in ("rule", "rows", "bytes", "pushed_at", "last_pull")
    }
    return ImageFindings(
        rules=image.rules,
        unit_offsets=np.array([0, *itertools.accumulate(b - a for a, b in spans)]),
        unit_digests=[d for a, b in spans for d in image.unit_digests[a:b]],
        unit_rows=np.array([r for a, b in spans for r in image.unit_rows[a:b]], dtype=np.int64),
        **lists,
        **arrays,
    )


def test_totals_from_the_columns_equal_the_obvious_count(rows: FindingRows) -> None:
    plain = list(rows)
    totals = total_rows(rows)
    assert csv_columns(totals) == csv_columns(obvious_totals(plain))
    assert sum(t["images"] or 1 for t in totals) == len(rows)  # every finding counted once
    counted = [t for t in totals if (t["images"] or 0) > 1]
    assert counted and len(totals) < len(rows) // 5  # the point: far fewer rows
    assert any(t["details"]["latest_pull"] is None for t in counted)
    # the same rows given as rows (no columns) are counted alike
    assert csv_columns(total_rows(FindingRows.of(plain))) == csv_columns(totals)
    assert csv_columns(total_rows(plain)) == csv_columns(totals)


def test_totals_of_findings_in_any_order(rows: FindingRows) -> None:
    assert rows.image is not None
    mixed = FindingRows(shuffled(rows.image, 7), rows.other)
    totals = total_rows(mixed)
    assert csv_columns(totals) == csv_columns(obvious_totals(list(mixed)))
    assert len(totals) == len(total_rows(rows))
    assert any(t["details"]["oldest_push"] is None for t in totals if (t["images"] or 0) > 1)


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(0, 2**32 - 1), share=st.floats(0.01, 1.0))
def test_totals_of_a_selection(rows: FindingRows, seed: int, share: float) -> None:
    # the weekly report's findings: those of one namespace, any subset in order
    mask = np.random.default_rng(seed).random(len(rows)) < share
    picked = rows.select(mask)
    assert csv_columns(total_rows(picked)) == csv_columns(obvious_totals(list(picked)))


def test_findings_csv_per_repository_by_default(rows: FindingRows, tmp_path: Path) -> None:
    files = exports.write_exports(tmp_path, "n", {"findings": rows})
    text = files["findings_csv"].read_text(encoding="utf-8")
    read = list(csv.DictReader(io.StringIO(text)))
    assert list(read[0]) == exports.FINDING_TOTAL_COLUMNS
    assert sum(int(r["images"] or 1) for r in read) == len(rows)
    assert {r["images"] for r in read if not r["image_digest"]} - {""} != set()
    assert all("." not in r["images"] for r in read)  # counts, never pandas' 3.0
    assert b"sha256:" in files["findings_csv"].read_bytes()
    # one row per image finding when asked for: the bytes of the per-image writer
    (tmp_path / "each").mkdir()
    each = exports.write_exports(tmp_path / "each", "n", {"findings": rows}, ("csv",), "per_image")
    assert each["findings_csv"].read_bytes() == (
        exports.write_findings_csv(tmp_path / "plain.csv", rows).read_bytes()
    )
    with pytest.raises(ValueError, match="image_findings"):
        exports.write_exports(tmp_path, "n", {"findings": rows}, ("csv",), "per_row")


def test_the_setting_is_checked() -> None:
    assert ReportSettings().image_findings_csv == "per_repository"
    assert ReportSettings(image_findings_csv="per_image").image_findings_csv == "per_image"
    with pytest.raises(ValidationError, match="image_findings_csv"):
        ReportSettings(image_findings_csv="per_row")  # type: ignore[arg-type]


def test_times_of_rows_compare_as_times() -> None:
    # as text, "…00Z" sorts after "…00.500000Z"; as times it is half a second earlier
    def row(digest: str, pushed: str, pulled: str | None) -> dict[str, Any]:
        return {
            "code": "IM002", "rule": "stale-image", "severity": "info", "fix_safety": "unsafe",
            "account": "1", "region": "r", "repository": "ml/a", "namespace": "ml",
            "fix": "f", "image_digest": digest, "tags": [], "bytes": 2**53, "message": "m",
            "details": {"pushed_at": pushed, "last_pull": pulled},
        }  # fmt: skip

    rows = [
        row("sha256:a", "2025-01-01T00:00:00Z", None),
        row("sha256:b", "2025-01-01T00:00:00.500000Z", "2025-02-01T00:00:00Z"),
        row("sha256:c", "2024-12-31T23:00:00-02:00", "2025-02-01T00:00:00.250000Z"),
    ]
    [total] = total_rows(rows)
    assert total["images"] == 3 and total["bytes"] == 3 * 2**53
    assert total["details"] == {
        "example": "sha256:a",
        "oldest_push": "2025-01-01T00:00:00Z",
        "newest_push": "2024-12-31T23:00:00-02:00",
        "latest_pull": "2025-02-01T00:00:00.250000Z",
    }
    assert total["message"] == "3 images, for example sha256:a: m"
