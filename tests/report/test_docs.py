"""docs/reports.md says what is written: its folder listing is what generate() writes,
and its deliveries.json example has the keys deliveries are recorded with."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from hygiene.config import Config
from hygiene.notify import DeliveryResult, record_deliveries
from hygiene.notify.channels.base import PERSON_SCHEMES
from hygiene.report import generate
from tests.builders import REPO_ROOT
from tests.report import sample

DOC = REPO_ROOT / "docs" / "reports.md"


def _block(name: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {name}:begin -->\n```\w*\n(.*?)```\n<!-- {name}:end -->", text, re.S)
    assert found is not None, name
    return found.group(1)


def documented_tree() -> dict[str, list[str]]:
    """folder → file names, from the documented listing (comments dropped)."""
    tree: dict[str, list[str]] = {}
    folder = None
    for line in _block("files").splitlines()[1:]:
        name = line.split()[0]
        if line.startswith("  ") and not line.startswith("    "):
            folder = name.rstrip("/")
            tree[folder] = []
        elif folder is not None:
            tree[folder].append(name)
    return tree


def test_the_documented_folder_layout_is_what_is_written(config: Config, tmp_path: Path) -> None:
    nightly = sample.report_data()
    weekly = sample.report_data()
    weekly.run = {**weekly.run, "id": "r-20261130-0800"}
    weekly.generated_at = weekly.generated_at + timedelta(days=2)
    written = generate(nightly, config, "nightly", out_dir=tmp_path)
    written += generate(weekly, config, "weekly", namespaces=["ml"], out_dir=tmp_path)
    for report in written:  # what sending adds
        record_deliveries(report.files["html"].parent, [])
    actual = {
        folder.name: sorted(p.name for p in folder.iterdir())
        for folder in tmp_path.iterdir()
        if folder.name != "latest"
    }
    documented = documented_tree()
    latest = documented.pop("latest")
    assert latest == []  # described in words: the same names as the run folders
    assert documented == actual
    run_files = {name for names in actual.values() for name in names} - {"deliveries.json"}
    assert {p.name for p in (tmp_path / "latest").iterdir()} == run_files


def test_the_documented_deliveries_json_has_the_recorded_keys(tmp_path: Path) -> None:
    example = json.loads(_block("deliveries"))
    result = DeliveryResult("weekly-ml", "email", "a@b", True, 1, reached=("mailto:a@b",))
    recorded = json.loads(record_deliveries(tmp_path, [result]).read_text())
    for entry in example:
        assert set(entry) == set(recorded[0])
        for reached in entry["reached"]:
            assert reached.split(":")[0] + ":" in (*PERSON_SCHEMES, "slack:", "webhook:")
