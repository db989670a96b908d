"""Writing many rows at once: ``COPY`` on PostgreSQL, one ``executemany`` on SQLite.

A nightly run of a million-image registry stores ~600,000 findings. Through the ORM,
one object and one statement per row, that took minutes; here the rows go to the
database driver in bulk, with each column's value converted as the column's SQLAlchemy
type would (:meth:`~sqlalchemy.types.TypeEngine.bind_processor`: aware times to naive
UTC, …), except JSON, which orjson writes (the same JSON; it parses back equal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice
from typing import Any

import orjson
from sqlalchemy import JSON, insert
from sqlalchemy.orm import Session

CHUNK = 10_000


def insert_many(session: Session, table: Any, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert ``rows`` (column name → value, every row the same columns) into ``table``
    (a :class:`~sqlalchemy.Table`) within the session's transaction; returns how many."""
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return 0
    columns = list(first)
    connection = session.connection()
    dialect = connection.dialect
    convert = [_converter(table.c[name].type, dialect) for name in columns]

    def tuples(batch: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            tuple(
                value if fn is None or value is None else fn(value)
                for fn, value in zip(convert, (row[name] for name in columns), strict=True)
            )
            for row in batch
        ]

    prepared = dialect.identifier_preparer
    names = ", ".join(prepared.quote(name) for name in columns)
    target = prepared.format_table(table)
    count = 0
    chunks = _chunks(_chain(first, iterator), CHUNK)
    if dialect.name == "postgresql":
        raw: Any = connection.connection.dbapi_connection  # psycopg's Connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
            for batch in chunks:
                for values in tuples(batch):
                    copy.write_row(values)
                count += len(batch)
        return count
    if dialect.name == "sqlite":
        statement = f"INSERT INTO {target} ({names}) VALUES ({', '.join('?' * len(columns))})"
        for batch in chunks:
            connection.exec_driver_sql(statement, tuples(batch))
            count += len(batch)
        return count
    for batch in chunks:  # any other database: SQLAlchemy's own executemany
        connection.execute(insert(table), [dict(row) for row in batch])
        count += len(batch)
    return count


def _converter(type_: Any, dialect: Any) -> Callable[[Any], Any] | None:
    if isinstance(type_, JSON):
        return _json_text
    processor = type_.bind_processor(dialect)
    return processor if processor is not None else None


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _chain(first: Mapping[str, Any], rest: Iterator[Mapping[str, Any]]) -> Iterator[Any]:
    yield first
    yield from rest


def _chunks(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while batch := list(islice(rows, size)):
        yield batch
