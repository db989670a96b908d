"""The ``lifecycle`` config section: ranges and ECR pattern limits are config errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hygiene.config import load_config
from hygiene.errors import ConfigError
from tests.conftest import RULES_DIR


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    shutil.copytree(RULES_DIR, tmp_path / "rules")
    return tmp_path / "rules"


def _write_lifecycle(rules_dir: Path, body: str) -> None:
    policy = rules_dir / "default.yaml"
    text = policy.read_text()
    head = text[: text.index("lifecycle:\n")]
    tail = text[text.index("report:\n") :]
    policy.write_text(head + "lifecycle:\n" + body + "\n" + tail)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '  keep_tagged: [{patterns: ["a*b*c*d*e*"], keep: 3}]',
            "lifecycle.keep_tagged.0.patterns: Value error, tag pattern 'a*b*c*d*e*' has more "
            "than 4 '*' wildcards (ECR limit)",
        ),
        (
            '  keep_tagged: [{patterns: ["v?"], keep: 3}]',
            "lifecycle.keep_tagged.0.patterns: Value error, tag pattern 'v?': ECR patterns "
            "only support the '*' wildcard",
        ),
        ("  expire_archived_after_days: 30", "lifecycle.expire_archived_after_days: Input should"),
        ("  keep_tagged: [{patterns: [x], keep: 0}]", "lifecycle.keep_tagged.0.keep: Input should"),
        ("  archive: {after_days: 10, count_type: sinceForever}", "lifecycle.archive.count_type"),
    ],
)
def test_bad_lifecycle_settings(rules_dir: Path, body: str, message: str) -> None:
    _write_lifecycle(rules_dir, body)
    with pytest.raises(ConfigError) as info:
        load_config(rules_dir)
    assert message in info.value.message
    assert "default.yaml:" in info.value.message


def test_shipped_lifecycle_section() -> None:
    settings = load_config(RULES_DIR).policy.lifecycle
    assert settings.expire_untagged_days == 14
    assert [k.patterns for k in settings.keep_tagged] == [["*"]]
    assert settings.overrides[0].namespaces == ["ml"]
