"""The collector under transient faults: throttling, 500/503 and dropped connections.

A :class:`~hygiene_demo.faults.FaultProxy` serves the embedded registry and answers a
share of the requests with a fault instead of moto's answer. The scan must still give
the inventory a fault-free scan gives: botocore retries each call, and a repository
whose read failed anyway (botocore's retry quota is per client and runs out under
sustained faults, docs/ecr-facts.md "Rate limits and retries") is read again after the
pool drains, with a fresh client. These tests assert inventories, not timing.

Two things are shortened so the tests take seconds, not minutes; neither changes which
attempts are made: botocore's wait between attempts (a hundredth of it) and the wait
before a later pass (``pass_backoff_seconds``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from botocore.retries import standard

from hygiene.config import CollectSettings, Config, Policy, ProjectsRegistry
from hygiene.inventory import Inventory
from hygiene.scan import collect, open_registry
from hygiene_demo.faults import FaultProxy
from hygiene_demo.registry import EmbeddedRegistry
from hygiene_demo.scale import seed_scale_registry

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
REPOSITORIES = 1000  # one image each: four calls a repository
_REFERENCE: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}


def _config(**collect: Any) -> Config:
    settings = CollectSettings(**{"pass_backoff_seconds": 0.05, **collect})
    return Config(policy=Policy(collect=settings), projects=ProjectsRegistry())


def _scan(registry: EmbeddedRegistry, endpoint_url: str, config: Config) -> Inventory:
    handle = open_registry(config, endpoint_url=endpoint_url, session=registry.session())
    return collect(handle, config, now=NOW, progress=False)


def _frames(inventory: Inventory) -> tuple[pd.DataFrame, pd.DataFrame]:
    images = inventory.images.sort_values(["repository", "digest"]).reset_index(drop=True)
    repositories = inventory.repositories.sort_values("name").reset_index(drop=True)
    return images, repositories


@pytest.fixture
def registry(ecr: EmbeddedRegistry) -> EmbeddedRegistry:
    seed_scale_registry(ecr, REPOSITORIES, 1, NOW)
    return ecr


@pytest.fixture
def small_registry(ecr: EmbeddedRegistry) -> EmbeddedRegistry:
    """100 repositories of a manifest and a two-platform index (five calls each: the
    index manifest is read too)."""
    seed_scale_registry(ecr, 100, 4, NOW, index_every=2)
    return ecr


@pytest.fixture
def short_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    delay = standard.ExponentialBackoff.delay_amount
    monkeypatch.setattr(
        standard.ExponentialBackoff,
        "delay_amount",
        lambda self, context: delay(self, context) / 100,
    )


@pytest.fixture
def reference(registry: EmbeddedRegistry) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fault-free scan (seeding is deterministic, so one per test process)."""
    if "frames" not in _REFERENCE:
        inventory = _scan(registry, registry.endpoint_url, _config())
        assert inventory.run.complete
        assert len(inventory.repositories) == len(inventory.images) == REPOSITORIES
        _REFERENCE["frames"] = _frames(inventory)
    return _REFERENCE["frames"]


@pytest.fixture
def proxy(ecr: EmbeddedRegistry, request: pytest.FixtureRequest) -> Iterator[FaultProxy]:
    with FaultProxy(ecr.endpoint_url, **request.param) as running:
        yield running


@pytest.mark.usefixtures("short_backoff")
@pytest.mark.parametrize("proxy", [{"fault_rate": 0.2, "seed": 20}], indirect=True)
def test_twenty_percent_faults_give_the_fault_free_inventory(
    registry: EmbeddedRegistry,
    reference: tuple[pd.DataFrame, pd.DataFrame],
    proxy: FaultProxy,
) -> None:
    inventory = _scan(registry, proxy.endpoint_url, _config(retry_mode="standard"))
    assert set(proxy.injected) == {"throttle", "500", "503", "drop"}  # every kind happened
    assert sum(proxy.injected.values()) > 0.15 * sum(proxy.requests.values())
    assert inventory.run.complete, inventory.run.errors[:3]
    images, repositories = _frames(inventory)
    pd.testing.assert_frame_equal(images, reference[0])
    pd.testing.assert_frame_equal(repositories, reference[1])


@pytest.mark.usefixtures("short_backoff")
@pytest.mark.parametrize("proxy", [{"fault_rate": 0.4, "seed": 40}], indirect=True)
def test_forty_percent_faults_read_nearly_every_repository(
    registry: EmbeddedRegistry,
    reference: tuple[pd.DataFrame, pd.DataFrame],
    proxy: FaultProxy,
) -> None:
    """botocore's quota runs out at this rate; the later passes with fresh clients read
    what the first one could not. What was read is exactly what the fault-free scan read."""
    inventory = _scan(registry, proxy.endpoint_url, _config(retry_mode="standard"))
    images, repositories = _frames(inventory)
    unread = repositories["scan_error"].notna()
    assert unread.sum() <= 0.01 * REPOSITORIES, repositories.loc[unread, "scan_error"].head()
    read_names = set(repositories.loc[~unread, "name"])
    expected_images = reference[0][reference[0]["repository"].astype(str).isin(read_names)]
    pd.testing.assert_frame_equal(
        images.reset_index(drop=True), expected_images.reset_index(drop=True)
    )
    expected_repositories = reference[1][reference[1]["name"].isin(read_names)]
    pd.testing.assert_frame_equal(
        repositories[~unread].reset_index(drop=True), expected_repositories.reset_index(drop=True)
    )


@pytest.mark.usefixtures("short_backoff")
def test_forty_percent_faults_without_later_passes_lose_repositories(
    registry: EmbeddedRegistry,
) -> None:
    """The same faults with one pass only: the retry quota runs out and repositories go
    unread. (What the later passes are for; if this ever reads everything, the fault
    mix no longer exhausts botocore's quota and the test above proves less.)"""
    with FaultProxy(registry.endpoint_url, fault_rate=0.4, seed=40) as proxy:
        inventory = _scan(
            registry, proxy.endpoint_url, _config(retry_mode="standard", read_passes=1)
        )
    unread = inventory.repositories["scan_error"].notna().sum()
    assert unread > 0.05 * REPOSITORIES
    assert any("quota" in e.message or "Exception" in e.message for e in inventory.run.errors)


@pytest.mark.usefixtures("short_backoff")
@pytest.mark.parametrize(
    "proxy", [{"fault_rate": 0.1, "faults": ("500", "503", "drop"), "throttle_above": 50}],
    indirect=True,
)  # fmt: skip
def test_adaptive_mode_under_a_rate_quota_gives_the_fault_free_inventory(
    small_registry: EmbeddedRegistry, proxy: FaultProxy
) -> None:
    """ECR throttles above a rate; in adaptive mode every worker sends through one
    limiter per region (and so do the fresh clients of later passes). The endpoint
    throttles above 50 requests a second and fails 10% of the rest at random."""
    expected = _frames(_scan(small_registry, small_registry.endpoint_url, _config()))
    inventory = _scan(small_registry, proxy.endpoint_url, _config(retry_mode="adaptive"))
    assert proxy.injected["throttle"] > 0  # the quota was reached
    assert inventory.run.complete, inventory.run.errors[:3]
    images, repositories = _frames(inventory)
    assert images["is_index"].sum() == 100  # the index manifests were read through it too
    pd.testing.assert_frame_equal(images, expected[0])
    pd.testing.assert_frame_equal(repositories, expected[1])
