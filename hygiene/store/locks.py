"""The registry lock: one run at a time reads the registry to plan, or changes it.

Every command that does either takes :data:`REGISTRY_LOCK`: ``hygiene run nightly|weekly``
(and the scheduler's runs), ``hygiene apply`` and ``hygiene lifecycle propose --save``.
An apply inside a nightly run works under the run's lock. Taking the lock also closes the
books of runs whose process died holding it: they are marked ``abandoned``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from hygiene.errors import LockHeldError
from hygiene.store.base import StoreBase, utcnow, whoami
from hygiene.store.models import LockRow, RunRow

log = logging.getLogger(__name__)

REGISTRY_LOCK = "registry"
"""The one lock of every run that reads the registry to plan or writes to it."""
LOCKED_RUN_KINDS = ("nightly", "weekly", "apply")
"""Kinds of run recorded only while :data:`REGISTRY_LOCK` is held: one of them still
``running`` when the lock is taken again belongs to a process that is gone."""


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``."""
    value = int.from_bytes(hashlib.sha256(f"hygiene:{name}".encode()).digest()[:8], "big")
    return value - (1 << 64) if value >= (1 << 63) else value


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


START_SLACK = timedelta(seconds=2)
"""How much later than its lock a process may seem to have started (the boot time in
/proc/stat is in whole seconds) and still be the one that took it."""


def _started_at(pid: int) -> datetime | None:
    """When process ``pid`` started (Linux /proc), or None when this system cannot say."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as machine:
            boot = next(int(line.split()[1]) for line in machine if line.startswith("btime "))
        return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), UTC)
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _holder_alive(pid: int, since: datetime) -> bool:
    """Is the process of this host that took a lock at ``since`` still running? Its pid
    must be alive and, where /proc says when that process started, belong to a process
    started before the lock was taken (not one that got the pid of a dead holder, as
    a container's process that is always pid 1)."""
    if not _pid_alive(pid):
        return False
    started = _started_at(pid)
    return started is None or started <= since + START_SLACK


class StoreLocks(StoreBase):
    """``with store.lock(name):`` — PostgreSQL advisory locks, or a row on SQLite."""

    @contextmanager
    def lock(self, name: str = REGISTRY_LOCK, *, holder: str | None = None) -> Iterator[None]:
        """Hold the named lock (by default :data:`REGISTRY_LOCK`) for the ``with`` block.

        PostgreSQL: a session-level ``pg_try_advisory_lock`` on a dedicated connection
        (released by the server if the process dies). SQLite: a row in ``locks``; a row
        left by a dead process on this host is taken over, one of a live process on this
        host never is (however long it runs: a second run beside it would overlap), and
        one of another host (whose process cannot be asked) once it is older than
        ``stale_lock_after``. Raises :class:`LockHeldError` naming the holder and since when, at
        once (no waiting). Once the registry lock is held, runs left ``running`` by a
        process that died holding it are marked ``abandoned``.
        """
        holder = holder or whoami()
        if self.dialect == "postgresql":
            with self._pg_lock(name, holder):
                if name == REGISTRY_LOCK:
                    self._abandon_orphans(holder)
                yield
        else:
            self._row_lock_acquire(name, holder)
            try:
                if name == REGISTRY_LOCK:
                    self._abandon_orphans(holder)
                yield
            finally:
                with self.session() as session:
                    session.execute(
                        delete(LockRow).where(LockRow.name == name, LockRow.holder == holder)
                    )

    def _abandon_orphans(self, holder: str) -> int:
        """Mark ``abandoned`` the runs still ``running`` whose lock we now hold."""
        now = utcnow()
        with self.session() as session:
            orphans = list(
                session.scalars(
                    select(RunRow).where(
                        RunRow.status == "running", RunRow.kind.in_(LOCKED_RUN_KINDS)
                    )
                )
            )
            for run in orphans:
                log.warning(
                    "run %s (%s, started %s on %s) never finished: marked abandoned",
                    run.id,
                    run.kind,
                    run.started_at.isoformat(timespec="seconds"),
                    run.host,
                )
                run.status = "abandoned"
                run.finished_at = now
                run.errors = [
                    *run.errors,
                    f"abandoned: its process ({run.host}) stopped without finishing the run; "
                    f"found by {holder} at {now.isoformat(timespec='seconds')}",
                ]
        return len(orphans)

    def lock_holder(self, name: str = REGISTRY_LOCK) -> tuple[str, datetime] | None:
        """Who holds ``name`` since when, as recorded in ``locks`` (None if free)."""
        with self.session() as session:
            row = session.get(LockRow, name)
            return None if row is None else (row.holder, row.acquired_at)

    def _held_error(self, name: str) -> LockHeldError:
        held = self.lock_holder(name)
        who = f"{held[0]} since {held[1].isoformat(timespec='seconds')}" if held else "another run"
        return LockHeldError(
            f"lock {name!r} is held by {who} (store {self.url}); wait for it to finish, "
            "or if that process is gone, run again after it is released"
        )

    def _row_lock_acquire(self, name: str, holder: str) -> None:
        now = utcnow()
        host = socket.gethostname()
        with self.session() as session:
            row = session.get(LockRow, name)
            if row is not None:
                here = row.host == host
                dead = here and not _holder_alive(row.pid, row.acquired_at)
                old = not here and now - row.acquired_at > self.stale_lock_after
                if dead or old:
                    why = "its process is gone" if dead else "it is older than the stale limit"
                    log.warning(
                        "taking over stale lock %r held by %s since %s (%s)",
                        name,
                        row.holder,
                        row.acquired_at.isoformat(),
                        why,
                    )
                    session.execute(
                        delete(LockRow).where(
                            LockRow.name == name, LockRow.acquired_at == row.acquired_at
                        )
                    )
        try:
            with self.session() as session:
                session.add(
                    LockRow(name=name, holder=holder, host=host, pid=os.getpid(), acquired_at=now)
                )
        except IntegrityError:
            raise self._held_error(name) from None

    @contextmanager
    def _pg_lock(self, name: str, holder: str) -> Iterator[None]:
        key = _lock_key(name)
        connection: Connection = self.engine.connect()
        try:
            got = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            connection.commit()
            if not got:
                raise self._held_error(name)
            with self.session() as session:
                session.merge(
                    LockRow(
                        name=name,
                        holder=holder,
                        host=socket.gethostname(),
                        pid=os.getpid(),
                        acquired_at=utcnow(),
                    )
                )
            try:
                yield
            finally:
                try:
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    connection.commit()
                finally:
                    with self.session() as session:
                        session.execute(delete(LockRow).where(LockRow.name == name))
        finally:
            # Never hand a connection that might still hold the lock back to the pool:
            # closing the server session releases every advisory lock it held.
            connection.invalidate()
            connection.close()
