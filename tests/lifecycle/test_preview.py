"""Table-driven preview cases: the AWS guide's examples and our documented semantics."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from hygiene.errors import LifecycleError
from hygiene.lifecycle import preview_policy, validate_policy
from tests.builders import REPOSITORY, aliases, digest_of, image_row, images_frame

CASES_DIR = Path(__file__).parent / "cases"


def load_cases(*files: str) -> list[Any]:
    cases = []
    for file in files:
        for case in yaml.safe_load((CASES_DIR / file).read_text()):
            cases.append(pytest.param(case, id=f"{file.split('.')[0]}:{case['name']}"))
    return cases


@pytest.mark.parametrize("case", load_cases("aws_examples.yaml", "semantics.yaml"))
def test_preview_case(case: dict[str, Any], now: datetime) -> None:
    text = json.dumps(case["policy"], indent=2)
    # every case policy is one ECR accepts (guards the cases themselves)
    policy = validate_policy(text)
    images = images_frame(image_row(**row, now=now) for row in case["images"])
    result = preview_policy(policy, images, now=now, repository=REPOSITORY)
    names = aliases(row["digest"] for row in case["images"])
    expired = sorted(names[d] for d in result.expired_digests)
    assert expired == sorted(case["expired"])
    transitioned = sorted(names[d] for d in result.transitioned_digests)
    assert transitioned == sorted(case.get("transitioned", []))
    for name, priority in case.get("expected_rules", {}).items():
        row = result.actions[result.actions["digest"] == digest_of(name)]
        assert row["rule_priority"].tolist() == [priority], name
    sizes = {digest_of(s["digest"]): int(s.get("size", 1000)) for s in case["images"]}
    assert result.images == len(case["expired"])
    # indexes report no own storage (their size is the largest child's)
    index_names = {s["digest"] for s in case["images"] if s.get("children")}
    assert result.bytes == sum(sizes[digest_of(n)] for n in case["expired"] if n not in index_names)


def test_preview_reports_rules_units_and_notes(now: datetime) -> None:
    policy = {
        "rules": [
            {
                "rulePriority": 5,
                "description": "archived for 90 days",
                "selection": {
                    "tagStatus": "any",
                    "storageClass": "archive",
                    "countType": "sinceImageTransitioned",
                    "countUnit": "days",
                    "countNumber": 90,
                },
                "action": {"type": "expire"},
            }
        ]
    }
    images = images_frame(
        [image_row("a", tags=["x"], pushed_days_ago=400, status="ARCHIVED", now=now)]
    )
    result = preview_policy(json.dumps(policy), images, now=now)
    assert result.images == 0
    assert result.notes and "archived_at" in result.notes[0]
    # with archive times known, the rule applies
    images["archived_at"] = now - timedelta(days=100)
    result = preview_policy(json.dumps(policy), images, now=now)
    assert result.expired_digests == [digest_of("a")]
    assert result.by_rule == {5: 1}
    assert result.to_json()["actions"][0]["rule_priority"] == 5


def test_never_pulled_keep_option(now: datetime) -> None:
    policy = {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "sinceImagePulled",
                    "countUnit": "days",
                    "countNumber": 30,
                },
                "action": {"type": "transition", "targetStorageClass": "archive"},
            }
        ]
    }
    images = images_frame([image_row("never", tags=["a"], pushed_days_ago=100, now=now)])
    pushed = preview_policy(json.dumps(policy), images, now=now, never_pulled="pushed")
    kept = preview_policy(json.dumps(policy), images, now=now, never_pulled="keep")
    assert pushed.transitioned_digests == [digest_of("never")]
    assert kept.transitioned_digests == []


def test_preview_needs_one_repository(now: datetime) -> None:
    images = images_frame([image_row("a", "x/one", now=now), image_row("b", "x/two", now=now)])
    text = json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": 1,
                    },
                    "action": {"type": "expire"},
                }
            ]
        }
    )
    with pytest.raises(LifecycleError, match="one repository"):
        preview_policy(text, images, now=now)
    only = preview_policy(text, images, now=now, repository="x/two")
    assert only.images == 0 and only.repository == "x/two"


def test_preview_is_independent_of_row_order(now: datetime) -> None:
    rows = [
        image_row(f"i{n}", tags=[f"t{n % 3}"], pushed_days_ago=n % 7, now=now) for n in range(40)
    ]
    text = json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": 5,
                    },
                    "action": {"type": "expire"},
                }
            ]
        }
    )
    forward = preview_policy(text, images_frame(rows), now=now)
    backward = preview_policy(text, images_frame(list(reversed(rows))), now=now)
    assert sorted(forward.expired_digests) == sorted(backward.expired_digests)
    assert forward.images == 35
