"""A scan of an AWS Organization in moto: roles assumed into each account, IAM enforced."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.exceptions
import pytest

from hygiene.collect.accounts import AccountSessions, AccountTarget
from hygiene.collect.session import ApiCallCounter
from hygiene.config import AccountsSettings, Config, InUseSettings, RegistrySettings
from hygiene.scan import collect, open_registry
from hygiene_demo.registry import EmbeddedRegistry
from tests.accounts.org import EXTERNAL_ID, MANAGEMENT, REGIONS, Organization, organization


@pytest.fixture
def org(embedded_server: EmbeddedRegistry) -> Iterator[Organization]:
    with organization(embedded_server) as built:
        yield built


def config_for(config: Config, org: Organization, **accounts: Any) -> Config:
    # the management account has no member roles (StackSets do not deploy there)
    accounts = {"organization": True, "exclude": [MANAGEMENT], "external_id": EXTERNAL_ID,
                **accounts}  # fmt: skip
    registry = RegistrySettings(
        regions=list(REGIONS), endpoint_url=org.endpoint_url, accounts=AccountsSettings(**accounts)
    )
    # moto's IAM enforcement checks Batch's action in lower case and rejects some
    # signatures of the workload services (docs/ecr-facts.md): the in-use sources are
    # tested without enforcement (tests/workloads), the accounts' ECR reads here
    in_use = InUseSettings(aws_sources=[])
    return config.model_copy(
        update={"policy": config.policy.model_copy(update={"registry": registry, "in_use": in_use})}
    )


def test_every_active_account_is_read_through_its_scanner_role(
    org: Organization, config: Config, now: datetime
) -> None:
    settings = config_for(config, org)
    handle = open_registry(settings, session=org.hub_session())
    inventory = collect(handle, settings, now=now, progress=False)

    seen = set(
        zip(
            inventory.repositories["account"].astype(str),
            inventory.repositories["region"].astype(str),
            inventory.repositories["name"].astype(str),
            strict=True,
        )
    )
    expected = {(a, r, n) for (a, r), names in org.repositories.items() for n in names}
    assert seen == expected
    assert set(inventory.images["account"].astype(str)) == set(org.active)
    run = inventory.run
    # the suspended account is not read, and says why; the denied one makes the run
    # incomplete for that account only
    assert set(run.skipped_accounts) == {org.suspended, MANAGEMENT}
    assert "SUSPENDED" in run.skipped_accounts[org.suspended]
    assert not run.complete
    assert {e.account for e in run.errors} == {org.denied}
    assert {e.region for e in run.errors} == set(REGIONS)
    assert all(e.operation == "AssumeRole" and "AccessDenied" in e.message for e in run.errors)
    assert all(run.complete_for(a) for a in org.active)
    assert not run.complete_for(org.denied)
    assert sorted(run.scopes) == sorted((a, r) for a in org.active for r in REGIONS)
    assert run.api_calls["AssumeRole"] == len(org.active) + 1
    assert run.api_calls["ListAccounts"] == 1


def test_only_the_listed_accounts_are_read(
    org: Organization, config: Config, now: datetime
) -> None:
    chosen = org.active[1]
    settings = config_for(config, org, organization=False, include=[{"id": chosen}])
    inventory = collect(open_registry(settings, session=org.hub_session()), settings, now=now,
                        progress=False)  # fmt: skip
    assert set(inventory.repositories["account"].astype(str)) == {chosen}
    assert inventory.run.complete and "ListAccounts" not in inventory.run.api_calls


def test_the_scanner_role_cannot_delete_and_the_cleaner_role_can(
    org: Organization, config: Config
) -> None:
    settings = config_for(config, org)
    handle = open_registry(settings, session=org.hub_session())
    account = org.active[0]
    repository = org.repositories[(account, "us-east-1")][0]
    scanner = handle.scan_client(account, "us-east-1")
    with pytest.raises(botocore.exceptions.ClientError, match="not authorized"):
        scanner.delete_repository(registryId=account, repositoryName=repository, force=True)
    cleaner = handle.client(account, "us-east-1")
    cleaner.delete_repository(registryId=account, repositoryName=repository, force=True)
    names = [r["repositoryName"] for r in scanner.describe_repositories()["repositories"]]
    assert repository not in names


def test_apply_never_gets_a_client_for_an_account_it_does_not_read(
    org: Organization, config: Config
) -> None:
    from hygiene.errors import ApplyError

    settings = config_for(config, org)
    handle = open_registry(settings, session=org.hub_session())
    with pytest.raises(ApplyError, match="not one of the registry accounts"):
        handle.client(org.suspended, "us-east-1")
    with pytest.raises(ApplyError, match="not one of the registry accounts"):
        handle.client("999999999999", "us-east-1")


def test_assumed_credentials_are_refreshed_before_they_expire(
    org: Organization, config: Config
) -> None:
    """botocore refreshes when fewer than 15 minutes are left: with 1-hour sessions, a
    call 50 minutes after the first one assumes the role again; 10 minutes after, not."""
    settings = config_for(config, org, organization=False, include=[{"id": org.active[0]}])
    base = org.hub_session()
    counter = ApiCallCounter()
    counter.attach(base)
    clock = [datetime.now(UTC)]
    sessions = AccountSessions(
        base,
        settings.policy.registry,
        endpoint_url=org.endpoint_url,
        attach=counter.attach,
        time_fetcher=lambda: clock[0],
    )
    target = AccountTarget(org.active[0], REGIONS, *_roles(org.active[0]))
    ecr = sessions.open(target).client(
        "ecr", region_name="us-east-1", endpoint_url=org.endpoint_url
    )
    ecr.describe_repositories()
    assert counter.calls["AssumeRole"] == 1
    clock[0] += timedelta(minutes=10)
    ecr.describe_repositories()
    assert counter.calls["AssumeRole"] == 1
    clock[0] += timedelta(minutes=40)
    ecr.describe_repositories()
    assert counter.calls["AssumeRole"] == 2
    assert counter.calls["DescribeRepositories"] == 3


def _roles(account: str) -> tuple[str, str]:
    return (
        f"arn:aws:iam::{account}:role/registry-hygiene-scanner",
        f"arn:aws:iam::{account}:role/registry-hygiene-cleaner",
    )


def test_apply_uses_the_cleaner_of_the_proposals_account_and_skips_other_accounts(
    org: Organization, config: Config, tmp_path, now: datetime
) -> None:
    """An approved deletion in a member account is carried out through that account's
    cleaner role; one in an account the registry does not list is not touched."""
    from hygiene.apply import apply
    from hygiene.authz import Identity
    from hygiene.model import Action
    from hygiene.store import Store
    from tests import builders

    settings = config_for(config, org)
    handle = open_registry(settings, session=org.hub_session())
    inventory = collect(handle, settings, now=now, progress=False)
    account = org.active[0]
    images = inventory.images[
        (inventory.images["account"].astype(str) == account)
        & (inventory.images["tag_count"] == 0)
        & (inventory.images["region"].astype(str) == "us-east-1")
    ]
    row = images.iloc[0]
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    mine = builders.proposal(
        Action.DELETE_IMAGES, str(row.repository), digests=[str(row.digest)], account=account,
        evidence={"images": [{"digest": str(row.digest), "tags": [], "pushed_at":
                  row.pushed_at.isoformat(), "last_pull": None}]},
    )  # fmt: skip
    foreign = builders.proposal(
        Action.DELETE_IMAGES, str(row.repository), digests=[str(row.digest)],
        account=org.suspended,
    )  # fmt: skip
    # the embedded registry's admin, approving in the demo this apply runs in
    settings = settings.model_copy(
        update={"policy": settings.policy.model_copy(update={"admins": ["os:admin"]})}
    )
    builders.deployed(store, settings)
    store.upsert_proposals([mine, foreign], now)
    admin = Identity("os:admin", "demo:org")
    store.approve([mine.id, foreign.id], admin, now)
    store.mark_notified(now - timedelta(days=30), ids=[mine.id, foreign.id])
    result = apply(store, handle.client, settings, now, actor=admin, demo_id="org")
    assert "not one of the registry accounts" in result.not_eligible[foreign.id]
    assert result.states[mine.id][0] == "applied", result.states
    remaining = handle.scan_client(account, "us-east-1").describe_images(
        repositoryName=str(row.repository)
    )["imageDetails"]
    assert str(row.digest) not in {d["imageDigest"] for d in remaining}
