from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hygiene.store import Store
from tests.apply.registry import Seeder


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'hygiene.db'}") as opened:
        yield opened


@pytest.fixture
def seeder(ecr: Any, now: datetime) -> Seeder:
    return Seeder(ecr, now)


@pytest.fixture
def clients(ecr: Any) -> Any:
    client = ecr.client()
    return lambda account, region: client
