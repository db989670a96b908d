"""The scan JSON document, written part by part (``hygiene scan --format json``).

At a million images the document holds ~600,000 findings: built in memory first it took
about a gigabyte and, with the standard library's indented encoder (pure Python), minutes.
:func:`write_document` writes each top-level key in turn and each long list in chunks,
encoding every chunk with orjson, so memory holds one chunk at a time. The bytes are
those of ``json.dumps(document, indent=2, ensure_ascii=False)`` (2-space indentation,
``", "``/``": "`` separators, UTF-8), which ``tests/test_columnar.py`` checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO, Any

import orjson

INDENT = orjson.OPT_INDENT_2
CHUNK = 20_000


def dumps(value: Any, *, level: int = 0) -> bytes:
    """``value`` as indented JSON, as if it sat ``level`` levels deep in a document."""
    text = orjson.dumps(value, option=INDENT)
    if level and b"\n" in text:
        text = text.replace(b"\n", b"\n" + b"  " * level)
    return text


def list_items(
    chunks: Iterable[Any], *, level: int, option: int = 0, default: Any = None
) -> Iterator[bytes | memoryview]:
    """The items of a JSON list (without its brackets), chunk by chunk, each item on
    its own lines at ``level`` and separated by ``,\\n``. Yields nothing for no items.
    ``option`` and ``default`` are orjson's (indentation is always on).

    Each chunk is encoded inside ``level - 1`` objects of one key (``{"": …}``), so
    orjson itself indents its items at ``level``; the items are a view of that encoding
    between the wrapping's head and tail (no copy, no re-indenting pass)."""
    head, tail = _wrapping(level)
    first = True
    for chunk in chunks:
        body = _items(chunk, level, option, default, head, tail)
        if body is None:
            continue
        if not first:
            yield b",\n"
        yield body
        first = False


def _items(
    chunk: Any, level: int, option: int, default: Any, head: bytes, tail: bytes
) -> bytes | memoryview | None:
    """The items of one chunk (None for none). A chunk that writes its own text (an
    ``items_json(level, option, default)`` method, such as
    :class:`hygiene.findingjson.ImageRowsJson`) is asked first; when it declines (None),
    its ``rows()`` are encoded."""
    items_json = getattr(chunk, "items_json", None)
    if items_json is not None:
        text = items_json(level, option, default)
        if text is not None:
            return text or None
        chunk = chunk.rows()
    if not chunk:
        return None
    wrapped: Any = chunk
    for _ in range(level - 1):
        wrapped = {"": wrapped}
    body = orjson.dumps(wrapped, option=INDENT | option, default=default)
    if not (body.startswith(head) and body.endswith(tail)):
        # an option that changes the framing (OPT_APPEND_NEWLINE …): a caller's error
        raise ValueError(f"orjson option {option:#x} changes the framing of a list")
    return memoryview(body)[len(head) : len(body) - len(tail)]


def _wrapping(level: int) -> tuple[bytes, bytes]:
    """What orjson writes around a non-empty list nested in ``level - 1`` objects of one
    key ``""`` (indented): the bytes before its first item and after its last."""
    head, tail = b"", b""
    for depth in range(level - 1):
        head += b"{\n" + b"  " * (depth + 1) + b'"": '
        tail = b"\n" + b"  " * depth + b"}" + tail
    return head + b"[\n", b"\n" + b"  " * (level - 1) + b"]" + tail


def write_document(stream: IO[bytes], parts: Iterable[tuple[str, Any]]) -> None:
    """Write a JSON object whose values are given one key at a time.

    A value is written with :func:`dumps`, except a :class:`Chunks` (a list given chunk by
    chunk), which is written item by item.
    """
    stream.write(b"{")
    first = True
    for key, value in parts:
        stream.write(b"\n  " if first else b",\n  ")
        first = False
        stream.write(orjson.dumps(key) + b": ")
        if isinstance(value, Chunks):
            items = iter(list_items(value, level=2))
            head = next(items, None)
            if head is None:
                stream.write(b"[]")
                continue
            stream.write(b"[\n")
            stream.write(head)
            for piece in items:
                stream.write(piece)
            stream.write(b"\n  ]")
        else:
            stream.write(dumps(value, level=1))
    stream.write(b"\n}" if not first else b"}")


class Chunks:
    """A JSON list handed over in chunks (lists of JSON-shaped values)."""

    def __init__(self, chunks: Iterable[list[Any]]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[list[Any]]:
        return iter(self._chunks)

    @classmethod
    def of(cls, items: Iterable[Any], to_json: Any = None, size: int = CHUNK) -> Chunks:
        """Chunks of ``items`` (each converted with ``to_json`` when given)."""

        def chunks() -> Iterator[list[Any]]:
            batch: list[Any] = []
            for item in items:
                batch.append(to_json(item) if to_json is not None else item)
                if len(batch) >= size:
                    yield batch
                    batch = []
            if batch:
                yield batch

        return cls(chunks())


def findings_chunks(findings: Iterable[Any], size: int = CHUNK, *, copy: bool = True) -> Chunks:
    """``Finding.to_json()`` of every finding, chunk by chunk, for :func:`list_items`.
    Columnar findings (:class:`hygiene.findingtable.Findings`) give chunks of image
    findings that write their own JSON text from the columns (:mod:`hygiene.findingjson`;
    no rows are handed out, so ``copy`` does not apply); other objects with
    ``json_chunks`` build the rows from their columns (without ``copy``, sharing their
    own lists: for a writer that only encodes them)."""
    if hasattr(findings, "json_chunks") and hasattr(findings, "image"):
        from hygiene.findingchunks import findings_text_chunks

        return Chunks(findings_text_chunks(findings, size))
    json_chunks = getattr(findings, "json_chunks", None)
    if json_chunks is not None:
        return Chunks(json_chunks(size, copy=copy))
    return Chunks.of(findings, lambda f: f.to_json(), size)


def write_list(
    stream: IO[bytes], chunks: Iterable[Any], *, option: int = 0, default: Any = None
) -> None:
    """A JSON list written chunk by chunk: the bytes of ``orjson.dumps(list, option=
    OPT_INDENT_2 | option)`` for the whole list."""
    items = iter(list_items(chunks, level=1, option=option, default=default))
    head = next(items, None)
    if head is None:
        stream.write(b"[]")
        return
    stream.write(b"[\n")
    stream.write(head)
    for piece in items:
        stream.write(piece)
    stream.write(b"\n]")


def document_bytes(parts: Iterable[tuple[str, Any]]) -> bytes:
    """The whole document in memory (small documents, tests)."""
    import io

    buffer = io.BytesIO()
    write_document(buffer, parts)
    return buffer.getvalue()
