"""The tool's sessions read AWS's times in UTC (hygiene.collect.timestamps): the same
instants as botocore's own parser, so the same inventory, only faster."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.utils
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hygiene.collect.accounts import assumed_session
from hygiene.collect.ecr import collect_inventory
from hygiene.collect.session import ApiCallCounter, ecr_client, make_session
from hygiene.collect.timestamps import new_session, utc_timestamp
from hygiene.config import CollectSettings
from hygiene_demo.registry import DUMMY_CREDENTIALS, EmbeddedRegistry
from hygiene_demo.scale import seed_scale_registry

SETTINGS = CollectSettings(max_workers=4, max_attempts=1)
NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _local_zone_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """botocore writes times in the machine's zone: the lab's is not UTC (this
    machine's is), and only there do "the same instant" and "the same value" differ."""
    monkeypatch.setenv("TZ", "America/Sao_Paulo")
    time.tzset()
    assert time.timezone == 3 * 3600
    yield
    monkeypatch.undo()
    time.tzset()


def _same(value: Any) -> None:
    """``utc_timestamp(value)`` is botocore's instant (or botocore's very error)."""
    try:
        expected = botocore.utils.parse_timestamp(value)
    except Exception as exc:  # the same error type is the assertion
        with pytest.raises(type(exc)):
            utc_timestamp(value)
        return
    got = utc_timestamp(value)
    assert got == expected and got.utcoffset() == expected.utcoffset()


@given(st.floats(min_value=-2e9, max_value=4e10, allow_nan=False))
def test_a_number_is_botocores_instant_in_utc(value: float) -> None:
    got = utc_timestamp(value)
    assert got.tzinfo is UTC
    assert got == botocore.utils.parse_timestamp(value)


@given(st.integers(min_value=-(2**31), max_value=2**35))
def test_an_integer_is_botocores_instant_in_utc(value: int) -> None:
    got = utc_timestamp(value)
    assert got.tzinfo is UTC
    assert got == botocore.utils.parse_timestamp(value)


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-28T03:00:00Z",
        "2026-11-28T03:00:00.123456+01:00",
        "Sat, 28 Nov 2026 03:00:00 GMT",
        "1764298800",
        "1764298800.5",
        True,
        1e20,
        -1e20,
        "not a time",
    ],
)
def test_anything_else_is_botocores_own(value: Any) -> None:
    """Text (XML and query protocols), numeric text, booleans and out-of-range numbers
    go to botocore's parser: the same result, or the same error."""
    _same(value)


def test_text_keeps_botocores_zone() -> None:
    text = "2026-11-28T03:00:00.123456+01:00"
    assert utc_timestamp(text) == botocore.utils.parse_timestamp(text)
    assert utc_timestamp(text).utcoffset() == botocore.utils.parse_timestamp(text).utcoffset()


def _pushed_at(session: boto3.Session, registry: EmbeddedRegistry) -> list[datetime]:
    client = session.client("ecr", endpoint_url=registry.endpoint_url)
    repository = client.describe_repositories()["repositories"][0]["repositoryName"]
    details = client.describe_images(repositoryName=repository)["imageDetails"]
    return [d["imagePushedAt"] for d in details]


def test_every_session_the_tool_makes_reads_times_in_utc(
    ecr: EmbeddedRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """make_session (the credential chain), an account's assumed-role session and the
    embedded registry's: UTC datetimes, the instants a plain boto3 session reads."""
    seed_scale_registry(ecr, 2, 5, NOW)
    for key, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(key.upper(), value)
    plain = _pushed_at(boto3.Session(**DUMMY_CREDENTIALS, region_name="us-east-1"), ecr)
    assert plain and all(t.tzinfo is not UTC for t in plain)  # botocore's local zone
    credentials = {
        "access_key": "testing",
        "secret_key": "testing",
        "token": "testing",
        "expiry_time": "2099-01-01T00:00:00+00:00",
    }
    sessions = {
        "make_session": make_session(None, "us-east-1"),
        "assumed_session": assumed_session(lambda: credentials, "us-east-1"),
        "embedded": ecr.session(),
        "new_session": new_session(**DUMMY_CREDENTIALS, region_name="us-east-1"),
    }
    for name, session in sessions.items():
        times = _pushed_at(session, ecr)
        assert times == plain, name
        assert all(t.tzinfo is UTC for t in times), name


def test_the_inventory_is_the_same_with_botocores_parser(ecr: EmbeddedRegistry) -> None:
    """The frames read through the UTC parser equal those read through botocore's."""
    seed_scale_registry(ecr, 6, 40, NOW)

    def inventory(session: boto3.Session) -> Any:
        counter = ApiCallCounter()
        counter.attach(session)
        client = ecr_client(session, "us-east-1", SETTINGS, ecr.endpoint_url)
        return collect_inventory({"us-east-1": client}, SETTINGS, api_calls=counter.as_dict)

    plain = inventory(boto3.Session(**DUMMY_CREDENTIALS, region_name="us-east-1"))
    utc = inventory(ecr.session())
    assert len(plain.images) == 240
    assert plain.images["last_pull"].notna().any() and plain.images["pushed_at"].notna().all()
    pd.testing.assert_frame_equal(plain.images, utc.images)
    pd.testing.assert_frame_equal(plain.repositories, utc.repositories)
