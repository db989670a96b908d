"""Engine behaviour beyond single rules: config validation, selection, in-use images,
exit status, the CLI, and the shipped configuration."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.config import load_config
from hygiene.errors import ConfigError, ExitCode
from hygiene.model import Severity
from hygiene.rules import (
    RULES,
    evaluate,
    filter_exit,
    select_codes,
    validate_config,
)
from tests import builders
from tests.builders import ACCOUNT, NOW, RULES_DIR, digest_of


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    return target


def _policy(rules_dir: Path, text: str) -> Path:
    path = rules_dir / "default.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "rules:\n  IM002: {days: 0}\n",
            "default.yaml:2: rules.IM002.days: must be between 1 and 3650 (got 0)",
        ),
        (
            "rules:\n  IM002:\n    dayz: 3\n",
            "default.yaml:3: rules.IM002.dayz: unknown option of IM002 stale-image "
            "(options: days, keep_newest)",
        ),
        ("rules:\n  XX001: {}\n", "default.yaml:2: rules.XX001: unknown rule code 'XX001'"),
        (
            "rules:\n  NS004: {segment_pattern: '[a-z'}\n",
            "rules.NS004.segment_pattern: '[a-z' is not a regular expression the scan can run",
        ),
        (
            "selection:\n  select: [ALL]\n  ignore: [IM, XX]\n",
            "default.yaml:3: selection.ignore[1]: unknown rule code, prefix or family 'XX'",
        ),
        (
            "overrides:\n  - namespaces: [ml]\n    rules:\n      IM002: {keep_newest: -1}\n",
            "default.yaml:4: overrides[0].rules.IM002.keep_newest: must be between 0 and 1000",
        ),
        (
            "mutelist:\n  - {repository: 'a/*', rules: [images, IM9], reason: because}\n",
            "mutelist[0].rules[1]: unknown rule code, prefix or family 'IM9'",
        ),
        (
            "rules:\n  SC002: {exclusion_filters: [a, b, c, d, e, f]}\n",
            "rules.SC002.exclusion_filters: must have at most 5 entries (got 6)",
        ),
        (
            "rules:\n  TG001: {ignore_schemes: [sha]}\n",
            "rules.TG001.ignore_schemes: unknown value 'sha'",
        ),
        ("rules:\n  IM001: {min_age_days: '7'}\n", "must be an integer (got '7')"),
    ],
)
def test_bad_rule_config_is_a_config_error_naming_file_line_and_key(
    rules_dir: Path, text: str, message: str
) -> None:
    path = _policy(rules_dir, text)
    with pytest.raises(ConfigError) as err:
        load_config(rules_dir, checks=[validate_config])
    assert err.value.message.startswith(str(path.parent))
    assert message in err.value.message
    assert err.value.exit_code == ExitCode.USAGE
    # without the check the models accept it; the engine still refuses it when it runs
    config = load_config(rules_dir)
    with pytest.raises(ConfigError) as late:
        evaluate(builders.inventory(), config, NOW)
    assert late.value.message == err.value.message


def test_cli_exit_code_2_on_bad_rule_option(
    rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _policy(rules_dir, "rules:\n  IM002: {days: 0}\n")
    assert run_cli(cli, ["rules", "--rules-dir", str(rules_dir)]) == 2
    assert "rules.IM002.days: must be between 1 and 3650 (got 0)" in capsys.readouterr().err


def test_selection_specificity() -> None:
    assert select_codes(["ALL"]) == set(RULES)
    assert select_codes(["ALL"], ["images"]) == set(RULES) - {"IM001", "IM002", "IM003", "IM004"}
    assert select_codes(["IM001"], ["images"]) == {"IM001"}
    assert select_codes(["images"], ["IM00"]) == set()
    assert select_codes(["SC"], ["SC004"]) == {"SC001", "SC002", "SC003"}
    assert select_codes(["IM"], ["IM"]) == set()  # equal specificity: ignore wins


def test_filter_exit() -> None:
    warnings = [
        builders.finding("SC001", "a/b", severity=s) for s in (Severity.WARNING, Severity.INFO)
    ]
    assert filter_exit(warnings, "error") == 0
    assert filter_exit(warnings, "warning") == 1
    assert filter_exit(warnings, Severity.INFO) == 1
    assert filter_exit(warnings, None) == 0
    assert filter_exit(warnings, "never") == 0
    assert filter_exit([], "info") == 0


def test_in_use_file_protects_by_tag_and_digest(tmp_path: Path) -> None:
    uses = tmp_path / "in-use.txt"
    uses.write_text(
        f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/suporte/api:1.0.0\n"
        f"suporte/api@{digest_of('dangling')}\n",
        encoding="utf-8",
    )
    images = [
        {"digest": "old", "tags": ["1.0.0"], "pushed_days_ago": 400},
        {"digest": "older", "tags": ["0.9.0"], "pushed_days_ago": 500},
        {"digest": "dangling", "pushed_days_ago": 400},
    ]
    policy = {
        "protections": {"keep_newest": 0, "in_use_images_file": str(uses)},
        "rules": {"IM002": {"keep_newest": 0}},
        "selection": {"select": ["IM"]},
    }
    evaluation = evaluate(builders.inventory_of(images), builders.config(policy), NOW)
    flagged = {f.image_digest for f in evaluation.findings}
    assert flagged == {digest_of("older")}
    kept = {k.image_digest: k.reasons for k in evaluation.kept}
    assert kept == {
        digest_of("old"): ("in-use:file:in-use.txt:1",),
        digest_of("dangling"): ("in-use:file:in-use.txt:2",),
    }


def test_one_finding_per_image_with_the_other_rules_in_details() -> None:
    images = [
        {"digest": f"v{i}", "tags": [f"1.{i}.0"], "pushed_days_ago": 400 - i} for i in range(5)
    ]
    policy = {
        "protections": {"keep_newest": 0},
        "rules": {"IM002": {"keep_newest": 0}, "IM003": {"max_images": 3}},
        "selection": {"select": ["IM"]},
    }
    evaluation = evaluate(builders.inventory_of(images), builders.config(policy), NOW)
    assert [f.code for f in evaluation.findings] == ["IM002"] * 5
    also = {f.image_digest: f.details.get("also") for f in evaluation.findings}
    assert also[digest_of("v0")] == ["IM003"] and also[digest_of("v4")] is None


def test_shipped_config_evaluates_and_reports_per_phase_timings(config: object) -> None:
    inventory = builders.inventory(
        [builders.image_row("a", "ml/trainer", tags=["1.0.0"], pushed_days_ago=120)]
    )
    evaluation = evaluate(inventory, config, NOW)  # type: ignore[arg-type]
    assert evaluation.mute_warnings == []
    assert set(evaluation.rules_run) == set(RULES)
    assert {"derive", "protections", "image-findings", "IM002"} <= set(evaluation.timings)
    assert len(evaluation.protections) == 1 and bool(evaluation.protections["newest"].iloc[0])


def test_cli_lists_every_rule_and_documents_one(rules_dir: Path) -> None:
    runner = CliRunner()
    listing = runner.invoke(cli, ["rules", "--rules-dir", str(rules_dir)])
    assert listing.exit_code == 0, listing.output
    for code, rule in RULES.items():
        assert f"{code}  {rule.name}" in listing.output
    one = runner.invoke(cli, ["rules", "IM002", "--rules-dir", str(rules_dir)])
    assert one.exit_code == 0, one.output
    for heading in ("What it flags:", "Why it matters:", "Example:", "Fix:", "Options:"):
        assert heading in one.output
    assert "days = 90  [1..3650]" in one.output
    assert "ml: days=180" in one.output  # the shipped per-namespace override
    ml = runner.invoke(
        cli,
        ["rules", "im002", "--namespace", "ml", "--format", "json", "--rules-dir", str(rules_dir)],
    )
    data = json.loads(ml.output)
    assert {o["name"]: o["value"] for o in data["options"]} == {"days": 180, "keep_newest": 3}


def test_cli_unknown_code_is_exit_2(rules_dir: Path) -> None:
    assert run_cli(cli, ["rules", "ZZ123", "--rules-dir", str(rules_dir)]) == 2


def test_disabled_rule_is_shown_as_off(rules_dir: Path) -> None:
    _policy(rules_dir, "selection:\n  select: [ALL]\n  ignore: [compliance]\n")
    result = CliRunner().invoke(cli, ["rules", "--format", "json", "--rules-dir", str(rules_dir)])
    enabled = {r["code"]: r["enabled"] for r in json.loads(result.output)}
    assert not enabled["SC001"] and enabled["IM001"]


def test_empty_registry_runs_every_rule() -> None:
    from hygiene.inventory import RunInfo, empty_inventory

    evaluation = evaluate(empty_inventory(RunInfo(id="x", started_at=NOW)), builders.config(), NOW)
    assert evaluation.findings == [] and evaluation.kept == []
    assert set(evaluation.rules_run) == set(RULES)


def test_findings_are_ordered_by_code() -> None:
    images = [
        {"repository": "nginx", "digest": "n", "pushed_days_ago": 30},
        {"repository": "suporte/api", "digest": "u", "pushed_days_ago": 30},
    ]
    evaluation = evaluate(builders.inventory_of(images), builders.config(), NOW)
    codes = [f.code for f in evaluation.findings]
    assert codes == sorted(codes) and "IM001" in codes and "NS001" in codes


def test_iso_timestamps_match_numpy_formatting() -> None:
    import numpy as np
    import pandas as pd

    from hygiene.rules.columns import utc_iso_strings

    values = pd.Series(
        pd.to_datetime(
            ["2026-11-28T03:04:05.9", None, "1999-12-31T23:59:59", "2024-02-29T00:00:00"],
            utc=True,
            format="ISO8601",
        )
    ).astype("datetime64[ns, UTC]")
    expected = [
        None if t == "NaT" else t
        for t in np.datetime_as_string(
            values.dt.tz_convert(None).to_numpy(), unit="s", timezone="UTC"
        ).tolist()
    ]
    assert (
        utc_iso_strings(values)
        == expected
        == [
            "2026-11-28T03:04:05Z",
            None,
            "1999-12-31T23:59:59Z",
            "2024-02-29T00:00:00Z",
        ]
    )


def test_workload_using_a_platform_manifest_keeps_the_index_and_its_repository(
    tmp_path: Path,
) -> None:
    uses = tmp_path / "in-use.txt"
    uses.write_text(f"bigsea/spark@{digest_of('amd64')}\n", encoding="utf-8")
    images = [
        {
            "repository": "bigsea/spark",
            "digest": "idx",
            "tags": ["1.0.0"],
            "children": ["amd64"],
            "pushed_days_ago": 400,
        },
        {"repository": "bigsea/spark", "digest": "amd64", "pushed_days_ago": 400},
        {"repository": "bigsea/old", "digest": "x", "tags": ["1.0.0"], "pushed_days_ago": 400},
    ]
    policy = {
        "protections": {"keep_newest": 0, "in_use_images_file": str(uses)},
        "rules": {"IM002": {"keep_newest": 0}},
        "selection": {"select": ["IM002", "RP003"]},
    }
    evaluation = evaluate(builders.inventory_of(images), builders.config(policy), NOW)
    found = {(f.code, f.repository, f.image_digest) for f in evaluation.findings}
    # the index is kept because a workload runs its amd64 manifest; the repository is
    # abandoned by pull/push dates but holds an image in use, so no RP003 for it
    assert found == {("IM002", "bigsea/old", digest_of("x")), ("RP003", "bigsea/old", None)}
    kept = {k.image_digest: k.reasons for k in evaluation.kept}
    assert kept == {digest_of("idx"): ("in-use:file:in-use.txt:1",)}
