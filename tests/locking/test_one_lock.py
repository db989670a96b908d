"""One lock for every run that reads the registry to plan or changes it, on both stores.

Each test starts a real run in a child process that holds the lock (tests/locking/holder.py:
the production command, paused at its first registry read), then runs a second real
command in this process (the CLI, as ``hygiene …`` runs it) while the child holds it.
The second must exit 5 having recorded and changed nothing; once released, the first
finishes.
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
from hygiene.cli import cli
from hygiene.cli.common import run_cli
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


@pytest.fixture
def setup(
    tmp_path: Path,
    store_url: str,
    subprocess_env: dict[str, str],
    seeder: Seeder,
    ecr,
    now,
    monkeypatch: pytest.MonkeyPatch,
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
    for name in ("AWS_ENDPOINT_URL", "HYGIENE_DEMO_TOKEN", "HYGIENE_STORE_URL"):
        monkeypatch.setenv(name, env[name])  # the same for the commands run here
    monkeypatch.chdir(tmp_path)
    yield Setup(store_url, env, tmp_path, seeded)


def here(setup: Setup, kind: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run ``hygiene <kind>`` in this process, as the console script does."""
    argv = [*COMMANDS[kind], "--rules-dir", setup.env["HYGIENE_RULES_DIR"]]
    code = run_cli(cli, argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


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
    setup: Setup, seeder: Seeder, holding: str, contending: str, capsys
) -> None:
    # the child imports pandas, boto3 and SQLAlchemy, then runs the job (~3 s)
    holder = start_holder(setup, holding)
    try:
        code, output = here(setup, contending, capsys)
        assert code == 5, output
        assert f"pid {holder.pid} since" in output
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


def test_a_killed_run_is_marked_abandoned_by_the_next_one(setup: Setup, capsys) -> None:
    holder = start_holder(setup, "nightly")
    killed = setup.store().runs()
    assert [(r.kind, r.status) for r in killed] == [("nightly", "running")]
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(30)
    # PostgreSQL frees a dead client's advisory lock a moment after it dies
    deadline = time.monotonic() + 15
    while True:
        code, output = here(setup, "nightly", capsys)
        if code != 5 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert code == 0, output
    store = setup.store()
    (old,) = [r for r in store.runs() if r.id == killed[0].id]
    assert old.status == "abandoned" and old.finished_at is not None
    assert "stopped without finishing" in old.errors[-1]
    assert run_cli(cli, ["runs", "--format", "json"]) == 0
    statuses = {r["id"]: r["status"] for r in json.loads(capsys.readouterr().out)}
    assert statuses[old.id] == "abandoned"
    assert sorted(statuses.values()) == ["abandoned", "ok"]
