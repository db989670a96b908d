"""The JSON text of image findings' values, a column (or all rows) at a time.

The pieces :mod:`hygiene.findingjson` lays out rows from: each value's text made for
many rows at once (orjson for lists and dicts, cut where each item ends; Arrow and numpy
for text, times and numbers), and :class:`AllRows`, the values every chunk of a document
shares. What they cannot make exactly as orjson would they decline (:class:`_Decline`),
and the caller encodes the rows' dicts as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from hygiene.findingtable import NAT, ImageFindings, english_texts, inverse, message_columns, pick


class _Decline(Exception):
    """A value the template does not lay out: the caller encodes the rows' dicts."""


def _items_cut(
    values: list[Any], indent: str, opener: str, option: int, default: Any, natively: bool = False
) -> tuple[Any, int]:
    """Each value (every one a list, or every one a dict: ``opener``) as orjson
    writes it at ``indent``, as an Arrow array of the value's text after the separator
    of the list's items (``width`` bytes: cut them and the opening bracket remains):
    all of them encoded in one call, as the items of a list at that indentation, and cut
    where an item ends (the only lines at that indentation that open a list or
    object: deeper lines are indented further, and strings hold no line break).
    ``natively``: declines when a value holds anything orjson does not write by
    itself (a dataclass, or what it would hand to ``default``)."""
    import pyarrow as pa

    kinds = {list, tuple} if opener == "[" else {dict}
    if not values or not set(map(type, values)) <= kinds:
        raise _Decline(opener)
    level = len(indent) // 2
    wrapped: Any = values
    for _ in range(level - 1):
        wrapped = {"": wrapped}
    if natively:
        option = option | orjson.OPT_PASSTHROUGH_DATACLASS
        text = orjson.dumps(wrapped, option=option, default=_refuse)
    else:
        text = orjson.dumps(wrapped, option=option, default=default)
    head, tail = (part.encode() for part in _wrapping(level))
    if not (text.startswith(head + opener.encode()) and text.endswith(tail)):
        raise _Decline(opener)
    if len(text) >= 2**31:
        raise _Decline("size")
    separator = np.frombuffer((",\n" + indent + opener).encode(), dtype=np.uint8)
    width = len(separator)
    data = np.frombuffer(text, dtype=np.uint8)
    at = np.flatnonzero(data[width - 1 :] == separator[-1])  # where a separator may start
    for k in range(width - 1):
        at = at[data[at + k] == separator[k]]
    if len(at) != len(values) - 1:
        raise _Decline(opener)
    # item i is text[at[i - 1] + width : at[i]]; each value is cut from the
    # separator before it (the first from as many bytes of the head), over orjson's
    # own bytes (no copy): the separator is sliced off the values taken
    first = len(head) + 1 - width
    ends = np.concatenate([[first], at, [len(text) - len(tail)]]).astype(np.int32)
    cut = pa.Array.from_buffers(
        pa.string(), len(values), [None, pa.py_buffer(ends), pa.py_buffer(text)]
    )
    return cut, width


def _items_text(
    values: list[Any], indent: str, opener: str, option: int, default: Any, natively: bool = False
) -> Any:
    """Each value as orjson writes it at ``indent``, without its opening bracket, as an
    Arrow array (:func:`_items_cut`)."""
    import pyarrow.compute as pc

    cut, width = _items_cut(values, indent, opener, option, default, natively)
    return pc.utf8_slice_codeunits(cut, width)  # the separator's bytes are ASCII


