from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hygiene.store import Store
from tests.postgres import EmbeddedPostgres


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, then a database on the real PostgreSQL
    (requested here, not as an argument, so only that parameter is an integration test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hygiene.db'}"
    else:
        server: EmbeddedPostgres = request.getfixturevalue("postgres_server")
        yield server.create_database()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store(store_url) as opened:
        yield opened
