"""The SQLite lock's heartbeat: a live run is never taken over, however long it runs; a
silent one is, after the stale-lock age; a run that lost its lock finds out
(``Store.check_lock``), on SQLite and on PostgreSQL."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update

import hygiene.store.locks as locks
from hygiene.errors import LockHeldError, LockLostError
from hygiene.store import Store
from hygiene.store.models import LockRow

OTHER_HOST = "worker-2.lab"  # a holder whose process this host cannot look at


def _sqlite(tmp_path: Path, **kw: object) -> Store:
    return Store(f"sqlite:///{tmp_path / 'h.db'}", **kw)  # type: ignore[arg-type]


def _holder_elsewhere(
    store: Store, *, acquired: timedelta, heartbeat: timedelta | None, name: str = "registry"
) -> None:
    """A lock row of a process on another host: taken ``acquired`` ago, last heartbeat
    ``heartbeat`` ago (None: a row written before heartbeats)."""
    now = datetime.now(UTC)
    with store.session() as session:
        session.add(
            LockRow(
                name=name,
                holder=f"cron@{OTHER_HOST} pid 4242",
                host=OTHER_HOST,
                pid=4242,
                acquired_at=now - acquired,
                heartbeat_at=None if heartbeat is None else now - heartbeat,
            )
        )


def test_a_long_run_with_a_recent_heartbeat_is_never_taken_over(tmp_path: Path) -> None:
    store = _sqlite(tmp_path)
    _holder_elsewhere(store, acquired=timedelta(days=2), heartbeat=timedelta(seconds=30))
    with pytest.raises(LockHeldError, match=f"cron@{OTHER_HOST} pid 4242 since"), store.lock():
        pass
    store.close()


def test_a_holder_silent_past_the_stale_age_is_taken_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _sqlite(tmp_path)
    _holder_elsewhere(store, acquired=timedelta(minutes=40), heartbeat=timedelta(minutes=16))
    with caplog.at_level(logging.WARNING, logger="hygiene.store.locks"), store.lock():
        holder = store.lock_holder()
        assert holder is not None and OTHER_HOST not in holder[0]
    assert "no sign of life from its holder for 16 min" in caplog.text
    store.close()


def test_the_stale_age_is_the_stores(tmp_path: Path) -> None:
    store = _sqlite(tmp_path, stale_lock_after=timedelta(hours=1))
    _holder_elsewhere(store, acquired=timedelta(hours=3), heartbeat=timedelta(minutes=16))
    with pytest.raises(LockHeldError), store.lock():
        pass
    store.close()


@pytest.mark.parametrize(
    ("age", "taken"), [(timedelta(hours=1), False), (timedelta(hours=13), True)]
)
def test_a_row_from_before_heartbeats_keeps_the_twelve_hour_rule(
    tmp_path: Path, age: timedelta, taken: bool
) -> None:
    """A run of the previous version still holding the lock while this one starts: its
    row has no heartbeat, so silence says nothing; it is taken over as it was then."""
    store = _sqlite(tmp_path)
    _holder_elsewhere(store, acquired=age, heartbeat=None)
    if taken:
        with store.lock():
            pass
    else:
        with pytest.raises(LockHeldError), store.lock():
            pass
    store.close()


def test_the_holder_refreshes_its_heartbeat_while_it_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locks, "HEARTBEAT_EVERY", timedelta(milliseconds=20))
    store = _sqlite(tmp_path)
    with store.lock():
        with store.session() as session:
            first = session.get(LockRow, "registry")
        assert first is not None and first.heartbeat_at == first.acquired_at
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with store.session() as session:
                row = session.get(LockRow, "registry")
            assert row is not None
            if row.heartbeat_at is not None and row.heartbeat_at > first.acquired_at:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the heartbeat never moved")
        store.check_lock()  # still ours
    assert store.lock_holder() is None  # released; the heartbeat thread is gone
    assert not any(t.name == "lock registry" for t in threading.enumerate())
    store.close()


def _take_over(url: str, name: str = "registry") -> None:
    """What another run does to a lock it found stale: its row replaces ours."""
    other = Store(url)
    with other.session() as session:
        session.execute(
            update(LockRow)
            .where(LockRow.name == name)
            .values(holder="cron@worker-3 pid 99", host="worker-3", pid=99)
        )
    other.close()


def test_a_run_whose_lock_was_taken_over_finds_out(tmp_path: Path) -> None:
    store = _sqlite(tmp_path)
    with store.lock():
        store.check_lock()
        _take_over(f"sqlite:///{tmp_path / 'h.db'}")
        with pytest.raises(LockLostError, match="no longer holds it") as lost:
            store.check_lock()
        assert lost.value.exit_code == 5
    # leaving the block does not release the other run's lock
    holder = store.lock_holder()
    assert holder is not None and holder[0] == "cron@worker-3 pid 99"
    store.close()


def test_the_heartbeat_notices_a_lost_lock_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(locks, "HEARTBEAT_EVERY", timedelta(milliseconds=20))
    store = _sqlite(tmp_path)
    with caplog.at_level(logging.ERROR, logger="hygiene.store.locks"), store.lock():
        _take_over(f"sqlite:///{tmp_path / 'h.db'}")
        deadline = time.monotonic() + 30
        while "taken over by another run" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "this run's lock was taken over by another run" in caplog.text
        with pytest.raises(LockLostError):
            store.check_lock()
    store.close()


def test_nothing_to_check_for_a_lock_this_store_does_not_hold(tmp_path: Path) -> None:
    store, other = _sqlite(tmp_path), _sqlite(tmp_path)
    with other.lock():
        store.check_lock()  # another store's (another process's) lock: not this one's
    store.check_lock()
    store.close()
    other.close()


@pytest.mark.integration
def test_a_postgres_run_whose_lock_session_dropped_finds_out(postgres_server) -> None:
    """The server releases an advisory lock with its session: a run whose lock
    connection was cut no longer holds the lock, and must not go on changing things."""
    url = postgres_server.create_database()
    store, other = Store(url), Store(url)
    with store.lock():
        store.check_lock()
        with other.engine.connect() as connection:
            cut = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted"
                )
            ).scalars()
            assert list(cut) == [True]
        with pytest.raises(LockLostError):
            store.check_lock()
        with other.lock():  # the server let it go: another run can take it now
            pass
    store.close()
    other.close()


@pytest.mark.integration
def test_a_postgres_lock_held_is_seen_held(postgres_server) -> None:
    url = postgres_server.create_database()
    store, other = Store(url), Store(url)
    with store.lock(), other.lock("another"):
        store.check_lock()
        other.check_lock("another")
        with pytest.raises(LockHeldError), other.lock():  # another store cannot take it
            pass
        store.check_lock()  # a failed attempt elsewhere changes nothing here
    store.close()
    other.close()
