"""Shared fixtures: the embedded ECR (a real moto server on loopback), config, clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)

from hygiene.config import Config, load_config
from hygiene_demo.registry import EmbeddedRegistry

# Records the AWS operations hygiene code calls; fails the run if one is not declared.
pytest_plugins = ["tests.iam_recorder"]

REPO_ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = REPO_ROOT / "rules"
# A fixed "now" so data-driven tests do not drift with the calendar.
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[EmbeddedRegistry]:
    """One moto server per test process (xdist worker)."""
    with EmbeddedRegistry() as registry:
        yield registry


@pytest.fixture
def ecr(embedded_server: EmbeddedRegistry) -> Iterator[EmbeddedRegistry]:
    """The embedded registry, emptied before and after each test."""
    embedded_server.reset()
    yield embedded_server
    embedded_server.reset()


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config(RULES_DIR)


@pytest.fixture
def now() -> datetime:
    return NOW
