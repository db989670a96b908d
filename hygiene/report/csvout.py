"""CSV text from columns: the cells and lines ``pandas.DataFrame.to_csv`` writes from
:func:`hygiene.report.exports.export_frame`'s cells, made with pyarrow's compute functions
a column at a time (:func:`write_cells`, :func:`column_cells`).

A cell is plain text; lists and dicts become text (lists of text space-separated, other
lists and dicts as JSON); a cell starting with ``=+-@``, tab or CR gets a ``'`` so a
spreadsheet never runs it as a formula. Quoting and line ends are the csv module's
(``lineterminator="\\n"``); a column of integers with gaps is written as pandas writes
floats (``3.0``).
"""

from __future__ import annotations

import csv
import json
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

SPREADSHEET_CELL = 32_767
"""The characters a spreadsheet cell holds (Excel's limit, and LibreOffice Calc's)."""
_KEPT = SPREADSHEET_CELL - 100  # what a longer cell keeps, room left for the note


def spreadsheet_cell(text: str) -> str:
    """``text``, or, when longer than a spreadsheet cell holds, its start and a note
    saying it was cut and how long it was: a spreadsheet would cut it without saying so
    (or spill it into the next rows). The JSON export and ``hygiene proposals --id …
    --format json`` keep the whole value."""
    if len(text) <= SPREADSHEET_CELL:
        return text
    note = f"[cut: {len(text):,} characters in all, more than a spreadsheet cell holds]"
    return f"{text[:_KEPT]} … {note}"


def fit_cells(cells: pa.Array) -> pa.Array:
    """:func:`spreadsheet_cell` of every cell of a text column (only the few long ones
    are touched)."""
    if isinstance(cells, pa.ChunkedArray):
        cells = cells.combine_chunks()
    data = _text_data(cells)
    if data is not None and not (np.diff(data[0]) > SPREADSHEET_CELL).any():
        return cells  # no cell has more bytes, so none has more characters
    long = pc.fill_null(pc.greater(pc.utf8_length(cells), SPREADSHEET_CELL), False)
    if not pc.any(long).as_py():
        return cells
    fitted = [spreadsheet_cell(t) for t in cells.filter(long).to_pylist()]
    return pc.replace_with_mask(cells, long, pa.array(fitted, type=pa.string()))


def csv_cell(value: Any) -> Any:
    """Plain cell text; lists and dicts as JSON; a leading ``=+-@`` is neutralised so a
    spreadsheet never runs a repository or tag name as a formula; text longer than a
    spreadsheet cell holds is cut, with a note (:func:`spreadsheet_cell`)."""
    if isinstance(value, list | tuple):
        value = (
            " ".join(str(v) for v in value)
            if all(isinstance(v, str) for v in value)
            else (json.dumps(list(value), ensure_ascii=False, default=str))
        )
    elif isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        value = "'" + value
    if isinstance(value, str):
        value = spreadsheet_cell(value)
    return value


def as_float(kinds: set[type]) -> bool:
    """Whether pandas holds a column of these kinds as float64 (integers as ``3.0``)."""
    return kinds <= NUMERIC and bool(kinds & {float, type(None)}) and bool(kinds & {int, float})


class WideInt:
    """Marks a column with an integer pandas cannot hold as a number (an object column)."""


KNOWN = {str, type(None), list, tuple, dict, int, float, bool, WideInt}
NUMERIC = {int, float, type(None)}


def _arrow_kind(values: pa.Array) -> type | None:
    """What every value of an Arrow array is as Python (:meth:`pyarrow.Array.to_pylist`)
    but None: text, an integer (int64), a bool, or a list (of text); None for another
    type."""
    kind = values.type
    if kind == pa.string():
        return str
    if kind == pa.int64():
        return int
    if kind == pa.bool_():
        return bool
    if pa.types.is_list(kind) and kind.value_type == pa.string():
        return list
    return None


def add_kinds(kinds: set[type], values: list[Any] | pa.Array) -> set[type]:
    """Add the kinds of ``values`` to ``kinds``; returns those of ``values``. An Arrow
    array holds what its type says (text, int64 integers, bools or lists of text:
    :func:`_arrow_kind`) where it is not null, and None where null."""
    if isinstance(values, pa.Array):
        kind = _arrow_kind(values)
        if kind is None:
            values = values.to_pylist()
        else:
            held: set[type] = {type(None)} if values.null_count else set()
            if values.null_count < len(values):
                held.add(kind)
            kinds |= held
            return held
    found: set[type] = set(map(type, values))
    if int in found and WideInt not in kinds:
        ints = [v for v in values if type(v) is int]
        if min(ints) < -(2**63) or max(ints) >= 2**64:
            found.add(WideInt)
    kinds |= found
    return found


def column_cells(values: list[Any] | pa.Array, kinds: set[type]) -> pa.Array:
    """The cell text of one column's ``values`` (a list, or an Arrow string array;
    ``kinds``: the types of the whole column), as pandas wrote them from
    :func:`export_frame`; None where empty."""
    if isinstance(values, pa.Array):
        cells = _arrow_cells(values, kinds)
        if cells is not None:
            return cells
        values = values.to_pylist()
    if kinds <= {str, type(None)}:
        return formula_safe(pa.array(values, type=pa.string()))
    if kinds == {int} and -(2**63) <= min(values, default=0) <= max(values, default=0) < 2**63:
        return pa.array(values, type=pa.int64()).cast(pa.string())
    if as_float(kinds):
        # pandas holds the column as float64: 3 is written 3.0, a gap as nothing
        floats = [None if v is None or v != v else repr(float(v)) for v in values]
        return pa.array(floats, type=pa.string())
    if kinds == {dict}:  # JSON text starts with "{": never a formula
        dumped = [json.dumps(v, ensure_ascii=False, sort_keys=True, default=str) for v in values]
        return pa.array(dumped, type=pa.string())
    if kinds == {bool}:
        return pa.array(["True" if v else "False" for v in values], type=pa.string())
    if kinds == {list}:
        try:
            return formula_safe(pa.array(list(map(" ".join, values)), type=pa.string()))
        except TypeError:  # not only text: JSON lists, as _csv_cell writes them
            pass
    cells = [csv_cell(v) for v in values]
    # a float NaN in a column of mixed kinds is a gap to pandas
    text: list[str | None] = [
        c if c is None or type(c) is str else None if c != c else str(c) for c in cells
    ]
    return pa.array(text, type=pa.string())


