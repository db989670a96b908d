"""The ``lifecycle`` config section: ranges and ECR pattern limits are config errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hygiene.config import load_config
from hygiene.errors import ConfigError
from tests import builders
from tests.builders import RULES_DIR


@pytest.mark.parametrize(
    ("lifecycle", "message"),
    [
        (
            {"keep_tagged": [{"patterns": ["a*b*c*d*e*"], "keep": 3}]},
            "lifecycle.keep_tagged[0].patterns: tag pattern 'a*b*c*d*e*' has more "
            "than 4 '*' wildcards (ECR limit)",
        ),
        (
            {"keep_tagged": [{"patterns": ["v?"], "keep": 3}]},
            "lifecycle.keep_tagged[0].patterns: tag pattern 'v?': ECR patterns "
            "only support the '*' wildcard",
        ),
        (
            {"expire_archived_after_days": 30},
            "lifecycle.expire_archived_after_days: Input should",
        ),
        (
            {"keep_tagged": [{"patterns": ["x"], "keep": 0}]},
            "lifecycle.keep_tagged[0].keep: Input should",
        ),
        (
            {"archive": {"after_days": 10, "count_type": "sinceForever"}},
            "lifecycle.archive.count_type",
        ),
    ],
)
def test_bad_lifecycle_settings(tmp_path: Path, lifecycle: dict[str, Any], message: str) -> None:
    policy = builders.shipped_policy()
    policy["lifecycle"] = lifecycle
    rules_dir = builders.write_rules(tmp_path / "rules", policy)
    with pytest.raises(ConfigError) as info:
        load_config(rules_dir)
    assert message in info.value.message
    assert "default.yaml:" in info.value.message


def test_shipped_lifecycle_section() -> None:
    settings = load_config(RULES_DIR).policy.lifecycle
    assert settings.expire_untagged_days == 14
    assert [k.patterns for k in settings.keep_tagged] == [["*"]]
    assert settings.overrides[0].namespaces == ["ml"]
