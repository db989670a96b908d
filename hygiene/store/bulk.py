"""Writing many rows at once: ``COPY`` on PostgreSQL, one ``executemany`` on SQLite.

A nightly run of a million-image registry stores ~600,000 findings. Through the ORM,
one object and one statement per row, that took minutes; here the rows go to the
database driver in bulk, with each column's value converted as the column's SQLAlchemy
type would for the dialect (:meth:`~sqlalchemy.types.TypeEngine.bind_processor` of its
``dialect_impl``: aware times to naive UTC, on SQLite to SQLAlchemy's own text, …),
except JSON, which orjson writes (the same JSON; it parses back equal). So a row written
here and one written through the ORM hold the same text (tests/store/test_time_text.py).
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


def insert_columns(
    session: Session,
    table: Any,
    names: Sequence[str],
    chunks: Iterable[Sequence[Sequence[Any]]],
) -> int:
    """Insert rows given as columns: each chunk holds one sequence of values per name
    of ``names`` (all the same length), the values as the database driver takes them
    (text, int, float, None: no conversion here, JSON already written as text).
    Within the session's transaction; returns how many rows.

    Faster than :func:`insert_many` for many rows: SQLite gets ``executemany`` on the
    driver's cursor with the rows zipped from the columns; PostgreSQL gets ``COPY``
    text built column by column (each column escaped once, then joined row by row).
    """
    connection = session.connection()
    dialect = connection.dialect
    quote = dialect.identifier_preparer
    listed = ", ".join(quote.quote(name) for name in names)
    target = quote.format_table(table)
    count = 0
    if dialect.name == "postgresql":
        raw: Any = connection.connection.dbapi_connection  # psycopg's Connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {target} ({listed}) FROM STDIN") as copy:
            for columns in chunks:
                n = _length(columns, names)
                if n:
                    copy.write(copy_text(columns))
                count += n
        return count
    if dialect.name == "sqlite":
        statement = f"INSERT INTO {target} ({listed}) VALUES ({', '.join('?' * len(names))})"
        driver: Any = connection.connection.dbapi_connection  # sqlite3's Connection
        sqlite_cursor = driver.cursor()
        try:
            for columns in chunks:
                n = _length(columns, names)
                sqlite_cursor.executemany(statement, zip(*columns, strict=True))
                count += n
        finally:
            sqlite_cursor.close()
        return count
    for columns in chunks:  # any other database: SQLAlchemy's own executemany
        n = _length(columns, names)
        if n:
            rows = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
            connection.execute(insert(table), rows)
        count += n
    return count


def _length(columns: Sequence[Sequence[Any]], names: Sequence[str]) -> int:
    if len(columns) != len(names):
        raise ValueError(f"{len(columns)} columns given for {len(names)} names")
    return len(columns[0]) if columns else 0


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def copy_text(columns: Sequence[Sequence[Any]]) -> str:
    """PostgreSQL ``COPY … FROM STDIN`` text (the default text format) of rows given as
    columns: tab between values, a newline after each row, ``\\N`` for None, and
    backslash, newline, carriage return and tab escaped with a backslash."""
    texts = [_copy_column(column) for column in columns]
    return "".join(["\t".join(row) + "\n" for row in zip(*texts, strict=True)])


def _copy_column(column: Sequence[Any]) -> list[str]:
    values: list[Any] = [v if v is None or type(v) is str else _copy_value(v) for v in column]
    # most columns hold nothing to escape: one look at all their text decides
    joined = "".join(filter(None, values))
    if any(c in joined for c in "\\\n\r\t"):
        values = [None if v is None else v.translate(_COPY_ESCAPES) for v in values]
    if None in values:
        values = ["\\N" if v is None else v for v in values]
    return values


def _copy_value(value: Any) -> str:
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


def _converter(type_: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """What SQLAlchemy does to a value of ``type_`` before the driver gets it: the bind
    processor of the type *as the dialect implements it* (``dialect_impl``), as its own
    statements use. The generic type's would not do: on SQLite, a time would reach the
    driver as a datetime, for sqlite3's default adapter (deprecated since Python 3.12)
    to write as ``2026-11-28 12:00:00``, where SQLAlchemy writes
    ``2026-11-28 12:00:00.000000``; the store compares times as text in SQL."""
    if isinstance(type_, JSON):
        return _json_text
    processor = type_.dialect_impl(dialect).bind_processor(dialect)
    return processor if processor is not None else None


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _chunks(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while batch := list(islice(rows, size)):
        yield batch
