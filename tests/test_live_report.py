"""``hygiene report`` and ``hygiene lifecycle`` without a saved scan: a live, read-only
scan of the registry (the moto server, reached through AWS_ENDPOINT_URL as boto3 does)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene_demo.registry import EmbeddedRegistry
from tests.builders import RULES_DIR

OCI = "application/vnd.oci.image.manifest.v1+json"


def _push(ecr: EmbeddedRegistry, repository: str, tag: str | None, salt: str) -> str:
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI,
            "config": {"mediaType": "x", "digest": "sha256:" + "d" * 64, "size": 4096},
            "layers": [{"mediaType": "l", "digest": "sha256:" + salt * 64, "size": 1}],
        }
    )
    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    image = ecr.backend().put_image(repository, manifest, tag, OCI, digest)
    image.image_pushed_at = 1_600_000_000  # 2020: old enough to be untagged leftovers
    return digest


@pytest.fixture
def live(ecr: EmbeddedRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AWS_ENDPOINT_URL", ecr.endpoint_url)
    monkeypatch.setenv("HYGIENE_STORE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    ecr.client().create_repository(repositoryName="ml/trainer")
    _push(ecr, "ml/trainer", "v1", "1")
    _push(ecr, "ml/trainer", None, "2")
    return tmp_path


def test_live_nightly_report(live: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = live / "out"
    code = run_cli(cli, ["report", "nightly", "--rules-dir", str(RULES_DIR), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "nightly: " in printed
    html = next(out.glob("*/nightly.html")).read_text()
    assert "ml/trainer" in html
    findings = next(out.glob("*/nightly-findings.csv")).read_text().splitlines()
    assert {line.split(",")[0] for line in findings[1:]} >= {"IM001", "SC001", "RP002"}
    assert not list(out.glob("*/nightly-findings.json"))  # CSV alone by default


def test_live_lifecycle_preview(live: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(
        cli,
        ["lifecycle", "preview", "ml/trainer", "--rules-dir", str(RULES_DIR), "--format", "json"],
    )
    assert code == 0, capsys.readouterr().err
    assert "ml/trainer" in capsys.readouterr().out
