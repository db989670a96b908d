"""Validation: every ECR constraint, with exact messages (cases/validation.yaml)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hygiene.errors import ExitCode, LifecycleError
from hygiene.lifecycle import check_policy, validate_policy

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "validation.yaml").read_text())


def policy_text(case: dict[str, Any]) -> str:
    return case["text"] if "text" in case else json.dumps(case["policy"], indent=2)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_validation_case(case: dict[str, Any]) -> None:
    text = policy_text(case)
    allow = bool(case.get("allow_since_image_pulled_expire", False))
    problems = check_policy(text, allow_since_image_pulled_expire=allow)
    assert problems == case["errors"]
    if case["errors"]:
        with pytest.raises(LifecycleError) as info:
            validate_policy(text, allow_since_image_pulled_expire=allow, source="test.json")
        assert info.value.problems == case["errors"]
        assert info.value.exit_code == ExitCode.USAGE
        assert info.value.message.startswith(f"test.json: {case['errors'][0]}")
    else:
        assert validate_policy(text, allow_since_image_pulled_expire=allow).rules


def _rule(priority: int, pattern: str) -> dict[str, Any]:
    return {
        "rulePriority": priority,
        "selection": {
            "tagStatus": "tagged",
            "tagPatternList": [pattern],
            "countType": "imageCountMoreThan",
            "countNumber": 1,
        },
        "action": {"type": "expire"},
    }


def test_at_most_50_rules() -> None:
    fifty = json.dumps({"rules": [_rule(i, f"t{i}-*") for i in range(1, 51)]})
    assert check_policy(fifty) == []
    fifty_one = json.dumps({"rules": [_rule(i, f"t{i}-*") for i in range(1, 52)]})
    assert check_policy(fifty_one) == ["rules: has 51 rules; ECR allows at most 50"]


def test_at_most_30720_characters() -> None:
    rule = _rule(1, "x*")
    rule["description"] = "d" * 30_720
    text = json.dumps({"rules": [rule]})
    assert check_policy(text) == [
        f"policy text is {len(text)} characters; ECR allows at most 30720"
    ]
    rule["description"] = "d" * (30_720 - (len(text) - 30_720))
    assert len(json.dumps({"rules": [rule]})) == 30_720
    assert check_policy(json.dumps({"rules": [rule]})) == []


def test_message_names_multiple_problems() -> None:
    text = json.dumps({"rules": [_rule(1, "a*"), _rule(1, "b*"), _rule(2, "c*****")]}, indent=2)
    with pytest.raises(LifecycleError) as info:
        validate_policy(text, source="p.json")
    # checks of single rules come first, then those across rules
    assert info.value.message == (
        "p.json: rules[2] (rulePriority 2): selection.tagPatternList[0]: pattern 'c*****' "
        "has 5 '*' wildcards; ECR allows at most 4 (and 2 more problems)"
    )
    assert len(info.value.problems) == 3
