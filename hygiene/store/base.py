"""What every part of :class:`~hygiene.store.Store` shares: the engine, its migrations,
the settings, and one short transaction per call.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Self

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from hygiene.authz.identity import os_user
from hygiene.config import ApplySettings, Config
from hygiene.configtypes import check_store_url
from hygiene.errors import ConfigError, StoreError
from hygiene.store.engine import make_engine, migrate, redact

DEFAULT_STALE_LOCK = timedelta(minutes=15)
"""How long a SQLite lock's holder may give no sign of life (its heartbeat, every minute)
before another run takes the lock over (hygiene.store.locks)."""


def utcnow() -> datetime:
    """Now, aware UTC (the only kind of time the store accepts)."""
    return datetime.now(UTC)


def whoami() -> str:
    """``user@host pid N``: how a lock or an audit row names this process (the user of
    its uid, never ``$LOGNAME``)."""
    return f"{os_user()}@{socket.gethostname()} pid {os.getpid()}"


class StoreBase:
    """Connection, migration and transactions; the parts of the store build on it."""

    def __init__(
        self,
        url: str,
        settings: ApplySettings | None = None,
        *,
        stale_lock_after: timedelta = DEFAULT_STALE_LOCK,
    ) -> None:
        self.engine = make_engine(url)
        self.url = redact(str(self.engine.url))
        self.settings = settings or ApplySettings()
        self.stale_lock_after = stale_lock_after
        # lock name -> whether this store still holds it (hygiene.store.locks.check_lock)
        self._held_locks: dict[str, Callable[[], bool]] = {}
        migrate(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_config(cls, config: Config, url: str | None = None) -> Self:
        """The store named by ``--store URL`` (or ``HYGIENE_STORE_URL``) or
        ``config.policy.store.url``; a bad override is a ConfigError (exit 2), like a bad
        ``store.url``, before any connection."""
        if url is not None:
            try:
                check_store_url(url)
            except ValueError as exc:
                raise ConfigError(f"store URL (--store or HYGIENE_STORE_URL): {exc}") from None
        return cls(url or config.policy.store.url, config.policy.apply)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on any exception."""
        try:
            with self._session.begin() as session:
                yield session
        except OperationalError as exc:
            raise StoreError(f"store {self.url}: {exc.orig}") from exc
