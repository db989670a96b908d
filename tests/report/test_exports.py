"""The report's exports as written by ``write_exports``: the proposals' CSV evidence
cell without the per-image lists (the JSON keeps the whole evidence), every other cell
unchanged; checked against the pandas path on the rows the cells are made from.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.rules import bench_config, synthetic_inventory
from hygiene.report import exports, render
from hygiene.rules import evaluate
from tests.builders import NOW

EXCEL_CELL_LIMIT = 32_767  # characters in one cell


def pandas_csv(rows: Sequence[Mapping[str, Any]], columns: list[str]) -> bytes:
    buffer = io.StringIO()
    exports.export_frame([dict(r) for r in rows], columns).to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")


def synthetic_report(images: int = 3_000, repositories: int = 30) -> render.RenderedReport:
    from hygiene.jobs import scan_document
    from hygiene.report.data import build_report_data
    from hygiene.scan import plan_all

    inventory = synthetic_inventory(images, repositories)
    config = bench_config()
    evaluation = evaluate(inventory, config, NOW, in_use=[])
    proposals = plan_all(evaluation, inventory, config, NOW)

    class Job:
        kind, run_id, started_at, counts, errors = "nightly", "r-1", NOW, {}, []
        status = type("Status", (), {"value": "ok"})()

    document = scan_document(Job, inventory, evaluation, proposals)  # type: ignore[arg-type]
    return render.render_nightly(build_report_data(document, inventory=inventory), config)


# --------------------------------------------------------------------------- decision 3

DELETE_IMAGES_EVIDENCE = {
    "images": [{"digest": "sha256:a", "tags": ["v1"], "bytes": 3}],
    "units": [["sha256:a"]],
    "rule_codes": {"sha256:a": ["IM002"]},
    "in_use_checked": ["ecs"],
}
REPOSITORY_EVIDENCE = {
    "rule_codes": ["RP003"],
    "image_count": 1,
    "created_at": "2025-01-01T00:00:00+00:00",
    "images": [{"digest": "sha256:b", "tags": [], "bytes": 5}],
}


def test_evidence_cell_leaves_out_what_is_listed_image_by_image() -> None:
    assert exports.evidence_cell(DELETE_IMAGES_EVIDENCE) == {"in_use_checked": ["ecs"]}
    assert exports.evidence_cell(REPOSITORY_EVIDENCE) == {
        "rule_codes": ["RP003"],  # the repository's codes, not a mapping by digest
        "image_count": 1,
        "created_at": "2025-01-01T00:00:00+00:00",
    }
    policy = {"policy": '{"Statement": []}'}
    assert exports.evidence_cell(policy) == policy
    assert exports.evidence_cell(None) is None and exports.evidence_cell("text") == "text"
    assert "images" in DELETE_IMAGES_EVIDENCE  # the proposal's own evidence is not changed


def test_proposals_csv_evidence_without_images_and_json_with_them(tmp_path: Path) -> None:
    rows = [
        {"id": "p-1", "action": "delete-images", "evidence": DELETE_IMAGES_EVIDENCE},
        {"id": "p-2", "action": "delete-repository", "evidence": REPOSITORY_EVIDENCE},
        {"id": "p-3", "action": "put-lifecycle-policy", "evidence": {"policy": "=x"}},
        {"id": "p-4", "action": "delete-images"},  # no evidence at all
    ]
    files = exports.write_exports(tmp_path, "n", {"proposals": rows})
    csv = pd.read_csv(files["proposals_csv"], keep_default_na=False)
    cells = [json.loads(c) if c else None for c in csv["evidence"]]
    assert cells == [
        {"in_use_checked": ["ecs"]},
        {"rule_codes": ["RP003"], "image_count": 1, "created_at": "2025-01-01T00:00:00+00:00"},
        {"policy": "=x"},
        None,
    ]
    written = json.loads(files["proposals_json"].read_text(encoding="utf-8"))
    assert [r.get("evidence") for r in written] == [r.get("evidence") for r in rows]
    # every other cell as before: the pandas path of the rows with the evidence cell made
    made = [{**r, "evidence": exports.evidence_cell(r.get("evidence"))} for r in rows]
    assert files["proposals_csv"].read_bytes() == pandas_csv(made, exports.PROPOSAL_COLUMNS)
    (tmp_path / "csv").mkdir()
    only_csv = exports.write_exports(tmp_path / "csv", "n", {"proposals": rows}, ("csv",))
    assert set(only_csv) == {"proposals_csv"}
    assert only_csv["proposals_csv"].read_bytes() == files["proposals_csv"].read_bytes()


def test_proposals_csv_of_a_registry_fits_spreadsheet_cells(tmp_path: Path) -> None:
    report = render.write_report(synthetic_report(), tmp_path, ("csv", "json"))
    rows = list(report.proposals)
    deletions = [r for r in rows if r["action"] == "delete-images"]
    assert deletions and max(len(r["evidence"]["images"]) for r in deletions) > 100
    made = [{**r, "evidence": exports.evidence_cell(r.get("evidence"))} for r in rows]
    written = report.files["proposals_csv"].read_bytes()
    assert written == pandas_csv(made, exports.PROPOSAL_COLUMNS)
    frame = pd.read_csv(report.files["proposals_csv"], keep_default_na=False)
    assert max(frame["evidence"].str.len()) < 1_000  # no longer grows with the images
    # the JSON export still carries every image of every deletion
    written_json = json.loads(report.files["proposals_json"].read_text(encoding="utf-8"))
    assert [r["evidence"] for r in written_json] == json.loads(
        json.dumps([r["evidence"] for r in rows], default=str)
    )
