"""``hygiene scan``'s snapshot: written in a thread while the scan evaluates, whole or not
at all, and kept when evaluating fails (:func:`hygiene.scan.evaluate_and_save`,
:func:`hygiene.inventory.write_snapshot`)."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import hygiene.scan
from hygiene.cli import cli
from hygiene.inventory import read_snapshot, write_snapshot
from hygiene.scan import evaluate, evaluate_and_save
from hygiene_demo.registry import EmbeddedRegistry
from tests import builders
from tests.builders import NOW, image_row, inventory

ROWS = [image_row(f"img{n}", "ml/api", tags=[f"v{n}"], pushed_days_ago=400 + n) for n in range(12)]


class RuleBroke(Exception):
    pass


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_a_snapshot_that_fails_while_written_leaves_nothing_under_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "scan.parquet"
    older = write_snapshot(inventory(ROWS[:3]), path)  # an earlier snapshot of that name
    written = path.read_bytes()

    def half_written(table: Any, where: Any, **_: Any) -> None:
        Path(where).write_bytes(b"PAR1 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", half_written)
    with pytest.raises(OSError, match="No space left"):
        write_snapshot(inventory(ROWS), path)
    assert older.read_bytes() == written  # neither replaced nor cut
    assert _files(tmp_path) == ["scan.parquet"]  # and no partial file left behind


def test_a_snapshot_is_written_whole_under_its_name(tmp_path: Path) -> None:
    path = write_snapshot(inventory(ROWS), tmp_path / "deep" / "scan.parquet")
    assert _files(path.parent) == ["scan.parquet"]
    assert (
        read_snapshot(path).images["digest"].tolist() == inventory(ROWS).images["digest"].tolist()
    )


def test_the_snapshot_is_written_while_the_scan_evaluates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writing = threading.Event()
    save = hygiene.scan.save_snapshot

    def save_snapshot(inventory: Any, directory: Path) -> Path:
        writing.set()
        return save(inventory, directory)

    def rules_waiting_for_the_snapshot(inventory: Any, config: Any, now: Any) -> Any:
        # written one after the other, the snapshot would start only after this returned
        assert writing.wait(30), "the snapshot did not start while the rules ran"
        return evaluate_rules(inventory, config, now)

    evaluate_rules = hygiene.scan.evaluate_rules
    monkeypatch.setattr(hygiene.scan, "save_snapshot", save_snapshot)
    monkeypatch.setattr(hygiene.scan, "evaluate_rules", rules_waiting_for_the_snapshot)
    config = builders.config()
    alongside = evaluate_and_save(inventory(ROWS), config, NOW, tmp_path / "snaps")
    alone = evaluate(inventory(ROWS), config, NOW)
    assert alongside.snapshot == tmp_path / "snaps" / "test.parquet"
    assert read_snapshot(alongside.snapshot).images["digest"].tolist() == (
        inventory(ROWS).images["digest"].tolist()
    )
    # the same result as evaluating alone
    assert [f.to_json() for f in alongside.findings] == [f.to_json() for f in alone.findings]
    assert [p.to_json() for p in alongside.proposals] == [p.to_json() for p in alone.proposals]


@pytest.mark.parametrize("error", [RuleBroke("a rule broke"), KeyboardInterrupt()])
def test_evaluating_fails_after_the_snapshot_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    save = hygiene.scan.save_snapshot
    finished = threading.Event()

    def slow_save(inventory: Any, directory: Path) -> Path:
        time.sleep(0.3)  # still writing when the rules fail
        path = save(inventory, directory)
        finished.set()
        return path

    def broken_rules(*_: Any) -> Any:
        raise error

    monkeypatch.setattr(hygiene.scan, "save_snapshot", slow_save)
    monkeypatch.setattr(hygiene.scan, "evaluate_rules", broken_rules)
    with pytest.raises(type(error)) as raised:
        evaluate_and_save(inventory(ROWS), builders.config(), NOW, tmp_path)
    assert raised.value is error  # the rules' own error, not the snapshot's
    assert finished.is_set()  # waited for: no thread still writing behind the error
    assert len(read_snapshot(tmp_path / "test.parquet").images) == len(ROWS)


def test_a_snapshot_that_cannot_be_written_fails_the_scan(tmp_path: Path) -> None:
    (tmp_path / "snaps").write_text("a file, not a directory")
    with pytest.raises(OSError):
        evaluate_and_save(inventory(ROWS), builders.config(), NOW, tmp_path / "snaps")


def test_when_both_fail_the_rules_error_is_raised_and_the_snapshot_error_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_rules(*_: Any) -> Any:
        raise RuleBroke("a rule broke")

    monkeypatch.setattr(hygiene.scan, "evaluate_rules", broken_rules)
    (tmp_path / "snaps").write_text("a file, not a directory")
    with caplog.at_level(logging.ERROR, logger="hygiene.background"), pytest.raises(RuleBroke):
        evaluate_and_save(inventory(ROWS), builders.config(), NOW, tmp_path / "snaps")
    assert [r.getMessage() for r in caplog.records] == ["writing the snapshot failed too"]
    assert caplog.records[0].exc_info is not None


def test_a_scan_whose_rules_fail_keeps_its_snapshot(
    ecr: EmbeddedRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: the scan read the registry, a rule failed; the inventory it read is
    in the snapshot directory, whole, for ``--from-snapshot`` once the rule is mended."""
    ecr.client().create_repository(repositoryName="ml/trainer")
    rules = builders.write_rules(tmp_path / "rules", builders.shipped_policy())

    def broken_rules(*_: Any) -> Any:
        raise RuleBroke("a rule broke")

    monkeypatch.setattr(hygiene.scan, "evaluate_rules", broken_rules)
    args = ["scan", "--rules-dir", str(rules), "--endpoint-url", ecr.endpoint_url]
    args += ["--format", "json", "--snapshot-dir", str(tmp_path / "snaps")]
    result = CliRunner().invoke(cli, args)
    assert isinstance(result.exception, RuleBroke)
    assert result.stdout == ""  # no document for a scan that was not evaluated
    (snapshot,) = (tmp_path / "snaps").iterdir()
    assert snapshot.suffix == ".parquet" and not snapshot.name.startswith(".")
    kept = read_snapshot(snapshot)
    assert kept.repositories["name"].tolist() == ["ml/trainer"]

    monkeypatch.undo()
    again = CliRunner().invoke(
        cli,
        ["scan", "--rules-dir", str(rules), "--from-snapshot", str(snapshot)]
        + ["--format", "json", "--fail-on", "never"],
    )
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["inventory"]["repositories"] == 1
