"""Image findings' JSON text, written from the engine's columns.

The scan document (``hygiene scan --format json``) and the findings JSON export hold a
``Finding.to_json()`` object per finding: ~900,000 at a million images. Building a dict
per finding (:meth:`ImageFindings.json_rows`) and handing them to orjson took most of
the time of both. Every image finding has the same keys in the same order, so its text
is a fixed template with a few values filled in: :func:`image_rows_text` lays the
template out once per indentation and key order (a piece per rule holds the rule's
constant fields), makes each value's JSON text for a whole chunk of rows from its column,
and has Arrow join the pieces row by row (``binary_join_element_wise``):

- text columns (account, repository, message …) go in as they are when orjson would
  escape none of their characters (checked on the whole chunk at once), else escaped
  by orjson one by one;
- times come from tables of days and seconds, sizes from Arrow's integer format (that
  of ``str``), units from the digests joined by Arrow;
- tags, message parameters and ``also`` lists are encoded by orjson, a chunk's in one
  call, as the items of a list at their own indentation, and cut where each ends.

The bytes are exactly orjson's for the rows :meth:`ImageFindings.json_rows` gives,
indented (``OPT_INDENT_2``) as items of a list ``level`` deep, with ``OPT_SORT_KEYS`` or
not: ``tests/test_findingjson.py`` compares them on generated findings (text with quotes,
backslashes, control characters and non-ASCII, missing values, details, ``also`` lists,
parameters of every JSON kind). What it does not lay out itself it declines, and the
caller encodes those rows' dicts with orjson as before: a row whose rule added details
(orjson encodes that row's dict), and a chunk with a value of a kind the template does
not know (an account that is not text, a lone surrogate …) or an orjson option other
than those below. The values' text, and :class:`~hygiene.findingtext.AllRows` (what
the chunks of one document share), are made in :mod:`hygiene.findingtext`.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from hygiene.findingtable import ImageFindings, pick
from hygiene.findingtext import (
    AllRows,
    _contents_array,
    _Decline,
    _iso_json,
    _items_text,
    _scatter,
    _tokens,
)

INDENT = orjson.OPT_INDENT_2
# options the text made here honours: sorted keys (the template's key order), and those
# that reach only the values it hands to orjson itself (the message parameters)
SUPPORTED = (
    orjson.OPT_INDENT_2
    | orjson.OPT_SORT_KEYS
    | orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


@dataclass
class ImageRowsJson:
    """Image findings ``start:stop`` as a chunk of a JSON list (:mod:`hygiene.jsonout`
    asks :meth:`items_json` for their text instead of encoding rows)."""

    image: ImageFindings
    start: int
    stop: int
    # values made for all the rows at once, shared by the chunks of one document
    shared: AllRows | None = None

    def items_json(
        self, level: int, option: int = 0, default: Any = None
    ) -> bytes | memoryview | None:
        """The rows as items of a list at ``level`` (orjson's indented bytes between the
        list's brackets), or None when the template declines them."""
        return image_rows_text(
            self.image, self.start, self.stop, level, option, default, shared=self.shared
        )

    def rows(self) -> list[dict[str, Any]]:
        """The rows as dicts, only to be encoded (they share the findings' lists)."""
        return self.image.json_rows(self.start, self.stop, copy=False)


def image_rows_text(
    image: ImageFindings,
    start: int,
    stop: int,
    level: int,
    option: int = 0,
    default: Any = None,
    *,
    shared: AllRows | None = None,
) -> bytes | memoryview | None:
    """``orjson.dumps`` of ``image.json_rows(start, stop)`` as the items of a list at
    ``level`` (each row on its own lines, rows separated by ``,\\n``, without brackets),
    made from the columns; None when it declines (module docstring). ``shared`` holds
    values made for all of ``image``'s rows at once (:class:`AllRows`)."""
    if _declines(start, stop, level, option):
        return None
    template = _template(level, bool(option & orjson.OPT_SORT_KEYS))
    return _declining(_rows_text, image, start, stop, template, option | INDENT, default, shared)


def image_rows_slots(
    image: ImageFindings,
    start: int,
    stop: int,
    level: int,
    option: int = 0,
    default: Any = None,
    *,
    shared: AllRows | None = None,
) -> list[Any] | None:
    """Each slot's text (an Arrow array or scalar) for rows ``start:stop``, of which
    :func:`slots_text` joins any range; None when :func:`image_rows_text` would decline,
    or a row has details of its rule (whose rows are laid out apart)."""
    details = image.details[start:stop]
    if set(map(type, details)) <= {type(None)}:
        ruled = False
    else:
        ruled = any(isinstance(d, dict) for d in details)
    if _declines(start, stop, level, option) or ruled:
        return None
    template = _template(level, bool(option & orjson.OPT_SORT_KEYS))
    return _declining(_slots, image, start, stop, template, option | INDENT, default, shared)


def _declines(start: int, stop: int, level: int, option: int) -> bool:
    """The arguments :func:`image_rows_text` and :func:`image_rows_slots` never make text
    for: no rows, the top level, an orjson option the template does not lay out."""
    return stop <= start or level < 1 or bool(option & ~SUPPORTED)


def slots_text(slots: list[Any], start: int, stop: int) -> memoryview | None:
    """Rows ``start:stop`` of :func:`image_rows_slots`' rows as :func:`image_rows_text`
    gives them (None when it declines)."""
    import pyarrow as pa

    n = stop - start
    part = [s.slice(start, n) if isinstance(s, pa.Array) else s for s in slots]
    made = _declining(_joined, part)
    return None if made is None else made[2:]  # no separator before the first row


def _declining(make: Callable[..., Any], *args: Any) -> Any:
    from pyarrow import ArrowException

    try:
        return make(*args)
    except (_Decline, orjson.JSONEncodeError, UnicodeEncodeError, ArrowException):
        # a value the template does not lay out, or one orjson refuses: encoding the
        # rows' dicts gives orjson's bytes, or its error
        return None


# --------------------------------------------------------------------------- template


@dataclass(frozen=True)
class _Column:
    """A value filled in per row (``name`` names the :class:`_Columns` method that makes
    it); ``indent`` is that of the key holding it."""

    name: str
    indent: str = ""
    first: bool = False  # an optional field laid out first in its object


_RULE_FIELDS = ("code", "rule", "severity", "fix", "fix_safety")


def _row_fields(indent: str) -> list[tuple[str, Any]]:
    """The keys of a row and how each value is made, in ``Finding.to_json()`` order:
    a string is a rule's constant field (:data:`_RULE_FIELDS`); a list, text and columns
    laid out in turn; a dict, an object of fields; a :class:`_Column` alone, an optional
    field (the column holds the whole field, or nothing)."""
    inner = indent + "  "

    def text(name: str) -> list[Any]:
        return ['"', _Column(name, indent), '"']

    return [
        ("code", "code"),
        ("rule", "rule"),
        ("severity", "severity"),
        ("account", text("account")),
        ("region", text("region")),
        ("repository", text("repository")),
        ("namespace", [_Column("namespace", indent)]),
        ("message", text("message")),
        ("fix", "fix"),
        ("fix_safety", "fix_safety"),
        ("image_digest", text("digest")),
        ("tags", ["[", _Column("tags", indent)]),
        ("bytes", [_Column("bytes", indent)]),
        (
            "details",
            {
                "unit": ["[\n" + inner + '  "', _Column("unit", inner), '"\n' + inner + "]"],
                "pushed_at": [_Column("pushed_at", inner)],
                "last_pull": [_Column("last_pull", inner)],
                "also": _Column("also", inner),
            },
        ),
        ("message_template", [_Column("template", indent)]),
        ("message_params", ["{", _Column("params", indent)]),
    ]


@dataclass(frozen=True)
class _Template:
    """A row's text as slots: a slot is either a list of texts, one per rule (rule
    constants and the text between columns), or a column."""

    slots: tuple[Any, ...]  # tuple[tuple[str | int, ...], ...] | _Column
    indent: str  # the row's braces

    def columns(self) -> list[_Column]:
        return [s for s in self.slots if isinstance(s, _Column)]


@functools.cache
def _template(level: int, sort_keys: bool) -> _Template:
    indent = "  " * level
    pieces: list[Any] = [",\n" + indent]  # the row separator (cut before the first row)
    pieces += _object(_row_fields(indent + "  "), indent, sort_keys)
    slots: list[Any] = []
    run: list[str | int] = []  # texts (str) and rule fields (their index) of one slot
    for piece in pieces:
        if isinstance(piece, _Column):
            slots += [tuple(run), piece] if run else [piece]
            run = []
        elif isinstance(piece, int) or not run or isinstance(run[-1], int):
            run.append(piece)
        else:
            run[-1] += piece
    if run:
        slots.append(tuple(run))
    return _Template(tuple(slots), indent)


def _object(
    fields: Sequence[tuple[str, Any]] | dict[str, Any], indent: str, sort_keys: bool
) -> list[Any]:
    """The pieces of an object with ``fields`` whose braces sit at ``indent``."""
    items = list(fields.items()) if isinstance(fields, dict) else list(fields)
    if sort_keys:
        items.sort(key=lambda item: item[0])
    inner = indent + "  "
    out: list[Any] = ["{"]
    first = True
    for position, (key, value) in enumerate(items):
        head = "\n" + inner + orjson.dumps(key).decode() + ": "
        if isinstance(value, _Column):  # optional: its columns hold the whole field
            assert position in (0, len(items) - 1)
            first_here = position == 0
            out += [
                _Column(value.name + "_head", value.indent, first_here),
                _Column(value.name, value.indent),
            ]
            if first_here:
                out.append(_Column(value.name + "_tail"))
            continue
        out.append(head if first else "," + head)
        first = False
        if isinstance(value, str):
            out.append(_RULE_FIELDS.index(value))
        elif isinstance(value, dict):
            out += _object(value, inner, sort_keys)
        else:
            out += value
    out.append("\n" + indent + "}")
    return out


# --------------------------------------------------------------------------- columns


def _rows_text(
    image: ImageFindings,
    start: int,
    stop: int,
    template: _Template,
    option: int,
    default: Any,
    shared: AllRows | None = None,
) -> bytes | memoryview:
    details = image.details[start:stop]
    if set(map(type, details)) <= {type(None)}:
        irregular = []
    else:
        irregular = [start + i for i, d in enumerate(details) if isinstance(d, dict)]
    pieces: list[bytes | memoryview] = []
    begin = start
    for i in [*irregular, stop]:
        if begin < i:
            pieces.append(_regular_text(image, begin, i, template, option, default, shared))
        if i < stop:
            # a row whose rule added details (merged into them, in their order):
            # orjson's text of its dict, at the row's indentation
            row = image.json_rows(i, i + 1, copy=False)[0]
            text = orjson.dumps(row, option=option, default=default)
            pieces.append(
                b",\n"
                + template.indent.encode()
                + text.replace(b"\n", b"\n" + template.indent.encode())
            )
        begin = i + 1
    pieces[0] = memoryview(pieces[0])[2:]  # no separator before the first row
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _regular_text(
    image: ImageFindings,
    start: int,
    stop: int,
    template: _Template,
    option: int,
    default: Any,
    shared: AllRows | None = None,
) -> memoryview:
    """Rows ``start:stop`` (none with details of their rule), each after ``,\\n``:
    every slot's text for all the rows, joined row by row by Arrow."""
    return _joined(_slots(image, start, stop, template, option, default, shared))


def _slots(
    image: ImageFindings,
    start: int,
    stop: int,
    template: _Template,
    option: int,
    default: Any,
    shared: AllRows | None = None,
) -> list[Any]:
    import pyarrow as pa

    n = stop - start
    rule = np.asarray(image.rule[start:stop])
    used = np.unique(rule).tolist()
    constants = {
        i: [
            orjson.dumps(value, option=option, default=default).decode()
            for value in (r.code, r.name, r.severity.value, r.fix, r.fix_safety.value)
        ]
        for i, r in enumerate(image.rules)
        if i in used
    }
    columns = _Columns(image, start, stop, option, default, shared)
    slots: list[Any] = []
    for slot in template.slots:
        if isinstance(slot, _Column):
            values = columns.make(slot)
            if not isinstance(values, pa.Array):
                values = pa.array(values, type=pa.string())
            if len(values) != n:
                raise _Decline(slot)
        elif all(isinstance(p, str) for p in slot):
            values = pa.scalar("".join(slot), type=pa.string())
        else:
            texts = {
                i: "".join(p if isinstance(p, str) else fields[p] for p in slot)
                for i, fields in constants.items()
            }
            if len(texts) == 1:
                values = pa.scalar(next(iter(texts.values())), type=pa.string())
            else:
                table = [texts.get(i, "") for i in range(max(texts) + 1)]
                values = pa.array(table, type=pa.string()).take(pa.array(rule))
        slots.append(values)
    return slots


def _joined(slots: list[Any]) -> memoryview:
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        rows = pc.binary_join_element_wise(*slots, "")
    except pa.ArrowException as error:  # more than 2 GiB of text in one chunk
        raise _Decline("size") from error
    if not isinstance(rows, pa.Array) or rows.null_count:
        raise _Decline("rows")
    offsets = np.frombuffer(
        rows.buffers()[1], dtype=np.int32, count=len(rows) + 1, offset=rows.offset * 4
    )
    return memoryview(rows.buffers()[2])[int(offsets[0]) : int(offsets[-1])]


class _Columns:
    """Each column's JSON text for rows ``start:stop`` (:meth:`make`)."""

    def __init__(
        self,
        image: ImageFindings,
        start: int,
        stop: int,
        option: int,
        default: Any,
        shared: AllRows | None = None,
    ) -> None:
        self.image, self.start, self.stop = image, start, stop
        self.option, self.default = option, default
        self.shared = shared
        self.n = stop - start
        offsets = np.asarray(image.unit_offsets[start : stop + 1], dtype=np.int64)
        if len(offsets) != self.n + 1 or bool((np.diff(offsets) < 1).any()):
            raise _Decline("unit")  # json_rows takes each unit's first digest
        self.offsets = offsets
        self._made: dict[_Column, Any] = {}

    def make(self, column: _Column) -> Any:
        """The column's text for each row: a list of strings or an Arrow array."""
        made = self._made.get(column)
        if made is None:
            maker: Callable[[_Column], Any] = getattr(self, "_" + column.name)
            made = self._made[column] = maker(column)
        return made

    # text inside quotes (the template holds the quotes)
    def _account(self, column: _Column) -> list[str]:
        return _contents_array(self.image.account[self.start : self.stop])

    def _region(self, column: _Column) -> list[str]:
        return _contents_array(self.image.region[self.start : self.stop])

    def _repository(self, column: _Column) -> list[str]:
        return _contents_array(self.image.repository[self.start : self.stop])

    def _message(self, column: _Column) -> list[str]:
        # the texts themselves are rendered once for all the rows (in the creation
        # order when shared), and each chunk's converted on its own: one Arrow array of
        # them all took ~100 MiB more at a million images, and no less time
        texts = self.shared.texts() if self.shared is not None else self.image.texts()
        return _contents_array(texts[self.start : self.stop])

    def _digest(self, column: _Column) -> Any:
        import pyarrow as pa

        first = self.offsets[:-1] - self.offsets[0]  # each unit's first digest
        return self._unit_digests().take(pa.array(first))

    # whole values
    def _namespace(self, column: _Column) -> list[str]:
        return _tokens(self.image.namespace[self.start : self.stop], nullable=True)

    def _template(self, column: _Column) -> Any:
        if self.shared is not None:
            every = self.shared.templates(self.start, self.n)
            if every is not None:
                return every
        return _tokens(self.image._message_columns()[0][self.start : self.stop])

    def _bytes(self, column: _Column) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        values = np.asarray(self.image.bytes[self.start : self.stop])
        if values.dtype.kind not in "iu":
            raise _Decline("bytes")
        return pc.cast(pa.array(values), pa.string())  # Arrow writes integers as str() does

    def _pushed_at(self, column: _Column) -> Any:
        return _iso_json(np.asarray(self.image.pushed_at[self.start : self.stop]))

    def _last_pull(self, column: _Column) -> Any:
        return _iso_json(np.asarray(self.image.last_pull[self.start : self.stop]))

    # values after their opening bracket (the template holds it), from orjson
    def _tags(self, column: _Column) -> Any:
        if self.shared is not None:
            every = self.shared.items(
                "tags", column.indent, "[", self.option, self.default, self.start, self.n
            )
            if every is not None:
                return every
        return self._items(self.image.tags[self.start : self.stop], column.indent, "[")

    def _unit_digests(self) -> Any:
        """The JSON text between its quotes of every digest of the rows' units."""

        if not hasattr(self, "_digests"):
            digests = self.image.unit_digests[int(self.offsets[0]) : int(self.offsets[-1])]
            self._digests = _contents_array(digests)
        return self._digests

    def _unit(self, column: _Column) -> Any:
        """Each unit's digests between the first one's opening quote and the last one's
        closing quote (a unit is never empty)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        offsets = pa.array(self.offsets - self.offsets[0], type=pa.int64())
        units = pa.LargeListArray.from_arrays(offsets, self._unit_digests())
        return pc.binary_join(units, '",\n' + column.indent + '  "')

    def _params(self, column: _Column) -> Any:
        if self.shared is not None:
            every = self.shared.items(
                "params", column.indent, "{", self.option, None, self.start, self.n
            )
            if every is not None:
                return every
        params = self.image._message_columns()[1][self.start : self.stop]
        if set(map(type, params)) <= {dict}:
            # the messages' own parameters: orjson writes them as it writes the copies
            # json_rows makes, except a dataclass (json_rows makes it a dict of its
            # fields) or anything else orjson would hand to ``default``: those decline
            # (an extra pass to find them first cost as much as the encoding)
            return self._items(params, column.indent, "{", natively=True)
        params = self.image.params_rows(self.start, self.stop, copy=False)
        return self._items(params, column.indent, "{")

    # the optional "also": its key and opening bracket, its list, and (when it is the
    # object's first field) the comma after it; empty for a row without it
    def _also_head(self, column: _Column) -> Any:
        head = "\n" + column.indent + '"also": ['
        return self._also_rows(head if column.first else "," + head)

    def _also(self, column: _Column) -> Any:
        import pyarrow as pa

        present = self._also_present()
        if not len(present):
            return self._also_rows("")
        also = self.image.also[self.start : self.stop]
        values = pick(also, present)
        texts = self._items(values, column.indent, "[")
        return _scatter(pa.repeat(pa.scalar(""), self.n), present, texts)

    def _also_tail(self, column: _Column) -> Any:
        return self._also_rows(",")

    def _also_present(self) -> np.ndarray:
        """Positions of the rows with an ``also`` list."""
        if not hasattr(self, "_present"):
            also = self.image.also[self.start : self.stop]
            has = map(operator.is_not, also, itertools.repeat(None))
            self._present = np.flatnonzero(np.fromiter(has, dtype=bool, count=self.n))
        return self._present

    def _also_rows(self, text: str) -> Any:
        """``text`` for the rows with an ``also`` list, "" for the others."""
        import pyarrow as pa

        empty = pa.repeat(pa.scalar(""), self.n)
        present = self._also_present()
        if not len(present) or not text:
            return empty
        return _scatter(empty, present, pa.repeat(pa.scalar(text), len(present)))

    def _items(self, values: list[Any], indent: str, opener: str, *, natively: bool = False) -> Any:
        return _items_text(values, indent, opener, self.option, self.default, natively)
