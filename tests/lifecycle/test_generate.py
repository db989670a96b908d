"""Generated policies: layout, overrides, ECR validity, protected tags never expired."""

from __future__ import annotations

import json
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hygiene.config import (
    Config,
    NamespaceOverride,
    Policy,
    ProjectsRegistry,
    ProtectionSettings,
)
from hygiene.configlifecycle import (
    KeepTagged,
    LifecycleArchive,
    LifecycleOverride,
    LifecycleSettings,
)
from hygiene.errors import LifecycleError
from hygiene.lifecycle import check_policy, generate_policy, preview_policy
from tests.builders import NOW, image_row, images_frame
from tests.conftest import examples


def make_config(
    lifecycle: LifecycleSettings | None = None,
    protected: list[str] | None = None,
    overrides: list[NamespaceOverride] | None = None,
) -> Config:
    protections = ProtectionSettings(
        protected_tags=protected if protected is not None else ["latest", "prod*"]
    )
    policy = Policy(
        protections=protections,
        lifecycle=lifecycle or LifecycleSettings(),
        overrides=overrides or [],
    )
    return Config(policy=policy, projects=ProjectsRegistry())


def test_default_config_policy_is_valid_and_shields_first(config: Config) -> None:
    generated = generate_policy(config, repository="suporte/api")
    assert check_policy(generated.text) == []
    rules = generated.policy.ordered()
    protected = config.policy.protections.protected_tags
    shields = rules[: len(protected)]
    assert [r.tag_pattern_list for r in shields] == [(p,) for p in protected]
    assert all(r.count_number == 1_000_000 for r in shields)
    assert rules[len(protected)].tag_status == "untagged"
    assert rules[len(protected)].count_number == 14
    assert rules[-1].tag_pattern_list == ("*",) and rules[-1].count_number == 50


def test_namespace_and_repository_overrides(config: Config) -> None:
    ml = generate_policy(config, repository="ml/train")  # rules/default.yaml: ml → 30 days
    untagged = [r for r in ml.policy.rules if r.tag_status == "untagged"]
    assert [r.count_number for r in untagged] == [30]
    lifecycle = LifecycleSettings(
        overrides=[
            LifecycleOverride(namespaces=["web"], expire_untagged_days=3),
            LifecycleOverride(
                repositories=["web/legacy-*"], keep_tagged=[KeepTagged(patterns=["v*"], keep=2)]
            ),
        ]
    )
    cfg = make_config(lifecycle)
    legacy = generate_policy(cfg, repository="web/legacy-app")
    assert [r.count_number for r in legacy.policy.rules if r.tag_status == "untagged"] == [3]
    keeps = [r for r in legacy.policy.rules if r.rule_priority >= 300]
    assert [(r.tag_pattern_list, r.count_number) for r in keeps] == [(("v*",), 2)]
    other = generate_policy(cfg, repository="web/site")
    assert [r.tag_pattern_list for r in other.policy.rules if r.rule_priority >= 300] == [("*",)]


def test_namespace_protected_tags_are_added_and_widened() -> None:
    cfg = make_config(
        protected=["latest"],
        overrides=[NamespaceOverride(namespaces=["ml"], protected_tags=["model-v?", "gold"])],
    )
    generated = generate_policy(cfg, namespace="ml")
    shields = [r.tag_pattern_list[0] for r in generated.policy.rules if r.rule_priority < 100]
    assert shields == ["latest", "model-v*", "gold"]
    assert any("model-v?" in note and "'model-v*'" in note for note in generated.notes)
    elsewhere = generate_policy(cfg, namespace="web")
    assert [r.tag_pattern_list[0] for r in elsewhere.policy.rules if r.rule_priority < 100] == [
        "latest"
    ]


def test_dead_keep_rules_are_dropped_with_a_note() -> None:
    lifecycle = LifecycleSettings(
        keep_tagged=[
            KeepTagged(patterns=["prod-*"], keep=5),  # all shielded by prod*
            KeepTagged(patterns=["*"], keep=20),
            KeepTagged(patterns=["v*"], keep=3),  # every v* image is claimed by "*"
        ]
    )
    generated = generate_policy(make_config(lifecycle))
    keeps = [r.tag_pattern_list for r in generated.policy.rules if r.rule_priority >= 300]
    assert keeps == [("*",)]
    assert len(generated.notes) == 2
    assert "protected tag 'prod*'" in generated.notes[0]


def test_archive_policy_layout_is_valid() -> None:
    lifecycle = LifecycleSettings(
        archive=LifecycleArchive(patterns=["v*"], after_days=180),
        expire_archived_after_days=365,
        keep_tagged=[KeepTagged(patterns=["dev-*"], keep=5)],
    )
    generated = generate_policy(make_config(lifecycle))
    assert check_policy(generated.text) == []
    rules = generated.policy.ordered()
    transition = [r for r in rules if r.action == "transition"]
    assert [(r.tag_pattern_list, r.count_type, r.count_number) for r in transition] == [
        (("v*",), "sinceImagePulled", 180)
    ]
    archived = [r for r in rules if r.storage_class == "archive"]
    # archived protected images are shielded too, and the `any` rule comes last
    assert [r.tag_pattern_list for r in archived[:-1]] == [("latest",), ("prod*",)]
    assert rules[-1].tag_status == "any" and rules[-1].count_number == 365


