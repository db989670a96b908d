"""A boto3 session reused run after run (the demo's, a library caller's) carries nothing of
the runs before: each run counts its own calls, and logs each of its lines once.

Against the embedded registry (moto server): the registry opened, scanned and closed
twice on one session, as a process that keeps its session between runs does.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest

from hygiene.collect.session import ApiCallCounter
from hygiene.scan import RegistryHandle, collect, open_registry
from tests import builders
from tests.apply.registry import Seeder
from tests.builders import NOW

POLICY = {"in_use": {"aws_sources": ["ecs", "lambda", "batch"]}}


def one_run(ecr: Any, session: Any) -> tuple[RegistryHandle, dict[str, int]]:
    """Open the registry on ``session``, scan it with log lines for progress, close it;
    the handle and the calls the run recorded."""
    config = builders.config(POLICY)
    handle = open_registry(config, endpoint_url=ecr.endpoint_url, session=session)
    try:
        inventory = collect(handle, config, now=NOW, progress=None)
    finally:
        handle.close()
    return handle, dict(inventory.run.api_calls)


@pytest.fixture
def registry(ecr: Any) -> Any:
    seeder = Seeder(ecr, NOW)
    for name in ("suporte/api", "suporte/web", "ml/trainer"):
        repo = seeder.repo(name)
        seeder.image(repo, "v1", days_old=30)
    return ecr


def test_each_run_on_a_reused_session_counts_only_its_own_calls(registry: Any) -> None:
    session = registry.session()
    first, first_calls = one_run(registry, session)
    counted = first.counter.as_dict()
    assert counted["DescribeRepositories"] >= 1 and counted["ListClusters"] >= 1

    second, second_calls = one_run(registry, session)

    assert first.counter.as_dict() == counted  # the first run's counter stopped with it
    assert second_calls == first_calls  # the same registry read the same way
    assert second.counter.as_dict() == counted
    # a client made from the session later counts for no closed run
    session.client("ecr", endpoint_url=registry.endpoint_url).describe_repositories()
    assert first.counter.as_dict() == counted and second.counter.as_dict() == counted


def test_two_runs_on_one_session_log_each_line_once(
    registry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    session = registry.session()
    lines: list[Counter[tuple[str, str]]] = []
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            one_run(registry, session)
        lines.append(Counter((r.name, r.getMessage()) for r in caplog.records))
    first, second = lines
    assert any("scanned 3/3 repositories" in message for _, message in first)
    assert [line for line, n in second.items() if n > 1] == []
    assert second == first  # the second run says what the first said, once


def test_a_counter_attached_twice_counts_once_and_detached_counts_nothing(ecr: Any) -> None:
    session = ecr.session()
    counter = ApiCallCounter()
    counter.attach(session)
    counter.attach(session)
    client = session.client("ecr", endpoint_url=ecr.endpoint_url)
    client.describe_repositories()
    assert counter.as_dict() == {"DescribeRepositories": 1}

    counter.detach()
    session.client("ecr", endpoint_url=ecr.endpoint_url).describe_repositories()
    assert counter.as_dict() == {"DescribeRepositories": 1}
    counter.clients.close()
