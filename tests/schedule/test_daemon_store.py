"""A daemon runs job after job in one process: each run's store is closed when the run
ends, so its SQLite connections (the database, its WAL and shared-memory files) do not
pile up over weeks of runs.

The production wiring (``hygiene.wiring:build_job_deps``) on the embedded registry and a
real SQLite store; the open files are read from ``/proc/self/fd``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hygiene import jobs
from hygiene.authz.identity import DEMO_TOKEN_ENV
from tests.apply.registry import Seeder
from tests.authz.world import rules as trust_rules


def open_store_files(database: Path) -> list[str]:
    """The open file descriptors of this process on the store's files."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target.startswith(str(database)):
            found.append(target)
    return sorted(found)


def test_scheduled_runs_in_one_daemon_do_not_pile_up_store_connections(
    ecr: Any, tmp_path: Path, monkeypatch: Any, now: Any
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", ecr.endpoint_url)
    monkeypatch.delenv(DEMO_TOKEN_ENV, raising=False)
    monkeypatch.delenv(jobs.DEPS_ENV, raising=False)  # the production wiring
    seeder = Seeder(ecr, now)
    repo = seeder.repo("suporte/api")
    for n in range(4):
        seeder.image(repo, f"v{n}", days_old=400 - n)
    database = tmp_path / "hygiene.db"
    rules = trust_rules(
        tmp_path / "rules",
        ["AdministratorAccess"],
        store={"url": f"sqlite:///{database}"},
        report={"out_dir": str(tmp_path / "out")},
        in_use={"aws_sources": []},
    )
    statuses = []
    for kind in ("nightly", "weekly", "nightly", "weekly", "nightly", "nightly"):
        job = jobs.scheduled_nightly if kind == "nightly" else jobs.scheduled_weekly
        statuses.append(job(str(rules)))
        assert open_store_files(database) == [], (kind, len(statuses))
    assert statuses == ["ok"] * 6  # runs that went well: the case the daemon left open
