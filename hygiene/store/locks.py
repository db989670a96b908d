"""The registry lock: one run at a time reads the registry to plan, or changes it.

Every command that does either takes :data:`REGISTRY_LOCK`: ``hygiene run nightly|weekly``
(and the scheduler's runs), ``hygiene apply`` and ``hygiene lifecycle propose --save``.
An apply inside a nightly run works under the run's lock. Taking the lock also closes the
books of runs whose process died holding it: they are marked ``abandoned``.

On SQLite the lock is a row, which nothing releases when its process dies: the holder
refreshes the row's ``heartbeat_at`` every :data:`HEARTBEAT_EVERY` from a thread of its
own. A run on the holder's host takes the lock over only when the holder's process is
gone; a run on another host, which cannot ask, when the holder was silent for the
store's stale-lock age. Before each change to the registry, apply asks
:meth:`StoreLocks.check_lock`: a run whose lock was taken over (frozen past that age,
seen from another host) or whose PostgreSQL session holding the lock dropped stops
there, and changes nothing more.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from hygiene.errors import LockHeldError, LockLostError
from hygiene.store.base import StoreBase, utcnow, whoami
from hygiene.store.models import LockRow, RunRow

log = logging.getLogger(__name__)

REGISTRY_LOCK = "registry"
"""The one lock of every run that reads the registry to plan or writes to it."""
LOCKED_RUN_KINDS = ("nightly", "weekly", "apply")
"""Kinds of run recorded only while :data:`REGISTRY_LOCK` is held: one of them still
``running`` when the lock is taken again belongs to a process that is gone."""
HEARTBEAT_EVERY = timedelta(minutes=1)
"""How often a SQLite lock's holder refreshes ``heartbeat_at``."""
LEGACY_STALE_LOCK = timedelta(hours=12)
"""When a lock row without a heartbeat (written by a version before heartbeats) is
taken over: as it was then, this long after ``acquired_at``."""


