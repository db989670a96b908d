"""A daemon runs job after job in one process: each run's store is closed when the run
ends, so its SQLite connections (the database, its WAL and shared-memory files) do not
pile up over weeks of runs; and so are its AWS clients, so their connection pools do not
keep sockets to AWS open until the garbage collector happens to find them.

The production wiring (``hygiene.wiring:build_job_deps``) on the embedded registry and a
real SQLite store; the open files are read from ``/proc/self/fd``, the sockets they are
from ``/proc/self/net/tcp``. The AWS clients reach the registry through the fault proxy
(tests/faults.py), which keeps connections alive as AWS does (the embedded server closes
each after its answer, so a client's pool would hold nothing); a client's socket is one
whose *remote* port is the proxy's (the proxy's own sockets in this process have it as
their local port).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from hygiene import jobs
from hygiene.authz.identity import DEMO_TOKEN_ENV
from hygiene.scan import RegistryAccess
from tests.apply.registry import Seeder
from tests.authz.world import rules as trust_rules
from tests.faults import FaultProxy


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


def client_sockets(port: int) -> set[str]:
    """The socket inodes this process holds connected to ``port`` on loopback (client
    side), whatever their TCP state."""
    connected = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table, encoding="ascii") as lines:
            next(lines)  # the header
            for line in lines:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port:
                    connected.add(fields[9])  # the inode
    held = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in connected:
            held.add(target[8:-1])
    return held


@pytest.fixture
def proxy(ecr: Any) -> Iterator[FaultProxy]:
    with FaultProxy(ecr.endpoint_url) as running:
        yield running


def test_scheduled_runs_in_one_daemon_do_not_pile_up_store_connections_or_sockets(
    ecr: Any, proxy: FaultProxy, tmp_path: Path, monkeypatch: Any, now: Any
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint_url)
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
        in_use={"aws_sources": ["ecs", "lambda", "batch"]},
    )
    port = urlsplit(proxy.endpoint_url).port
    assert port is not None and client_sockets(port) == set()
    # each run's objects outlive it here, as anything may keep them (a traceback, a log
    # record, a cycle the collector has not reached): the daemon itself must close them
    built: list[Any] = []
    production_deps, production_open = jobs.load_deps, RegistryAccess.open

    def load_deps(config: Any, reference: str | None = None) -> Any:
        built.append(production_deps(config, reference))
        return built[-1]

    def open_registry(access: RegistryAccess, config: Any) -> Any:
        built.append(production_open(access, config))
        return built[-1]

    monkeypatch.setattr(jobs, "load_deps", load_deps)
    monkeypatch.setattr(RegistryAccess, "open", open_registry)
    statuses = []
    for kind in ("nightly", "weekly", "nightly", "weekly", "nightly", "nightly"):
        job = jobs.scheduled_nightly if kind == "nightly" else jobs.scheduled_weekly
        statuses.append(job(str(rules)))
        assert open_store_files(database) == [], (kind, len(statuses))
        # every client the run made (ECR, and the in-use sources') closed its pool
        assert client_sockets(port) == set(), (kind, len(statuses))
    assert statuses == ["ok"] * 6  # runs that went well: the case the daemon left open
    assert len(built) == 12  # each run's deps and registry handle
    # the runs did read through the proxy: ECR and the in-use sources (JSON and REST)
    operations = {operation for operation, _ in proxy.seen}
    assert {"DescribeRepositories", "ListClusters", "ListFunctions"} <= operations
    assert "DescribeJobDefinitions" in operations
