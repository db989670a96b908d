"""``hygiene report``: from a saved scan JSON (+ history, snapshot) to files, and --send."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hygiene.cli import main
from hygiene.inventory import write_snapshot
from tests.builders import RULES_DIR
from tests.report import sample


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


@pytest.fixture
def saved(tmp_path: Path) -> dict[str, Path]:
    scan = tmp_path / "scan.json"
    scan.write_text(json.dumps(sample.scan_json()))
    history = tmp_path / "history.json"
    history.write_text(json.dumps([h.to_json() for h in sample.history()]))
    snapshot = write_snapshot(sample.inventory(), tmp_path / "snapshot.parquet")
    return {"scan": scan, "history": history, "snapshot": snapshot}


def test_weekly_from_saved_scan(
    saved: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    code, out, _ = run(
        [
            "report",
            "weekly",
            "--namespace",
            "suporte",
            "--from-json",
            str(saved["scan"]),
            "--history-json",
            str(saved["history"]),
            "--snapshot",
            str(saved["snapshot"]),
            "--out",
            str(out_dir),
            "--rules-dir",
            str(RULES_DIR),
        ],
        capsys,
    )
    assert code == 0
    html = next(out_dir.glob("2026-*/weekly-suporte.html"))
    assert f"weekly-suporte: {html}" in out
    assert out.strip().endswith(f"latest: {out_dir / 'latest'}/")
    assert (out_dir / "latest" / "weekly-suporte.html").read_bytes() == html.read_bytes()
    page = html.read_text(encoding="utf-8")
    assert "Relatório semanal de suporte" in page
    assert "suporte/cloud/api" in page  # repository sizes came from the snapshot
    assert "23 de nov. de 2026" in page  # trend from the history, one bar per day
    assert (html.parent / "weekly-suporte-findings.csv").is_file()


def test_nightly_locale_override(
    saved: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run(
        [
            "report",
            "nightly",
            "--locale",
            "pt_BR",
            "--from-json",
            str(saved["scan"]),
            "--out",
            str(tmp_path),
            "--rules-dir",
            str(RULES_DIR),
        ],
        capsys,
    )
    assert code == 0
    assert (
        "Higiene do registro de imagens: relatório noturno"
        in next(tmp_path.glob("2026-*/nightly.html")).read_text()
    )


def test_send_with_notify_off_writes_files_and_says_so(
    saved: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        [
            "report",
            "nightly",
            "--send",
            "--from-json",
            str(saved["scan"]),
            "--out",
            str(tmp_path),
            "--rules-dir",
            str(RULES_DIR),
        ],
        capsys,
    )
    assert code == 0
    assert "nothing sent" in err
    assert json.loads(next(tmp_path.glob("*/deliveries.json")).read_text()) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON"),
        ('{"run": {}}', "missing top-level key 'inventory'"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_input_is_a_usage_error(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, _, err = run(
        [
            "report",
            "nightly",
            "--from-json",
            str(bad),
            "--out",
            str(tmp_path),
            "--rules-dir",
            str(RULES_DIR),
        ],
        capsys,
    )
    assert code == 2
    assert message in err


def test_namespace_only_for_weekly(
    saved: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        [
            "report",
            "nightly",
            "--namespace",
            "ml",
            "--from-json",
            str(saved["scan"]),
            "--rules-dir",
            str(RULES_DIR),
        ],
        capsys,
    )
    assert code == 2 and "weekly reports only" in err


def test_unknown_namespace(
    saved: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        [
            "report",
            "weekly",
            "-n",
            "nope",
            "--from-json",
            str(saved["scan"]),
            "--out",
            str(tmp_path),
            "--rules-dir",
            str(RULES_DIR),
        ],
        capsys,
    )
    assert code == 2 and "unknown namespace 'nope'" in err


def test_help_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["report", "--help"], capsys)
    assert code == 0
    for option in ("--namespace", "--out", "--send", "--locale", "--from-json", "--history-json"):
        assert option in out
