"""Writing many rows at once: ``COPY`` on PostgreSQL, one ``executemany`` on SQLite.

A nightly run of a million-image registry stores ~600,000 findings. Through the ORM,
one object and one statement per row, that took minutes; here the rows go to the
database driver in bulk, with each column's value converted as the column's SQLAlchemy
type would (:meth:`~sqlalchemy.types.TypeEngine.bind_processor`: aware times to naive
UTC, …), except JSON, which orjson writes (the same JSON; it parses back equal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

import orjson
from sqlalchemy import JSON, insert
from sqlalchemy.orm import Session

CHUNK = 10_000


def insert_many(
    session: Session,
    table: Any,
    rows: Iterable[Mapping[str, Any]] | Iterable[Sequence[Any]],
    *,
    columns: Sequence[str] | None = None,
) -> int:
    """Insert ``rows`` into ``table`` (a :class:`~sqlalchemy.Table`) within the session's
    transaction; returns how many. A row is a mapping of column name → value (every row
    the same columns), or, with ``columns``, a sequence of values in that order."""
    iterator: Iterator[Any] = iter(rows)
    first = next(iterator, None)
    if first is None:
        return 0
    names = list(first) if columns is None else list(columns)

    def tuples_of(row: Any) -> Sequence[Any]:
        return row if columns is not None else [row[name] for name in names]

    connection = session.connection()
    dialect = connection.dialect
    convert = [
        (position, fn)
        for position, name in enumerate(names)
        if (fn := _converter(table.c[name].type, dialect)) is not None
    ]

    def prepared(batch: list[Any]) -> list[Sequence[Any]]:
        out = []
        for row in batch:
            values = tuples_of(row)
            if convert:
                values = list(values)
                for position, fn in convert:
                    value = values[position]
                    if value is not None:
                        values[position] = fn(value)
            out.append(values)
        return out

    quote = dialect.identifier_preparer
    listed = ", ".join(quote.quote(name) for name in names)
    target = quote.format_table(table)
    count = 0
    chunks = _chunks(_chain(first, iterator), CHUNK)
    if dialect.name == "postgresql":
        raw: Any = connection.connection.dbapi_connection  # psycopg's Connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {target} ({listed}) FROM STDIN") as copy:
            for batch in chunks:
                for values in prepared(batch):
                    copy.write_row(values)
                count += len(batch)
        return count
    if dialect.name == "sqlite":
        statement = f"INSERT INTO {target} ({listed}) VALUES ({', '.join('?' * len(names))})"
        for batch in chunks:
            connection.exec_driver_sql(statement, [tuple(v) for v in prepared(batch)])
            count += len(batch)
        return count
    for batch in chunks:  # any other database: SQLAlchemy's own executemany
        connection.execute(
            insert(table), [dict(zip(names, tuples_of(row), strict=True)) for row in batch]
        )
        count += len(batch)
    return count


def _converter(type_: Any, dialect: Any) -> Callable[[Any], Any] | None:
    if isinstance(type_, JSON):
        return _json_text
    processor = type_.bind_processor(dialect)
    return processor if processor is not None else None


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _chunks(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while batch := list(islice(rows, size)):
        yield batch