class _Heartbeat:
    """Calls ``beat`` every ``every`` seconds in a daemon thread until :meth:`stop`.
    ``beat`` returns False when the lock is no longer this holder's: :attr:`lost` is
    set and the thread ends. An error (the database busy, unreachable) is logged and
    the next beat tries again; the stale-lock age is many beats long."""

    def __init__(self, beat: Callable[[], bool], every: float, name: str) -> None:
        self._beat = beat
        self._every = every
        self._stopped = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lock {name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._every):
            try:
                held = self._beat()
            except SQLAlchemyError as exc:
                log.warning("could not refresh the lock's heartbeat (tries again): %s", exc)
                continue
            if not held:
                log.error("this run's lock was taken over by another run: it changes nothing more")
                self.lost.set()
                return

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


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
        one of another host (whose process cannot be asked) once its holder gave no
        sign of life (its heartbeat, every minute) for ``stale_lock_after``. Raises
        :class:`LockHeldError` naming the holder and since when, at once (no waiting).
        Once the registry lock is held, runs left ``running`` by a process that died
        holding it are marked ``abandoned``.
        """
        holder = holder or whoami()
        if self.dialect == "postgresql":
            with self._pg_lock(name, holder):
                if name == REGISTRY_LOCK:
                    self._abandon_orphans(holder)
                yield
        else:
            acquired = self._row_lock_acquire(name, holder)
            mine = (LockRow.name == name, LockRow.holder == holder, LockRow.acquired_at == acquired)

            def beat() -> bool:
                with self.session() as session:
                    refreshed = session.execute(
                        update(LockRow).where(*mine).values(heartbeat_at=utcnow())
                    )
                    return bool(refreshed.rowcount)  # type: ignore[attr-defined]

            def still_held() -> bool:
                with self.session() as session:
                    return session.scalar(select(LockRow.name).where(*mine)) is not None

            heartbeat = _Heartbeat(beat, HEARTBEAT_EVERY.total_seconds(), name)
            self._held_locks[name] = lambda: not heartbeat.lost.is_set() and still_held()
            try:
                if name == REGISTRY_LOCK:
                    self._abandon_orphans(holder)
                yield
            finally:
                heartbeat.stop()
                self._held_locks.pop(name, None)
                with self.session() as session:
                    session.execute(delete(LockRow).where(*mine))

    def check_lock(self, name: str = REGISTRY_LOCK) -> None:
        """Raise :class:`LockLostError` when this store took ``name`` and no longer
        holds it: on SQLite another run took the row over (a run on another host, after
        this process gave no sign of life for the stale-lock age: frozen, suspended), on
        PostgreSQL the session holding the advisory lock is gone (the server released
        it). Apply asks before each change to the registry. Nothing to check when this
        store does not hold ``name`` (a caller's own lock, a dry run)."""
        held = self._held_locks.get(name)
        if held is None:
            return
        try:
            still = held()
        except SQLAlchemyError as exc:
            raise LockLostError(
                f"lock {name!r}: cannot tell whether this run still holds it: {exc}"
            ) from exc
        if not still:
            raise LockLostError(
                f"lock {name!r}: this run no longer holds it (another run may be changing the "
                "registry): stopped before changing anything more"
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

    def _row_lock_acquire(self, name: str, holder: str) -> datetime:
        """Insert the lock row (after taking over a stale one); returns its
        ``acquired_at``, which with ``holder`` names this holding of the lock."""
        now = utcnow()
        host = socket.gethostname()
        with self.session() as session:
            row = session.get(LockRow, name)
            if row is not None:
                why = self._stale(row, now, host)
                if why:
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
                    LockRow(
                        name=name,
                        holder=holder,
                        host=host,
                        pid=os.getpid(),
                        acquired_at=now,
                        heartbeat_at=now,
                    )
                )
        except IntegrityError:
            raise self._held_error(name) from None
        return now

    def _stale(self, row: LockRow, now: datetime, host: str) -> str:
        """Why the lock ``row`` may be taken over ("" when it may not). A holder on this
        host is asked directly: taken over when its process is gone, kept however long
        and however quietly it runs while it lives. Another host's holder when it gave
        no sign of life for the stale-lock age (a row without heartbeats:
        :data:`LEGACY_STALE_LOCK` after it was taken)."""
        if row.host == host:
            return "" if _holder_alive(row.pid, row.acquired_at) else "its process is gone"
        if row.heartbeat_at is None:
            if now - row.acquired_at > LEGACY_STALE_LOCK:
                return "it is older than the stale limit"
            return ""
        if now - row.heartbeat_at > self.stale_lock_after:
            silent = now - row.heartbeat_at
            return f"no sign of life from its holder for {int(silent.total_seconds() // 60)} min"
        return ""

    @contextmanager
    def _pg_lock(self, name: str, holder: str) -> Iterator[None]:
        key = _lock_key(name)
        connection: Connection = self.engine.connect()
        try:
            got = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            connection.commit()
            if not got:
                raise self._held_error(name)
            high, low = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF  # how pg_locks shows it

            def still_held() -> bool:  # on the lock's own session: gone if it dropped
                count = connection.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                        " AND pid = pg_backend_pid() AND classid = :high AND objid = :low"
                        " AND objsubid = 1"
                    ),
                    {"high": high, "low": low},
                ).scalar()
                connection.commit()
                return bool(count)

            self._held_locks[name] = still_held
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
                self._held_locks.pop(name, None)
                try:
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    connection.commit()
                except SQLAlchemyError as exc:  # the session is gone, and the lock with it
                    log.warning("could not release lock %r (its session is gone): %s", name, exc)
                finally:
                    with self.session() as session:
                        session.execute(delete(LockRow).where(LockRow.name == name))
        finally:
            # Never hand a connection that might still hold the lock back to the pool:
            # closing the server session releases every advisory lock it held.
            connection.invalidate()
            connection.close()
