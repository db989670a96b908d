"""Previewing many repositories at once gives, repository by repository, exactly what
:func:`preview_policy` gives (the actions frame, the counts, the notes), on generated
registries and on the cases the batch leaves to :func:`preview_policy`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hygiene.inventory import Inventory
from hygiene.lifecycle.batch import preview_repositories
from hygiene.lifecycle.policy import LifecyclePolicy, LifecycleRule
from hygiene.lifecycle.preview import PreviewResult, preview_policy
from hygiene.lifecycle.propose import LifecyclePlan, build_proposal, plan_lifecycle
from tests import builders
from tests.builders import NOW, image_row
from tests.conftest import examples
from tests.rules.test_properties import registries

RULES = [
    LifecycleRule(1, "tagged", "imageCountMoreThan", 9999, tag_pattern_list=("prod*",)),
    LifecycleRule(2, "tagged", "imageCountMoreThan", 1, tag_prefix_list=("1.", "v")),
    LifecycleRule(3, "untagged", "sinceImagePushed", 30, count_unit="days"),
    LifecycleRule(4, "tagged", "sinceImagePulled", 60, tag_pattern_list=("*.*",)),
    LifecycleRule(
        5,
        "tagged",
        "sinceImagePushed",
        90,
        tag_pattern_list=("*",),
        action="transition",
        target_storage_class="archive",
    ),
    LifecycleRule(6, "any", "sinceImageTransitioned", 10, storage_class="archive"),
    LifecycleRule(7, "any", "imageCountMoreThan", 2),
]
POLICIES = st.lists(st.sampled_from(RULES), min_size=1, max_size=5, unique=True)


def _check(
    policy: LifecyclePolicy, inventory: Inventory, never_pulled: Any = "pushed"
) -> list[PreviewResult]:
    images = inventory.images
    names = list(dict.fromkeys(inventory.repositories["name"].astype(str)))
    position = {name: i for i, name in enumerate(names)}
    of = np.array([position.get(str(r), -1) for r in images["repository"]], dtype=np.int64)
    batch = preview_repositories(policy, images, of, names, now=NOW, never_pulled=never_pulled)
    for name, result in zip(names, batch, strict=True):
        mine = images[images["repository"].astype(str) == name]
        single = preview_policy(policy, mine, now=NOW, repository=name, never_pulled=never_pulled)
        pd.testing.assert_frame_equal(result.actions, single.actions)
        assert _summary(result) == _summary(single)
    return batch


def _summary(result: PreviewResult) -> tuple[Any, ...]:
    return (
        result.repository,
        result.images,
        result.bytes,
        result.transitioned_images,
        result.transitioned_bytes,
        result.by_rule,
        result.notes,
        result.expired_digests,
        result.transitioned_digests,
    )


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(registries(), POLICIES, st.sampled_from(["pushed", "keep"]), st.randoms())
def test_batch_preview_equals_one_preview_per_repository(
    registry: tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]],
    rules: list[LifecycleRule],
    never_pulled: Any,
    random: Any,
) -> None:
    images, repositories, _ = registry
    inventory = builders.inventory_of(images, repositories)
    statuses = ["ACTIVE", "ACTIVE", "ARCHIVED", "ACTIVATING"]
    inventory.images["status"] = pd.Categorical(
        [random.choice(statuses) for _ in range(len(inventory.images))]
    )
    _check(LifecyclePolicy(tuple(rules)), inventory, never_pulled)


def _rows(*rows: dict[str, Any]) -> Inventory:
    return builders.inventory([image_row(**r) for r in rows])


POLICY = LifecyclePolicy((RULES[2], RULES[6]))


def test_a_digest_twice_in_a_repository_is_previewed_on_its_own() -> None:
    inventory = _rows(
        {"digest": "a", "repository": "x/one", "pushed_days_ago": 40},
        {"digest": "a", "repository": "x/one", "pushed_days_ago": 50},
        {"digest": "b", "repository": "x/one", "pushed_days_ago": 60},
        {"digest": "c", "repository": "x/two", "pushed_days_ago": 60},
    )
    assert sum(r.images for r in _check(POLICY, inventory)) > 0


def test_an_index_whose_child_list_disagrees_is_previewed_on_its_own() -> None:
    inventory = _rows(
        {"digest": "i", "repository": "x/one", "pushed_days_ago": 40, "children": ["c"]},
        {"digest": "c", "repository": "x/one", "pushed_days_ago": 40},
        {"digest": "d", "repository": "x/one", "pushed_days_ago": 40},
        {"digest": "e", "repository": "x/two", "pushed_days_ago": 60},
    )
    # the child list names d too, but d does not name the index as its parent
    rows = inventory.images
    index = rows.index[rows["digest"].astype(str) == builders.digest_of("i")][0]
    rows.at[index, "child_digests"] = [builders.digest_of("c"), builders.digest_of("d")]
    assert sum(r.images for r in _check(POLICY, inventory)) > 0


def test_a_shared_child_and_a_referring_child_are_previewed_on_their_own() -> None:
    inventory = _rows(
        {"digest": "i", "repository": "x/one", "pushed_days_ago": 40, "children": ["c"]},
        {"digest": "j", "repository": "x/one", "pushed_days_ago": 41, "children": ["c"]},
        {"digest": "c", "repository": "x/one", "pushed_days_ago": 40},
        {"digest": "k", "repository": "x/two", "pushed_days_ago": 40, "children": ["s"]},
        {"digest": "t", "repository": "x/two", "pushed_days_ago": 40, "tags": ["1.0"]},
        {"digest": "s", "repository": "x/two", "pushed_days_ago": 40, "subject": "t"},
    )
    assert sum(r.images for r in _check(POLICY, inventory)) > 0


def _plan_one_by_one(inventory: Inventory, config: Any) -> LifecyclePlan:
    """plan_lifecycle as it was: one generation and one preview per repository."""
    from hygiene.inventory import cell_text
    from hygiene.lifecycle.diff import equivalent
    from hygiene.lifecycle.generate import generate_policy

    plan = LifecyclePlan()
    images = inventory.images
    for row in inventory.repositories.itertuples(index=False):
        name = str(row.name)
        if cell_text(row.scan_error) is not None:
            continue
        if str((row.resource_tags or {}).get("hygiene:keep", "")).lower() == "true":
            continue
        generated = generate_policy(config, namespace=cell_text(row.namespace), repository=name)
        current = cell_text(row.lifecycle_policy)
        if equivalent(current, generated.text) or current is not None:
            continue
        mine = images[
            (images["account"].astype(str) == str(row.account))
            & (images["region"].astype(str) == str(row.region))
            & (images["repository"].astype(str) == name)
        ]
        preview = preview_policy(generated.policy, mine, now=NOW, repository=name)
        plan.proposals.append(
            build_proposal(
                account=str(row.account),
                region=str(row.region),
                repository=name,
                namespace=cell_text(row.namespace),
                generated=generated,
                current=current,
                preview=preview,
            )
        )
    return plan


def test_plan_lifecycle_equals_one_preview_per_repository() -> None:
    from benchmarks.rules import bench_config, synthetic_inventory

    inventory = synthetic_inventory(20_000, 200)
    config = bench_config()
    plan = plan_lifecycle(inventory, config, NOW, replace_existing=False)
    expected = _plan_one_by_one(inventory, config)
    assert len(plan.proposals) > 10
    assert [p.to_json() for p in plan.proposals] == [p.to_json() for p in expected.proposals]