class AllRows:
    """Values' JSON text made for all the rows of an :class:`ImageFindings` at once,
    shared by the chunks of one document (:func:`findings_text_chunks`): message
    templates and parameters and tag lists, read and encoded in the order the rules
    made them (:meth:`~hygiene.findingtable.ImageFindings.creation_order`),
    and taken by Arrow in the rows' order chunk by chunk. Read in the rows' order (rule,
    repository, push time), these small objects are scattered over the heap, and orjson
    took several times as long. What declines here (a value orjson hands to ``default``,
    a dataclass in the parameters) is made chunk by chunk as before."""

    def __init__(self, image: ImageFindings) -> None:
        self.image = image
        self._made: dict[tuple[Any, ...], Any] = {}
        self._order: tuple[np.ndarray, Any] | None = None
        self._messages: tuple[list[str], list[Any]] | None = None
        self._messages_in_order: list[Any] | None = None

    def _orders(self) -> tuple[np.ndarray, Any]:
        """The creation order, and (as Arrow indices) each row's place in it."""
        if self._order is None:
            import pyarrow as pa

            order = self.image.creation_order()
            self._order = (order, pa.array(inverse(order)))
        return self._order

    def _places(self, start: int, n: int) -> Any:
        """Where rows ``start:start + n`` are in the creation order (Arrow indices)."""
        return self._orders()[1].slice(start, n)

    def _ordered(self) -> list[Any]:
        """The messages in the creation order."""
        if self._messages_in_order is None:
            self._messages_in_order = pick(self.image.message, self._orders()[0])
        return self._messages_in_order

    def _ordered_messages(self) -> tuple[list[str], list[Any]]:
        if self._messages is None:
            self._messages = message_columns(self._ordered())
        return self._messages

    def texts(self) -> list[str]:
        """The English texts of the image findings, in the rows' order
        (:meth:`~hygiene.findingtable.ImageFindings.texts`). When they have none yet,
        they are rendered here in the creation order (as ``texts()`` renders them: the
        same texts, and the same first error, without making that order and picking
        the messages in it a second time) and handed to the image findings."""
        image = self.image
        if image._texts is None:
            texts = english_texts(self._ordered())
            image._texts = pick(texts, inverse(self._orders()[0]))
        return image._texts

    def _once(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """``make()`` on the first call for ``key`` (None when it declines)."""
        if key not in self._made:
            from pyarrow import ArrowException

            try:
                made = make()
            except (_Decline, orjson.JSONEncodeError, UnicodeEncodeError, ArrowException):
                made = None
            self._made[key] = made
        return self._made[key]

    def items(
        self,
        name: str,
        indent: str,
        opener: str,
        option: int,
        default: Any,
        start: int,
        n: int,
    ) -> Any:
        """:func:`_items_text` of the tag lists (``name`` "tags", with ``default``) or
        message parameters ("params", natively) of rows ``start:start + n``, as an
        Arrow array; None when it declines. All rows' are encoded by one orjson call on
        the first call for these arguments."""

        def make() -> Any:
            order = self._orders()[0]
            if name == "tags":
                values, natively = pick(self.image.tags, order), False
            else:
                values, natively = self._ordered_messages()[1], True
            if not values:
                raise _Decline(name)
            return _items_cut(values, indent, opener, option, default, natively)

        # the default is part of the key (kept alive by it: a function is hashable)
        made = self._once((name, indent, option, default if name == "tags" else None), make)
        if made is None:
            return None
        import pyarrow.compute as pc

        cut, width = made
        return pc.utf8_slice_codeunits(cut.take(self._places(start, n)), width)

    def templates(self, start: int, n: int) -> Any:
        """The JSON text of the message templates of rows ``start:start + n`` (Arrow
        array; a rule writes few templates, each encoded once); None when it declines."""

        def make() -> Any:
            import pyarrow as pa

            templates = self._ordered_messages()[0]
            if not set(map(type, templates)) <= {str}:
                raise _Decline("text")
            codes: dict[str, int] = {}
            created = np.fromiter(
                (codes.setdefault(t, len(codes)) for t in templates), np.int32, len(templates)
            )
            tokens = pa.array([orjson.dumps(t).decode() for t in codes], type=pa.string())
            return pa.DictionaryArray.from_arrays(pa.array(created), tokens)

        made = self._once(("templates",), make)
        return None if made is None else made.take(self._places(start, n)).dictionary_decode()


def _refuse(value: Any) -> Any:
    """orjson's ``default`` that writes nothing: orjson raises, and the chunk declines."""
    raise _Decline(type(value).__name__)


def _scatter(values: Any, positions: np.ndarray, replacements: Any) -> Any:
    """``values`` (an Arrow array) with those at ``positions`` (ascending) replaced, in
    order, by ``replacements``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = np.zeros(len(values), dtype=bool)
    mask[positions] = True
    return pc.replace_with_mask(values, pa.array(mask), replacements)


def _iso_json(nanoseconds: np.ndarray) -> Any:
    """The JSON text of :func:`~hygiene.findingtable.iso_strings` of each time
    (``"2026-11-28T03:00:00Z"``, ``null`` for none), as an Arrow array: each distinct
    day formatted once, the time of day from a table of every second's
    (:func:`_clock_json`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if nanoseconds.dtype != np.int64:
        raise _Decline("time")
    nat = nanoseconds == NAT
    seconds = np.floor_divide(nanoseconds, 1_000_000_000)
    seconds[nat] = 0
    days, second_of_day = np.divmod(seconds, 86400)
    unique_days, day = np.unique(days, return_inverse=True)
    day_text = np.datetime_as_string(unique_days.astype("datetime64[D]")).tolist()
    text = pc.binary_join_element_wise(
        pa.array(['"' + d for d in day_text], type=pa.string()).take(pa.array(day)),
        _clock_json().take(pa.array(second_of_day)),
        "",
    )
    if nat.any():
        text = pc.replace_with_mask(
            text, pa.array(nat), pa.repeat(pa.scalar("null"), int(nat.sum()))
        )
    return text


def prepare_tables() -> None:
    """Make the per-process tables the scan document and the plan's times build on first
    use (every second's time text, as JSON and as bytes; 000 to 999): about 8 ms of CPU
    that a scan spends while the registry is read instead of after its last answer
    (:func:`hygiene.scanthreads.warm_up`). Pure; the same tables either way."""
    from hygiene import timetext

    _clock_json()
    timetext._clock()
    timetext._triples()


@functools.cache
def _clock_json() -> Any:
    """``T%H:%M:%SZ"`` for each second of the day, as an Arrow array (made by Arrow from
    the two-digit table in about a millisecond)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    second = np.arange(86400, dtype=np.int64)
    digits = _two_digits()
    return pc.binary_join_element_wise(
        "T",
        digits.take(pa.array(second // 3600)),
        ":",
        digits.take(pa.array(second // 60 % 60)),
        ":",
        digits.take(pa.array(second % 60)),
        'Z"',
        "",
    )


@functools.cache
def _two_digits() -> Any:
    """``00`` to ``59`` as an Arrow array."""
    import pyarrow as pa

    return pa.array([f"{n:02d}" for n in range(60)], type=pa.string())


def _wrapping(level: int) -> tuple[str, str]:
    """What orjson writes around a non-empty list nested in ``level - 1`` objects of one
    key ``""`` (indented): the text before its first item (at ``level``) and after its
    last."""
    head, tail = "", ""
    for depth in range(level - 1):
        head += "{\n" + "  " * (depth + 1) + '"": '
        tail = "\n" + "  " * depth + "}" + tail
    return head + "[\n" + "  " * level, "\n" + "  " * (level - 1) + "]" + tail


def _plain(values: list[str]) -> bool:
    """No string of ``values`` has a character orjson escapes (its text is its UTF-8
    bytes between quotes)."""
    joined = "".join(values)
    return len(orjson.dumps(joined)) == len(joined.encode()) + 2


def _contents_array(values: list[Any]) -> Any:
    """:func:`_contents` as an Arrow array: the strings as they are when no byte of
    their UTF-8 is one orjson escapes (control characters, quote, backslash; no byte
    of a multi-byte character is below 0x80), checked on Arrow's buffer at once."""
    import pyarrow as pa

    if not set(map(type, values)) <= {str}:
        raise _Decline("text")
    texts = pa.array(values, type=pa.string())  # a lone surrogate raises: declined
    offsets = np.frombuffer(
        texts.buffers()[1], dtype=np.int32, count=len(texts) + 1, offset=texts.offset * 4
    )
    data = texts.buffers()[2]
    if data is not None and offsets[-1] > offsets[0]:
        utf8 = np.frombuffer(data, dtype=np.uint8)[int(offsets[0]) : int(offsets[-1])]
        raw = utf8.tobytes()  # one copy, then memchr for each byte orjson escapes
        if utf8.min() < 0x20 or b'"' in raw or b"\\" in raw:
            return pa.array(_contents(values), type=pa.string())
    return texts


def _contents(values: list[Any]) -> list[str]:
    """The JSON text of each string between its quotes (orjson's escapes)."""
    if not set(map(type, values)) <= {str}:
        raise _Decline("text")
    if _plain(values):
        return values
    return [orjson.dumps(v).decode()[1:-1] for v in values]


def _tokens(values: list[Any], *, nullable: bool = False) -> list[str]:
    """The JSON text of each string (or None, when ``nullable``), each distinct value
    encoded once."""
    kinds = {str, type(None)} if nullable else {str}
    if not set(map(type, values)) <= kinds:
        raise _Decline("text")
    texts = {v: orjson.dumps(v).decode() for v in set(values)}
    return list(map(texts.__getitem__, values))
