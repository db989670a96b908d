"""Report exports: the CSV and JSON files next to each report (every finding, proposal,
image, kept image and score), written chunk by chunk so a first scan's ~600,000 findings
need neither a DataFrame of objects nor one JSON string in memory.

Cells are plain text; a value starting with ``=+-@`` is neutralised so that a spreadsheet
never runs a repository or tag name as a formula.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from hygiene.report.actions import ImageRow
from hygiene.units import human_bytes

FINDING_COLUMNS = [
    "code", "rule", "severity", "namespace", "repository", "image_digest", "tags", "bytes",
    "fix_safety", "message", "fix", "account", "region", "details",
]  # fmt: skip
PROPOSAL_COLUMNS = [
    "id", "state", "action", "namespace", "repository", "fix_safety", "rule_codes", "images",
    "tags", "bytes", "size", "summary", "first_seen", "grace_until", "account", "region",
    "target", "evidence",
]  # fmt: skip
IMAGE_COLUMNS = [
    "proposal", "state", "rule_codes", "namespace", "repository", "digest", "tags", "untagged",
    "pushed_at", "age_days", "last_pull", "bytes", "size", "grace_until", "account", "region",
]  # fmt: skip
KEPT_COLUMNS = ["repository", "image_digest", "tags", "reasons", "account", "region"]
SCORE_COLUMNS = ["repository", "score", "grade", "codes", "images", "bytes", "scan_error"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_proposals(
    proposals: Iterable[dict[str, Any]], images_of: Mapping[str, list[ImageRow]]
) -> list[dict[str, Any]]:
    """Proposals as exported: each with its image count, every tag of its images and its
    size in the reports' unit (bytes stay too)."""
    rows = []
    for proposal in proposals:
        images = images_of.get(str(proposal.get("id")), [])
        tags = sorted({t for row in images for t in row.tags})
        rows.append(
            {
                **proposal,
                "images": len(images) or len((proposal.get("target") or {}).get("digests") or []),
                "tags": tags,
                "size": human_bytes(int(proposal.get("bytes") or 0)),
            }
        )
    return rows


def export_images(
    proposals: Iterable[dict[str, Any]], images_of: Mapping[str, list[ImageRow]]
) -> list[dict[str, Any]]:
    """One row per image an open deletion proposal would delete."""
    rows = []
    for proposal in proposals:
        for row in images_of.get(str(proposal.get("id")), []):
            rows.append(
                {
                    **row.to_json(),
                    "state": proposal.get("state"),
                    "namespace": proposal.get("namespace"),
                    "size": human_bytes(row.bytes),
                    "grace_until": proposal.get("grace_until"),
                    "account": proposal.get("account"),
                    "region": proposal.get("region"),
                }
            )
    return rows


def _csv_cell(value: Any) -> Any:
    """Plain cell text; lists and dicts as JSON; a leading ``=+-@`` is neutralised so a
    spreadsheet never runs a repository or tag name as a formula."""
    if isinstance(value, list | tuple):
        value = (
            " ".join(str(v) for v in value)
            if all(isinstance(v, str) for v in value)
            else (json.dumps(list(value), ensure_ascii=False, default=str))
        )
    elif isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        value = "'" + value
    return value


def export_frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    records = [{c: _csv_cell(row.get(c)) for c in columns} for row in rows]
    return pd.DataFrame.from_records(records, columns=columns)


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    """``export_frame(rows, columns).to_csv(path)``'s bytes, written with the csv module
    when every column holds only text (or only integers): the same quoting and line ends
    as pandas, in a fraction of the time and, chunk by chunk, of the memory for a first
    scan's ~600,000 findings. Columns that pandas would turn into floats (integers with
    gaps, numbers) go through pandas."""
    kinds = [{type(row.get(c)) for row in rows} for c in columns]
    # text, lists and dicts become text (or stay missing); integers alone stay integers
    if not all(k <= {str, type(None), list, dict} or k == {int} for k in kinds):
        export_frame(rows, columns).to_csv(path, index=False, encoding="utf-8")
        return path
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for start in range(0, len(rows), CSV_CHUNK):
            batch = rows[start : start + CSV_CHUNK]
            cells = [_csv_column([row.get(c) for row in batch]) for c in columns]
            writer.writerows(zip(*cells, strict=True))
    return path


CSV_CHUNK = 20_000


def _csv_column(values: list[Any]) -> list[Any]:
    """``[_csv_cell(v) for v in values]``, with the common columns (all text, all lists
    of text, all dicts) done without asking each cell what it is."""
    kinds = {type(v) for v in values}
    if kinds <= {str, type(None)}:
        return [("'" + v) if v is not None and v.startswith(_FORMULA_START) else v for v in values]
    if kinds == {dict}:  # JSON starts with "{": never a formula
        return [json.dumps(v, ensure_ascii=False, sort_keys=True, default=str) for v in values]
    if kinds == {list} and all(type(x) is str for v in values for x in v):
        return [_csv_cell(" ".join(v)) for v in values]
    return [_csv_cell(v) for v in values]


def _export_json(path: Path, rows: list[dict[str, Any]]) -> Path:
    """``json.dumps(rows, ensure_ascii=False, indent=2, sort_keys=True, default=str)``
    and a newline, encoded by orjson chunk by chunk (times and dataclasses still go
    through ``str``)."""
    from hygiene.jsonout import write_list

    options = (
        orjson.OPT_SORT_KEYS
        | orjson.OPT_NON_STR_KEYS
        | orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_DATACLASS
    )
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as out:
        chunks = (rows[i : i + CSV_CHUNK] for i in range(0, len(rows), CSV_CHUNK))
        write_list(out, chunks, option=options, default=str)
        out.write(b"\n")
    tmp.replace(path)
    return path
