"""RP004 previews the deployed policies one batch per distinct policy text
(:func:`hygiene.lifecycle.batch.preview_repositories`): the same findings as one
:func:`~hygiene.lifecycle.preview.preview_policy` per repository, which it falls back to
when a batch fails."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from hygiene.lifecycle import batch
from hygiene.rules import evaluate
from tests import builders
from tests.builders import NOW

POLICIES = [
    json.dumps({"rules": [rule]})
    for rule in (
        {
            "rulePriority": 1,
            "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                          "countUnit": "days", "countNumber": 30},
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 1,
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2},
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 1,
            "selection": {"tagStatus": "tagged", "tagPatternList": ["v*"],
                          "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"},
        },
    )
] + ["not json", '{"rules": [{"rulePriority": 1}]}']  # fmt: skip


def _registry(rng: random.Random) -> tuple[list[dict[str, Any]], ...]:
    repositories: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    uses: list[dict[str, Any]] = []
    for r in range(rng.randint(1, 8)):
        name = f"lab/r{r}"
        policy = rng.choice([*POLICIES, None])
        repositories.append({"name": name, "lifecycle_policy": policy})
        for n in range(rng.randint(0, 8)):
            tags = [f"v{n}"] if rng.random() < 0.6 else []
            image = {"digest": f"{name}-{n}", "repository": name, "tags": tags,
                     "pushed_days_ago": rng.randint(1, 300)}  # fmt: skip
            images.append(image)
            if rng.random() < 0.4:
                use = (
                    {"tag": tags[0]} if tags and rng.random() < 0.5 else {"digest": image["digest"]}
                )
                uses.append({"repository": name, "where": f"w{len(uses)}", **use})
    return repositories, images, uses


def _rp004(inventory: Any) -> list[tuple[str | None, str, str]]:
    evaluation = evaluate(inventory, builders.config(builders.shipped_policy()), NOW)
    return sorted(
        (f.repository, f.message, json.dumps(f.details, sort_keys=True))
        for f in evaluation.findings
        if f.code == "RP004"
    )


def test_batches_find_what_one_preview_per_repository_finds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(4)
    flagged = 0
    for _ in range(60):
        repositories, images, uses = _registry(rng)
        inventory = builders.inventory_of(images, repositories, in_use=uses)
        batched = _rp004(inventory)
        with monkeypatch.context() as patched:

            def refused(*_: Any, **__: Any) -> Any:
                raise ValueError("batch refused: one preview per repository")

            patched.setattr(batch, "preview_repositories", refused)
            one_by_one = _rp004(inventory)
        assert batched == one_by_one
        flagged += len(batched)
    assert flagged > 20  # the registries do flag images in use


def test_an_unreadable_policy_hides_no_other_repository() -> None:
    """Two repositories with policies RP004 cannot preview and one it can: the readable
    one is flagged."""
    expire_all = POLICIES[1]
    repositories = [
        {"name": "lab/bad", "lifecycle_policy": "not json"},
        {"name": "lab/odd", "lifecycle_policy": POLICIES[-1]},
        {"name": "lab/ok", "lifecycle_policy": expire_all},
    ]
    images: list[dict[str, Any]] = []
    uses: list[dict[str, Any]] = []
    for repository in ("lab/bad", "lab/odd", "lab/ok"):
        for n in range(4):
            images.append({"digest": f"{repository}-{n}", "repository": repository,
                           "tags": [f"v{n}"], "pushed_days_ago": 10 + n})  # fmt: skip
        uses.append({"repository": repository, "digest": f"{repository}-3", "where": "w"})
    found = _rp004(builders.inventory_of(images, repositories, in_use=uses))
    assert [repository for repository, *_ in found] == ["lab/ok"]
