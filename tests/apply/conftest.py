from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hygiene.store import Store
from tests.apply.registry import Seeder
from tests.authz.world import deployed_store, proposal_in_grace, rules
from tests.faults import FaultProxy


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'hygiene.db'}") as opened:
        yield opened


@pytest.fixture(params=["sqlite", "postgresql"])
def either_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store on SQLite, then on the embedded PostgreSQL: a module whose tests must hold
    on both makes its ``store`` this one."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hygiene.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    with Store(url) as opened:
        yield opened


@pytest.fixture
def proxy(ecr: Any) -> Iterator[FaultProxy]:
    """The fault-injecting proxy in front of the embedded registry."""
    with FaultProxy(ecr.endpoint_url) as running:
        yield running


@pytest.fixture
def seeder(ecr: Any, now: datetime) -> Seeder:
    return Seeder(ecr, now)


@pytest.fixture
def clients(ecr: Any) -> Any:
    client = ecr.client()
    return lambda account, region: client


@pytest.fixture
def seeded(tmp_path: Path, seeder: Seeder, config, now, monkeypatch, ecr) -> dict[str, Any]:
    """A deployed store (admins: the AdministratorAccess permission set) holding one
    proposal past its grace period, and the CLI pointed at the embedded registry."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", ecr.endpoint_url)
    monkeypatch.delenv("HYGIENE_DEMO_TOKEN", raising=False)
    directory = rules(tmp_path / "rules", ["AdministratorAccess"])
    url = f"sqlite:///{tmp_path / 'hygiene.db'}"
    store = deployed_store(url, directory)
    return {
        **proposal_in_grace(store, seeder, config, now),
        "url": url,
        "store": store,
        "common": ["--rules-dir", str(directory), "--store", url],
    }


# a store of each kind for the CLI tests: SQLite always, PostgreSQL in the integration lane
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hygiene.db'}"
    return str(request.getfixturevalue("postgres_server").create_database())
