"""``registry.accounts``: which accounts are read, in which regions, through which roles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hygiene.collect.accounts import AccountTarget, configured_targets, role_arn
from hygiene.config import AccountsSettings, RegistrySettings, load_config
from hygiene.errors import ConfigError
from tests.conftest import RULES_DIR

A, B, C, D = "111111111111", "222222222222", "333333333333", "444444444444"
SCANNER = "arn:aws:iam::{account}:role/registry-hygiene-scanner"


def registry(**accounts: Any) -> RegistrySettings:
    return RegistrySettings(
        regions=["us-east-1", "sa-east-1"], accounts=AccountsSettings(**accounts)
    )


def test_explicit_accounts_each_with_its_regions_and_roles() -> None:
    settings = registry(
        include=[
            {"id": B},
            {"id": A, "regions": ["eu-west-1"], "scanner_role": "arn:aws:iam::{account}:role/x"},
        ]
    )
    listed = configured_targets(settings)
    cleaner = "arn:aws:iam::{}:role/registry-hygiene-cleaner"
    assert listed.targets == [
        AccountTarget(A, ("eu-west-1",), f"arn:aws:iam::{A}:role/x", cleaner.format(A)),
        AccountTarget(B, ("us-east-1", "sa-east-1"), SCANNER.format(account=B), cleaner.format(B)),
    ]
    assert listed.skipped == {}


def test_organization_accounts_skip_suspended_and_excluded_ones() -> None:
    settings = registry(
        organization=True, exclude=[D], include=[{"id": B, "regions": ["us-east-2"]}]
    )
    listed = configured_targets(
        settings,
        [
            {"Id": A, "Status": "ACTIVE", "State": "ACTIVE"},
            {"Id": B, "Status": "ACTIVE"},
            {"Id": C, "Status": "SUSPENDED", "State": "SUSPENDED"},
            {"Id": D, "Status": "ACTIVE"},
            {"Id": "555555555555", "Status": "PENDING_CLOSURE"},
        ],
    )
    assert [(t.id, t.regions) for t in listed.targets] == [
        (A, ("us-east-1", "sa-east-1")),
        (B, ("us-east-2",)),
    ]
    assert set(listed.skipped) == {C, D, "555555555555"}
    assert "SUSPENDED" in listed.skipped[C] and "excluded" in listed.skipped[D]
    assert "PENDING_CLOSURE" in listed.skipped["555555555555"]


def test_a_listed_account_the_organization_suspended_is_not_read() -> None:
    settings = registry(organization=True, include=[{"id": C}])
    listed = configured_targets(settings, [{"Id": C, "Status": "SUSPENDED"}])
    assert listed.targets == [] and C in listed.skipped


def test_region_option_replaces_every_accounts_regions() -> None:
    settings = registry(include=[{"id": A, "regions": ["eu-west-1"]}, {"id": B}])
    listed = configured_targets(settings, regions=["us-west-2"])
    assert {t.regions for t in listed.targets} == {("us-west-2",)}


def test_without_accounts_the_own_account_is_read_as_before() -> None:
    settings = RegistrySettings(account=A, regions=["us-east-1"])
    assert configured_targets(settings).targets == [AccountTarget(A, ("us-east-1",))]


def test_an_account_read_with_the_own_credentials() -> None:
    listed = configured_targets(registry(include=[{"id": A, "assume": False}]))
    assert listed.targets == [AccountTarget(A, ("us-east-1", "sa-east-1"), None, None)]


def test_role_templates_must_put_the_account_in_its_place() -> None:
    assert role_arn(SCANNER, A) == f"arn:aws:iam::{A}:role/registry-hygiene-scanner"
    with pytest.raises(ValueError, match="names account"):
        role_arn(f"arn:aws:iam::{B}:role/x{{account}}", A)


def write_policy(directory: Path, registry_section: dict[str, Any]) -> Path:
    policy = yaml.safe_load((RULES_DIR / "default.yaml").read_text())
    policy["registry"] = registry_section
    directory.mkdir(exist_ok=True)
    (directory / "default.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    (directory / "projects.yaml").write_text((RULES_DIR / "projects.yaml").read_text())
    return directory


@pytest.mark.parametrize(
    ("accounts", "message"),
    [
        ({}, "list accounts in include, or set organization: true"),
        ({"include": [{"id": A}, {"id": A}]}, "listed twice"),
        ({"include": [{"id": A}], "exclude": [A]}, "both included and excluded"),
        ({"include": [{"id": "12345"}]}, "registry.accounts.include[0].id"),
        ({"organization": True, "scanner_role": "arn:aws:iam::111111111111:role/x"}, "{account}"),
        ({"organization": True, "duration_seconds": 600}, "duration_seconds"),
        ({"organization": True, "role": "x"}, "registry.accounts.role: unknown key"),
    ],
)
def test_bad_accounts_config_names_the_key(
    tmp_path: Path, accounts: dict[str, Any], message: str
) -> None:
    rules = write_policy(tmp_path, {"regions": ["us-east-1"], "accounts": accounts})
    with pytest.raises(ConfigError, match=r"default\.yaml:") as caught:
        load_config(rules)
    assert message in caught.value.message


def test_account_and_accounts_together_is_an_error(tmp_path: Path) -> None:
    rules = write_policy(tmp_path, {"account": A, "accounts": {"include": [{"id": B}]}})
    with pytest.raises(ConfigError, match=r"registry: .*not both"):
        load_config(rules)


def test_account_option_narrows_the_registry_to_listed_accounts() -> None:
    import boto3

    from hygiene.scan import open_registry
    from tests.builders import config as make_config

    session = boto3.Session(
        aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1"
    )
    policy = {"registry": {"accounts": {"include": [{"id": A}, {"id": B}]}}}
    config = make_config(policy)
    handle = open_registry(config, session=session, accounts=[B])
    assert handle.accounts is not None and handle.accounts.ids == [B]
    assert [(t.account, t.region) for t in handle.targets()] == [(B, "us-east-1")]
    with pytest.raises(ConfigError, match="--account 333333333333: not one of"):
        open_registry(config, session=session, accounts=[C])
    with pytest.raises(ConfigError, match=r"registry\.accounts is not configured"):
        open_registry(make_config(), session=session, accounts=[A])


def test_shards_start_reading_at_different_accounts_and_regions(monkeypatch) -> None:
    """Throttling is per account and region: shards spread over them from the start."""
    import boto3

    import hygiene.scan as scan
    from hygiene.collect.shards import Shard
    from tests.builders import config as make_config

    session = boto3.Session(
        aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1"
    )
    policy = {
        "registry": {
            "regions": ["us-east-1", "sa-east-1"],
            "accounts": {"include": [{"id": A}, {"id": B}, {"id": C}]},
        }
    }
    config = make_config(policy)
    first: list[tuple[str | None, str]] = []

    def record(targets, settings, **_):  # type: ignore[no-untyped-def]
        first.append((targets[0].account, targets[0].region))
        assert len(targets) == 6
        return None

    monkeypatch.setattr(scan, "collect_inventory", record)
    for index in range(3):
        handle = scan.open_registry(config, session=session)
        scan.collect(handle, config, progress=False, shard=Shard(index, 3))
    assert first == [(A, "us-east-1"), (B, "us-east-1"), (C, "us-east-1")]
