"""One lock for every run that reads the registry to plan or changes it, on both stores.

Each test starts a real run in a child process that holds the lock (tests/locking/holder.py:
the production command, paused at its first registry read), then runs a second real
command (``python -m hygiene …``) in another process while the first one holds it. The
second must exit 5 having recorded and changed nothing; once released, the first finishes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hygiene.authz.identity import Identity, os_user
from hygiene.config import load_config
from hygiene.store import Store
from tests import builders
from tests.apply.registry import Seeder
from tests.authz.world import proposal_in_grace, rules

ME = f"os:{os_user()}"
COMMANDS = {
    "nightly": ["run", "nightly"],
    "weekly": ["run", "weekly", "--namespace", "suporte"],
    "apply": ["apply"],
}


@dataclass
class Setup:
    url: str
    env: dict[str, str]
    cwd: Path
    seeded: dict[str, Any]

    def store(self) -> Store:
        return Store(self.url)

    def command(self, kind: str) -> list[str]:
        return [sys.executable, "-m", "hygiene", *COMMANDS[kind]]


@pytest.fixture
def setup(
    tmp_path: Path, store_url: str, subprocess_env: dict[str, str], seeder: Seeder, ecr, now
) -> Iterator[Setup]:
    """The demo's situation: the registry proves the demo secret the processes get, the
    deployed rules list this user, a proposal approved in this demo is past its grace."""
    directory = rules(tmp_path / "rules", [ME])
    config = load_config(directory)
    store = Store(store_url)
    builders.deployed(store, config)
    seeded = proposal_in_grace(store, seeder, config, now - timedelta(days=1))
    store.approve([seeded["id"]], Identity(ME, f"demo:{ecr.demo_id}"))
    store.close()
    env = {
        **subprocess_env,
        "AWS_ENDPOINT_URL": ecr.endpoint_url,
        "HYGIENE_DEMO_TOKEN": str(ecr.demo_token),
        "HYGIENE_STORE_URL": store_url,
        "HYGIENE_RULES_DIR": str(directory),
        "HOLD_READY": str(tmp_path / "ready"),
        "HOLD_RELEASE": str(tmp_path / "release"),
    }
    yield Setup(store_url, env, tmp_path, seeded)


def start_holder(setup: Setup, kind: str) -> subprocess.Popen[str]:
    extra = COMMANDS[kind][2:] if COMMANDS[kind][0] == "run" else COMMANDS[kind][1:]
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.locking.holder", kind, *extra],
        env=setup.env,
        cwd=setup.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready = Path(setup.env["HOLD_READY"])
    deadline = time.monotonic() + 120
    while not ready.exists():
        if holder.poll() is not None or time.monotonic() > deadline:
            out, err = holder.communicate(timeout=10) if holder.poll() is not None else ("", "")
            holder.kill()
            pytest.fail(f"the {kind} holder never took the lock: {out}\n{err}")
        time.sleep(0.05)
    return holder


def release(setup: Setup, holder: subprocess.Popen[str]) -> tuple[int, str]:
    Path(setup.env["HOLD_RELEASE"]).write_text("go")
    out, err = holder.communicate(timeout=180)
    return holder.returncode, out + err


@pytest.mark.parametrize(
    ("holding", "contending"),
    [
        ("nightly", "apply"),
        ("apply", "nightly"),
        ("weekly", "apply"),
        ("apply", "apply"),
        ("nightly", "nightly"),
    ],
)
def test_a_second_run_is_refused_while_the_first_holds_the_lock(
    setup: Setup, seeder: Seeder, holding: str, contending: str
) -> None:
    # each child imports pandas, boto3 and SQLAlchemy (~2 s): two per test
    holder = start_holder(setup, holding)
    try:
        contender = subprocess.run(
            setup.command(contending),
            env=setup.env,
            cwd=setup.cwd,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert contender.returncode == 5, contender.stdout + contender.stderr
        assert f"pid {holder.pid} since" in contender.stderr
        during = setup.store().runs()
        # the holder's run is the only one recorded, and nothing was deleted meanwhile
        assert [r.kind for r in during] == [holding]
        assert seeder.live_digests(setup.seeded["repo"]) >= set(setup.seeded["digests"])
    finally:
        code, output = release(setup, holder)
    assert code == 0, output
    store = setup.store()
    assert [r.status for r in store.runs()] == ["ok"]
    if holding == "apply":
        assert seeder.live_digests(setup.seeded["repo"]) == {setup.seeded["kept"]}


def test_a_killed_run_is_marked_abandoned_by_the_next_one(setup: Setup) -> None:
    holder = start_holder(setup, "nightly")
    killed = setup.store().runs()
    assert [(r.kind, r.status) for r in killed] == [("nightly", "running")]
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(30)
    # PostgreSQL frees a dead client's advisory lock a moment after it dies
    deadline = time.monotonic() + 15
    while True:
        after = subprocess.run(
            setup.command("nightly"),
            env=setup.env,
            cwd=setup.cwd,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if after.returncode != 5 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert after.returncode == 0, after.stdout + after.stderr
    store = setup.store()
    (old,) = [r for r in store.runs() if r.id == killed[0].id]
    assert old.status == "abandoned" and old.finished_at is not None
    assert "stopped without finishing" in old.errors[-1]
    listed = subprocess.run(
        [sys.executable, "-m", "hygiene", "runs", "--format", "json"],
        env=setup.env,
        cwd=setup.cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    statuses = {r["id"]: r["status"] for r in json.loads(listed.stdout)}
    assert statuses[old.id] == "abandoned"
    assert sorted(statuses.values()) == ["abandoned", "ok"]
