from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hygiene import jobs
from tests import builders
from tests.jobs import fakes


@pytest.fixture(autouse=True)
def clear_stop_flag() -> Iterator[None]:
    jobs.STOP.clear()
    yield
    jobs.STOP.clear()


@pytest.fixture(autouse=True)
def fresh_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test is a daemon that has loaded no configuration yet."""
    from hygiene import lastconfig

    monkeypatch.setattr(lastconfig, "LAST", lastconfig.LastLoaded())


@pytest.fixture
def make_rules(tmp_path: Path) -> Callable[..., Path]:
    """A rules dir like rules/ whose store is a SQLite file in tmp_path."""

    def make(**schedule: Any) -> Path:
        policy = builders.shipped_policy()
        policy["store"] = {"url": f"sqlite:///{tmp_path / 'hygiene.db'}"}
        policy["schedule"].update(schedule)
        return builders.write_rules(tmp_path / "rules", policy)

    return make


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[fakes.World]:
    """The in-memory world the jobs of an in-process scheduler or CLI run use."""
    world = fakes.new_world()
    monkeypatch.setattr(fakes, "SHARED", world)
    monkeypatch.setenv(jobs.DEPS_ENV, "tests.jobs.fakes:shared_deps")
    yield world
