"""``hygiene scan`` end to end against the moto server: contract, exit codes, bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene_demo.registry import EmbeddedRegistry
from tests import builders

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "x", "digest": "sha256:" + "c" * 64, "size": 2048},
        "layers": [],
    }
)


@pytest.fixture
def fast_rules(tmp_path: Path) -> Path:
    """The shipped config with no retries, so unreachable endpoints fail at once."""
    policy = builders.shipped_policy()
    policy["collect"]["max_attempts"] = 1
    return builders.write_rules(tmp_path / "rules", policy)


def _seed(ecr: EmbeddedRegistry) -> str:
    ecr.client().create_repository(repositoryName="ml/trainer")
    digest = "sha256:" + hashlib.sha256(MANIFEST.encode()).hexdigest()
    ecr.backend().put_image("ml/trainer", MANIFEST, "v1", None, digest)
    return digest


def test_json_contract(ecr: EmbeddedRegistry, fast_rules: Path, tmp_path: Path) -> None:
    _seed(ecr)
    args = ["scan", "--rules-dir", str(fast_rules), "--endpoint-url", ecr.endpoint_url]
    args += ["--format", "json", "--snapshot-dir", str(tmp_path / "snaps"), "--fail-on", "never"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"run", "inventory", "findings", "kept", "proposals"}
    assert set(data["run"]) >= {"id", "started_at", "finished_at", "complete", "errors"}
    assert data["run"]["complete"] is True and data["run"]["errors"] == []
    assert data["run"]["api_calls"]["DescribeRepositories"] == 1
    assert data["inventory"] == {"repositories": 1, "images": 1, "bytes": 2048}
    snapshot = Path(data["snapshot"])
    assert snapshot.is_file() and snapshot.parent == tmp_path / "snaps"

    offline = CliRunner().invoke(
        cli,
        ["scan", "--rules-dir", str(fast_rules), "--from-snapshot", str(snapshot)]
        + ["--format", "json", "--fail-on", "never"],
    )
    assert offline.exit_code == 0, offline.output
    again = json.loads(offline.stdout)
    assert again["inventory"] == data["inventory"]
    assert again["run"]["source"] == f"snapshot:{snapshot}"


def test_unreachable_endpoint_exit_6(fast_rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(
        cli,
        ["scan", "--rules-dir", str(fast_rules), "--endpoint-url", "http://127.0.0.1:9"]
        + ["--no-snapshot", "--format", "json"],
    )
    assert code == 6
    err = capsys.readouterr().err
    assert "error: region us-east-1: cannot reach the ECR endpoint" in err


def test_missing_credentials_exit_6(
    fast_rules: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code = run_cli(cli, ["scan", "--rules-dir", str(fast_rules), "--no-snapshot"])
    assert code == 6
    assert "no AWS credentials found: run `aws sso login`" in capsys.readouterr().err


def test_unknown_profile_exit_6(
    fast_rules: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    code = run_cli(cli, ["scan", "--rules-dir", str(fast_rules), "--profile", "lab"])
    assert code == 6
    assert "--profile lab: profile not found" in capsys.readouterr().err


def test_bad_snapshot_is_a_usage_error(
    fast_rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "x.parquet"
    bogus.write_text("not parquet")
    code = run_cli(cli, ["scan", "--rules-dir", str(fast_rules), "--from-snapshot", str(bogus)])
    assert code == 2
    assert f"{bogus}: not a readable snapshot" in capsys.readouterr().err


def test_exit_codes_like_a_linter(ecr: EmbeddedRegistry, fast_rules: Path) -> None:
    """SC001 (error) fires on the seeded repository: 1 at --fail-on error, 0 at never."""
    _seed(ecr)
    base = ["scan", "--rules-dir", str(fast_rules), "--endpoint-url", ecr.endpoint_url]
    base += ["--no-snapshot", "--format", "json"]
    assert run_cli(cli, [*base, "--fail-on", "error"]) == 1
    assert run_cli(cli, [*base, "--fail-on", "never"]) == 0
