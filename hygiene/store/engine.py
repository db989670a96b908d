"""Engines and migrations: SQLite (WAL) by default, PostgreSQL (psycopg 3) by URL."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)

from hygiene.configtypes import normalise_store_url
from hygiene.errors import StoreError

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


normalise_url = normalise_store_url  # one definition, shared with the config check


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


SQLITE_PAGE_SIZE = 65536
"""The page size of a new SQLite store (SQLite's default is 4096; an existing store keeps
its own: in WAL mode SQLite changes it only when the file is created). The proposals'
evidence is hundreds of MiB on a first night at a million images: with 64 KiB pages the
write and the commit's checkpoint (which copies every page of the WAL into the database)
handle 16 times fewer pages. Measured at a million images (docs/benchmarks.md, "Round 7:
store"): the store's CPU fell from 4.2-4.4 to 2.9-3.0 s, the file grew 5 %; a night that
only refreshes its proposals writes about 3 times the WAL (51 instead of 17 MiB at
200,000 images), in less CPU."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")  # before WAL: a new file only
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def toast_compression(available: list[str] | None) -> str | None:
    """The compression PostgreSQL should give the large values this store writes (the
    proposals' evidence and targets: hundreds of MiB on a first night at a million
    images), from the methods the server offers: ``lz4`` when it was built with it, else
    None (the server's default, ``pglz``). Measured on PostgreSQL 15 at a million images
    (docs/benchmarks.md, "PostgreSQL: lz4"): the server's work for the first night's
    write fell from 5.6 to 2.3 s, the database grew from 103 to 109 MiB."""
    return "lz4" if available and "lz4" in available else None


def _postgres_session(dbapi_connection: Any, _record: Any) -> None:
    """Each new connection compresses with :func:`toast_compression` (a session
    setting any user may change; nothing in the schema depends on it: values read back
    the same). Autocommit while it runs, so the pool's rollback does not undo it."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(
                "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'"
            )
            row = cursor.fetchone()
            method = toast_compression(list(row[0]) if row and row[0] else None)
            if method is not None:
                cursor.execute(f"SET default_toast_compression = '{method}'")
    except Exception as exc:  # only speed is lost: the store must still open
        log.info("PostgreSQL: default compression kept (%s)", exc)
    finally:
        dbapi_connection.autocommit = autocommit


def make_engine(url: str) -> Engine:
    """Create the engine for ``url``; SQLite files get WAL mode and a busy timeout,
    PostgreSQL connections lz4 compression where the server has it."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"store URL {url!r} is not a database URL: {exc}") from exc
    try:
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:":
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
            if engine.dialect.name == "postgresql":
                event.listen(engine, "connect", _postgres_session)
    except (NoSuchModuleError, ArgumentError) as exc:
        raise StoreError(f"store URL {redact(url)}: unsupported database: {exc}") from exc
    return engine


def alembic_config(engine: Engine) -> AlembicConfig:
    """Alembic's configuration for ``engine``. Its options are read with Python's
    ``configparser``, where ``%`` starts an interpolation: a URL's percent-encoded
    characters (a password's ``@`` as ``%40``, a ``%`` in a file name) are doubled, or
    opening the store failed with ``invalid interpolation syntax``."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    url = engine.url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


_MIGRATE_LOCK = threading.Lock()
MIGRATION_LOCK_KEY = 0x6879676965  # "hygie": serialises concurrent upgrades on PostgreSQL


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (``alembic upgrade head``).

    Safe when several processes open a new store at once: on PostgreSQL the upgrade runs
    under a transaction-level advisory lock; on SQLite a loser of the race (``table
    already exists``) retries once and finds the schema at head.
    """
    with _MIGRATE_LOCK:  # alembic's context is process-global: one upgrade at a time
        if engine.dialect.name == "sqlite":
            # pysqlite autocommits DDL; a dedicated engine makes the whole upgrade one
            # BEGIN IMMEDIATE transaction, so a racing process waits and then finds head.
            exclusive = create_engine(engine.url, connect_args={"timeout": 60})
            event.listen(exclusive, "connect", _sqlite_exclusive_connect)
            event.listen(exclusive, "begin", _sqlite_begin_immediate)
            try:
                _upgrade(exclusive, alembic_config(exclusive))
            finally:
                exclusive.dispose()
        else:
            _upgrade(engine, alembic_config(engine))


def _sqlite_exclusive_connect(dbapi_connection: Any, _record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, _record)
    dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN itself


def _sqlite_begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _upgrade(engine: Engine, config: AlembicConfig) -> None:
    for attempt in (1, 2):
        try:
            with engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY}
                    )
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
            return
        except (OperationalError, ProgrammingError, IntegrityError) as exc:
            if attempt == 1 and "already exists" in str(exc.orig):
                continue
            raise StoreError(
                f"store {redact(str(engine.url))} is unreachable or not writable: {exc.orig}"
            ) from exc


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new migration from the models (developers only): upgrades
    ``engine``'s database to head first, then diffs it against the models."""
    migrate(engine)
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