def _arrow_cells(values: pa.Array, kinds: set[type]) -> pa.Array | None:
    """:func:`column_cells` of an Arrow array (:func:`add_kinds`) made by Arrow's
    compute functions, as the list path makes them from its Python values: text and
    lists of text as they are (lists space-separated), integers as text or, in a column
    pandas holds as floats, as ``repr(float(n))`` writes them (``3.0``: exact below
    2**53), bools as ``True``/``False``; None where the list path has to make them."""
    kind = _arrow_kind(values)
    if kind is str and kinds <= {str, type(None)}:
        return formula_safe(values)
    if kind is list and kinds == {list} and not values.null_count:
        if pc.list_flatten(values).null_count:  # None in a list: its JSON, as csv_cell
            return None
        return formula_safe(pc.binary_join(values, " "))
    if kind is bool and kinds == {bool} and not values.null_count:
        return pc.if_else(values, "True", "False")
    if kind is int and kinds == {int}:
        return values.cast(pa.string())
    if kind is int and as_float(kinds) and kinds <= {int, type(None)}:
        low, high = pc.min_max(values).values()
        if low.is_valid and not -(2**53) < low.as_py() <= high.as_py() < 2**53:
            return None
        return pc.binary_join_element_wise(values.cast(pa.string()), ".0", "")
    return None


def formula_safe(cells: pa.Array) -> pa.Array:
    """``'`` before a cell that starts with ``=+-@``, tab or CR (as :func:`_csv_cell`)."""
    data = _text_data(cells)
    if data is not None:  # no cell's first byte is one of them: nothing to do
        offsets, text = data
        starts = offsets[:-1][np.diff(offsets) > 0] - offsets[0]
        if not np.isin(np.frombuffer(text, dtype=np.uint8)[starts], _FORMULA_BYTES).any():
            return cells
    risky = pc.match_substring_regex(cells, "^[=+\\-@\t\r]")
    if not pc.any(risky).as_py():
        return cells
    return pc.if_else(risky, pc.binary_join_element_wise("'", cells, ""), cells)


def _quote_pattern() -> str:
    """The characters that make the csv module quote a cell (this Python's: 3.11 does
    not quote a lone CR when the line terminator is LF)."""
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["a\rb", "c"])
    return '[,"\n\r]' if buffer.getvalue().startswith('"') else '[,"\n]'


_QUOTE = _quote_pattern()
_QUOTE_BYTES = tuple(c.encode() for c in _QUOTE.strip("[]"))
_FORMULA_BYTES = np.frombuffer("".join(_FORMULA_START).encode(), dtype=np.uint8)


def write_cells(out: IO[bytes], header: list[str] | None, cells: list[pa.Array] | None) -> None:
    """CSV lines, the bytes ``csv.writer(out, lineterminator="\\n")`` writes: the
    ``header`` line, or one line per row of ``cells`` (one text array per column, at
    least two columns; null is an empty cell)."""
    if header is not None:
        columns = [pa.array([name], type=pa.string()) for name in header]
    else:
        assert cells is not None
        columns = [fit_cells(column) for column in cells]
    quoted = []
    for column in columns:
        data = _text_data(column)
        if data is not None and not any(c in data[1] for c in _QUOTE_BYTES):
            needs = None  # none of those characters anywhere in the column
        else:
            needs = pc.match_substring_regex(column, _QUOTE)
        if needs is not None and pc.any(needs).as_py():
            wrapped = pc.binary_join_element_wise(
                '"', pc.replace_substring(column, '"', '""'), '"', ""
            )
            column = pc.if_else(needs, wrapped, column)
        quoted.append(pc.fill_null(column, "") if column.null_count else column)
    quoted[-1] = pc.binary_join_element_wise(quoted[-1], "\n", "")
    out.write(_text_bytes(pc.binary_join_element_wise(*quoted, ",")))


def _text_bytes(column: pa.Array) -> bytes:
    """The concatenated UTF-8 of a string array without nulls."""
    if isinstance(column, pa.ChunkedArray):
        return b"".join(_text_bytes(c) for c in column.chunks)
    if not len(column):
        return b""
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)
    start, stop = int(offsets[column.offset]), int(offsets[column.offset + len(column)])
    return bytes(memoryview(column.buffers()[2])[start:stop])


def _text_data(column: Any) -> tuple[np.ndarray, bytes] | None:
    """The offsets and the bytes of a string array's values (nulls may hold bytes too;
    ``offsets[i] - offsets[0]`` is where value ``i`` starts), None for anything else
    (a chunked array)."""
    if not isinstance(column, pa.Array) or column.type != pa.string():
        return None
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)
    offsets = offsets[column.offset : column.offset + len(column) + 1]
    data = column.buffers()[2]
    if data is None:  # no bytes at all (every value empty or null)
        return offsets, b""
    return offsets, bytes(memoryview(data)[int(offsets[0]) : int(offsets[-1])])
