"""The in-use sources' clients made ahead (a scan makes them while the registry is read).

:func:`prepare_clients` makes the clients :func:`discover` would make for the scanner's
own account; ``discover`` reads with them (and makes none), and only when they were made
for the same settings and endpoint. In a scan each in-use client is made once.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import boto3

from hygiene.collect.workloads.discover import discover, prepare_clients
from hygiene.config import CollectSettings, InUseSettings
from hygiene.scan import collect, open_registry
from tests import builders
from tests.builders import NOW
from tests.workloads.images import host

H = host()
ONE_TRY = CollectSettings(max_attempts=1, connect_timeout=1, read_timeout=5)
IN_USE_SERVICES = {"ecs", "eventbridge", "lambda", "batch"}  # botocore event names


def _session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )


def _made(session: boto3.Session) -> Counter[str]:
    """Counts the clients ``session`` makes from now on, by service."""
    made: Counter[str] = Counter()
    lock = threading.Lock()

    def record(event_name: str, **_: Any) -> None:
        with lock:
            made[event_name.split(".")[-1]] += 1  # creating-client-class.<service>

    session.events.register("creating-client-class", record)
    return made


def _states(discovery: Any) -> list[tuple[str, str, int]]:
    return [(s.name, s.state, s.references) for s in discovery.statuses]


def _seed(aws: Any) -> None:
    aws.cluster("prod")
    aws.service("prod", "api", aws.task_definition("api", f"{H}/ml/api:v1"))


def test_discover_reads_with_the_prepared_clients_and_makes_none(aws):
    _seed(aws)
    settings = InUseSettings(regions=["us-east-1", "eu-west-1"])
    expected = discover(
        _session(), settings, ONE_TRY, regions=["us-east-1"], endpoint_url=aws.endpoint_url
    )
    session = _session()
    prepared = prepare_clients(
        session, settings, ONE_TRY, regions=["us-east-1"], endpoint_url=aws.endpoint_url
    )
    assert sorted(prepared.clients) == sorted(
        (service, region)
        for region in ("us-east-1", "eu-west-1")
        for service in ("ecs", "events", "lambda", "batch")
    )
    made = _made(session)
    discovery = discover(
        session,
        settings,
        ONE_TRY,
        regions=["us-east-1"],
        endpoint_url=aws.endpoint_url,
        prepared=prepared,
    )
    assert _states(discovery) == _states(expected)
    assert ("ecs us-east-1", "ok", 1) in _states(discovery)
    assert discovery.uses == expected.uses
    assert not made  # every client was taken from the prepared ones
    assert prepared.clients == {}  # each used once


def test_clients_prepared_for_other_settings_are_not_used(aws):
    _seed(aws)
    settings = InUseSettings()
    session = _session()
    other_endpoint = prepare_clients(
        session, settings, ONE_TRY, regions=["us-east-1"], endpoint_url="http://127.0.0.1:9"
    )
    other_retries = prepare_clients(
        session,
        settings,
        CollectSettings(max_attempts=2),
        regions=["us-east-1"],
        endpoint_url=aws.endpoint_url,
    )
    other_session = prepare_clients(
        _session(), settings, ONE_TRY, regions=["us-east-1"], endpoint_url=aws.endpoint_url
    )
    for prepared in (other_endpoint, other_retries, other_session):
        left = dict(prepared.clients)
        made = _made(session)
        discovery = discover(
            session,
            settings,
            ONE_TRY,
            regions=["us-east-1"],
            endpoint_url=aws.endpoint_url,
            prepared=prepared,
        )
        assert ("ecs us-east-1", "ok", 1) in _states(discovery)  # read at the right place
        assert made == dict.fromkeys(IN_USE_SERVICES, 1)  # made its own
        assert prepared.clients == left


def test_a_scan_makes_each_in_use_client_once(ecr, aws):
    """The scan makes the in-use clients while it reads the registry (once the first
    repository's read is in), and its discovery reads with them; the session's client
    building is serialised by one lock."""
    _seed(aws)
    config = builders.config({})
    session = ecr.session()
    for name in ("ml/api", "ml/web"):
        session.client("ecr", endpoint_url=ecr.endpoint_url).create_repository(repositoryName=name)
    made = _made(session)
    order: list[str] = []
    session.events.register(
        "creating-client-class", lambda event_name, **_: order.append(event_name)
    )
    session.events.register("after-call.ecr.*", lambda event_name, **_: order.append(event_name))
    handle = open_registry(config, endpoint_url=ecr.endpoint_url, session=session)
    assert handle.pools and all(
        pool._lock is handle.session_lock  # the lock the read passes take
        for pool in handle.pools.values()
    )
    inventory = collect(handle, config, now=NOW, progress=False)
    assert len(inventory.repositories) == 2 and inventory.run.complete
    # made once a repository's read was in, not while the first requests were made
    assert order.index("creating-client-class.ecs") > order.index(
        "after-call.ecr.ListTagsForResource"
    )
    assert {s.name: s.state for s in inventory.run.in_use if s.name.startswith("ecs")} == {
        "ecs us-east-1": "ok"
    }
    assert {service: made[service] for service in IN_USE_SERVICES} == dict.fromkeys(
        IN_USE_SERVICES, 1
    )
