"""The report's reclaimable bytes are never negative, and its two ways of counting agree.

A report's findings come from the scan, or from a file (``hygiene report --from-json``).
An image counts once, at the largest size a finding gives it, and never below 0 bytes:
the rows (:func:`hygiene.report.views.reclaimable_bytes` of dicts) did so, while the
columns the reports use (:class:`~hygiene.report.findingrows.FindingRows`) let an image
of negative size lower the total, below 0 when large enough.
"""

from __future__ import annotations

from typing import Any

from hygiene.report.findingrows import FindingRows
from hygiene.report.views import findings_by_rule, reclaimable_bytes

GIB = 2**30


def _finding(code: str, digest: str, size: int) -> dict[str, Any]:
    return {
        "code": code,
        "rule": code.lower(),
        "severity": "info",
        "fix_safety": "unsafe",
        "account": "851296927411",
        "region": "us-east-1",
        "repository": "suporte/api",
        "namespace": "suporte",
        "image_digest": digest,
        "bytes": size,
        "tags": [],
    }


def test_an_image_of_negative_size_lowers_no_total() -> None:
    rows = [
        _finding("IM002", "sha256:1", -50 * GIB),
        _finding("IM002", "sha256:2", 7 * GIB),
        _finding("IM003", "sha256:2", 7 * GIB),
        _finding("IM003", "sha256:3", -1),
    ]
    assert reclaimable_bytes(rows) == 7 * GIB
    assert reclaimable_bytes(FindingRows.of(rows)) == 7 * GIB
    by_rule = {g["code"]: g["bytes"] for g in findings_by_rule(FindingRows.of(rows))}
    assert by_rule == {"IM002": 7 * GIB, "IM003": 7 * GIB}


def test_objects_and_integers_count_alike() -> None:
    """Sizes given as text-free objects (a float, None) take the other path of the
    columns: the same totals."""
    rows = [_finding("IM002", "sha256:1", -3 * GIB), _finding("IM002", "sha256:2", GIB)]
    rows.append({**_finding("IM002", "sha256:3", 0), "bytes": None})
    assert reclaimable_bytes(rows) == reclaimable_bytes(FindingRows.of(rows)) == GIB