def test_no_rules_is_an_error() -> None:
    lifecycle = LifecycleSettings(expire_untagged_days=None, keep_tagged=[])
    with pytest.raises(LifecycleError, match="give no rule"):
        generate_policy(make_config(lifecycle, protected=[]))


def test_too_many_protected_tags_is_refused() -> None:
    protected = [f"keep-{i}" for i in range(60)]
    with pytest.raises(LifecycleError) as info:
        generate_policy(make_config(protected=protected), repository="a/b")
    assert "generated policy for repository a/b" in info.value.message
    assert "ECR allows at most 50" in " ".join(info.value.problems)


def test_moto_accepts_generated_policy(ecr: Any, config: Config) -> None:
    client = ecr.client()
    client.create_repository(repositoryName="suporte/api")
    generated = generate_policy(config, repository="suporte/api")
    client.put_lifecycle_policy(repositoryName="suporte/api", lifecyclePolicyText=generated.text)
    stored = client.get_lifecycle_policy(repositoryName="suporte/api")["lifecyclePolicyText"]
    assert json.loads(stored) == generated.policy.to_json()


# ------------------------------------------------------------------ property

TAGS = ["latest", "main", "prod", "prod-7", "release-1.2", "v1", "v2.0", "dev-3", "sha-ab12", "x"]
PATTERNS = ["*", "v*", "dev-*", "prod*", "*-3", "sha-*", "release*", "x"]
PROTECTED = ["latest", "main", "prod*", "release*", "v?", "stable", "sha-*"]

image_spec = st.fixed_dictionaries(
    {
        "tags": st.lists(st.sampled_from(TAGS), max_size=3, unique=True),
        "pushed_days": st.integers(min_value=0, max_value=400),
        "pulled_days": st.one_of(st.none(), st.integers(min_value=0, max_value=400)),
        "children": st.integers(min_value=0, max_value=2),
        "archived_days": st.one_of(st.none(), st.integers(min_value=0, max_value=400)),
    }
)
keep_spec = st.builds(
    KeepTagged,
    patterns=st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2, unique=True),
    keep=st.integers(min_value=1, max_value=5),
)
lifecycle_spec = st.builds(
    LifecycleSettings,
    expire_untagged_days=st.one_of(st.none(), st.integers(min_value=1, max_value=30)),
    keep_tagged=st.lists(keep_spec, max_size=3),
    archive=st.one_of(
        st.none(),
        st.builds(
            LifecycleArchive,
            patterns=st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2, unique=True),
            after_days=st.integers(min_value=1, max_value=200),
            count_type=st.sampled_from(["sinceImagePushed", "sinceImagePulled"]),
        ),
    ),
    expire_archived_after_days=st.one_of(st.none(), st.integers(min_value=90, max_value=300)),
)


def _rows(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for n, image in enumerate(raw):
        children = [f"c{n}-{k}" for k in range(image["children"])]
        archived = image["archived_days"]
        storage = {
            "status": "ACTIVE" if archived is None else "ARCHIVED",
            "archived_days_ago": archived,
        }
        pushed = image["pushed_days"]
        rows.append(
            image_row(
                f"i{n}",
                "team/app",
                tags=image["tags"],
                pushed_days_ago=pushed,
                pulled_days_ago=image["pulled_days"],
                children=children,
                **storage,
            )
        )
        rows.extend(image_row(c, "team/app", pushed_days_ago=pushed, **storage) for c in children)
    return rows


# 120 examples (~4 s alone): the only check that no generated policy expires a protected
# tag, over policy shapes x patterns x images; the fast lane runs a tenth.
@settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=st.lists(image_spec, max_size=25),
    lifecycle=lifecycle_spec,
    protected=st.lists(st.sampled_from(PROTECTED), min_size=1, max_size=4, unique=True),
)
def test_generated_policy_never_touches_protected_images(
    raw: list[dict[str, Any]], lifecycle: LifecycleSettings, protected: list[str]
) -> None:
    cfg = make_config(lifecycle, protected=protected)
    generated = generate_policy(cfg, repository="team/app")
    assert check_policy(generated.text) == []
    images = images_frame(_rows(raw))
    result = preview_policy(generated.policy, images, now=NOW, repository="team/app")
    acted = set(result.actions["digest"].astype(str))
    for row in images.itertuples(index=False):
        if str(row.digest) not in acted:
            continue
        assert not any(fnmatchcase(t, p) for t in row.tags for p in protected), row.tags
        # a child only ever goes with (all) its indexes
        assert all(parent in acted for parent in row.parent_indexes)


def test_now_fixture_matches_module_clock(now: datetime) -> None:
    assert now == NOW
