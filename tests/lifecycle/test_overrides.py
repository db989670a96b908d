"""``lifecycle.overrides``: every policy setting an entry sets applies, and only those."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from hygiene.config import (
    Config,
    Policy,
    ProjectsRegistry,
    effective_config_dict,
)
from hygiene.configlifecycle import LifecycleOverride, LifecyclePolicySettings
from hygiene.lifecycle import effective_settings, generate_policy

# A value for each overridable setting, different from its default (as YAML gives it)
SAMPLES: dict[str, Any] = {
    "expire_untagged_days": 3,
    "keep_tagged": [{"patterns": ["v*"], "keep": 2}],
    "archive": {"patterns": ["*"], "after_days": 180, "count_type": "sinceImagePushed"},
    "expire_archived_after_days": 400,
}


def _config(lifecycle: dict[str, Any]) -> Config:
    return Config(
        policy=Policy.model_validate({"lifecycle": lifecycle}), projects=ProjectsRegistry()
    )


def _dumped(settings: LifecyclePolicySettings, name: str) -> Any:
    return settings.model_dump(mode="json")[name]


def test_every_overridable_setting_has_a_sample() -> None:
    assert set(SAMPLES) == set(LifecyclePolicySettings.model_fields)
    defaults = LifecyclePolicySettings()
    assert all(_dumped(defaults, name) != value for name, value in SAMPLES.items())


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("scope", ["namespaces", "repositories"])
def test_every_overridable_setting_round_trips(name: str, scope: str) -> None:
    pattern = "web" if scope == "namespaces" else "web/legacy-*"
    config = _config({"overrides": [{scope: [pattern], name: SAMPLES[name]}]})
    matched = effective_settings(config, repository="web/legacy-app")
    assert _dumped(matched, name) == SAMPLES[name]
    other = effective_settings(config, repository="ml/train")
    base = config.policy.lifecycle
    assert _dumped(other, name) == _dumped(base, name)
    # the settings the entry leaves out keep the base values
    for unset in set(SAMPLES) - {name}:
        assert _dumped(matched, unset) == _dumped(base, unset)


@pytest.mark.parametrize("name", ["expire_untagged_days", "archive", "expire_archived_after_days"])
def test_an_explicit_null_in_an_override_turns_the_setting_off(name: str) -> None:
    lifecycle = {
        "expire_untagged_days": 14,
        "archive": SAMPLES["archive"],
        "expire_archived_after_days": 400,
        "overrides": [yaml.safe_load(f"{{namespaces: [ml], {name}: null}}")],
    }
    config = _config(lifecycle)
    assert getattr(effective_settings(config, namespace="ml"), name) is None
    assert getattr(effective_settings(config, namespace="web"), name) is not None


def test_null_untagged_days_drops_the_untagged_rule_for_that_namespace_only() -> None:
    config = _config({"overrides": [{"namespaces": ["ml"], "expire_untagged_days": None}]})
    ml = generate_policy(config, namespace="ml").policy.rules
    web = generate_policy(config, namespace="web").policy.rules
    assert [r for r in ml if r.tag_status == "untagged"] == []
    assert [r.count_number for r in web if r.tag_status == "untagged"] == [14]


def test_later_entries_win_one_key_at_a_time_and_repositories_after_namespaces() -> None:
    config = _config(
        {
            "overrides": [
                {"repositories": ["web/api"], "expire_untagged_days": 1},
                {
                    "namespaces": ["web"],
                    "expire_untagged_days": 5,
                    "expire_archived_after_days": 90,
                },
                {"namespaces": ["w*"], "expire_untagged_days": 7},
            ]
        }
    )
    api = effective_settings(config, repository="web/api")
    assert (api.expire_untagged_days, api.expire_archived_after_days) == (1, 90)
    site = effective_settings(config, repository="web/site")
    assert (site.expire_untagged_days, site.expire_archived_after_days) == (7, 90)


def test_an_override_is_shown_with_only_the_keys_it_sets() -> None:
    config = _config({"overrides": [{"namespaces": ["ml"], "expire_untagged_days": None}]})
    (override,) = effective_config_dict(config)["policy"]["lifecycle"]["overrides"]
    assert override == {"namespaces": ["ml"], "repositories": [], "expire_untagged_days": None}
    schema = LifecycleOverride.model_json_schema()["properties"]
    assert all("default" not in schema[name] for name in SAMPLES)  # inherited, not 14 …
    assert schema["expire_untagged_days"]["anyOf"][0]["minimum"] == 1  # constraints kept


def test_override_values_are_checked_like_the_base_ones() -> None:
    with pytest.raises(ValueError, match="expire_archived_after_days"):
        _config({"overrides": [{"namespaces": ["ml"], "expire_archived_after_days": 30}]})
    with pytest.raises(ValueError, match="keep_tagged"):
        _config({"overrides": [{"namespaces": ["ml"], "keep_tagged": None}]})
