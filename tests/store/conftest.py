from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hygiene.store import Store
from tests.postgres import EmbeddedPostgres, postgres_server

__all__ = ["postgres_server"]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, then a database on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hygiene.db'}"
    else:
        server: EmbeddedPostgres = request.getfixturevalue("postgres_server")
        yield server.create_database()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store(store_url) as opened:
        yield opened
