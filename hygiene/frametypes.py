"""Typed frames from records: each column given the schema's dtype, without pandas
guessing it first (the inventory's frames, :mod:`hygiene.inventory`).

At 100,000 images, ``DataFrame.from_records`` spent two thirds of building the images
frame guessing each column's type, and pandas' conversion of time-zone-aware datetimes
checked each value's zone one by one: the scan waits for this after its last read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

UTC_NS = "datetime64[ns, UTC]"


def object_columns(
    records: Sequence[Mapping[str, Any]], columns: Iterable[str]
) -> dict[str, pd.Series]:
    """Records as object columns, one list per column: unlike ``DataFrame.from_records``
    it does not guess each column's type first (for :func:`coerce`, which gives the
    schema's, the guess is wasted work: two thirds of building a 100,000-image frame)."""
    import pandas as pd

    names = list(columns)
    values = list(zip(*[tuple(map(r.get, names)) for r in records], strict=True))
    return {
        name: pd.Series(list(values[i]) if values else [], dtype=object)
        for i, name in enumerate(names)
    }


def coerce(
    frame: pd.DataFrame | Mapping[str, pd.Series], dtypes: Mapping[str, Any]
) -> pd.DataFrame:
    """Give ``frame`` exactly the columns and dtypes of the schema (missing → NA), with
    a fresh 0…n-1 index. ``frame`` may also be a mapping of columns sharing one index.
    The frame is made once from the converted columns (inserting them one by one into
    an empty frame cost as much as converting them)."""
    import pandas as pd

    if isinstance(frame, pd.DataFrame):
        length = len(frame)
    else:
        length = len(next(iter(frame.values()))) if frame else 0
    columns: dict[str, Any] = {}
    for column, dtype in dtypes.items():
        values = frame[column] if column in frame else pd.Series([None] * length, dtype=object)
        if _typed_already(values, dtype):
            # what the conversion below would give back (a copy of it: the frame is
            # made from copies of its columns)
            columns[column] = values.array
            continue
        if dtype == UTC_NS:
            converted = utc_times(values)
        elif dtype == "object":
            converted = values.astype(object)
        elif dtype == "bool":
            converted = values.astype("boolean").fillna(False).astype(bool)
        elif dtype in ("int32", "int64"):
            converted = values.fillna(0).astype(dtype)
        else:
            converted = values.astype(dtype)
        columns[column] = converted.array  # by position: the index is not carried over
    return pd.DataFrame(columns, index=pd.RangeIndex(length), columns=list(dtypes))


def _typed_already(values: pd.Series, dtype: Any) -> bool:
    """Whether ``values`` already holds ``dtype`` exactly, so that :func:`coerce`'s
    conversion would give back the same values (the collector's frames end with
    :func:`coerce` of columns that are mostly typed already). A categorical column is
    typed for ``"category"`` whatever its categories (``astype`` keeps them and their
    order); any other column only when its dtype is the schema's own: ``"string"`` of
    the same storage and missing value, numpy ``bool`` (no missing values), a time
    column in UTC as ``datetime.timezone.utc`` (what the conversion gives)."""
    import pandas as pd

    if dtype == "object":
        return False  # astype(object) of any column: its values as objects
    if dtype == "category":
        return isinstance(values.dtype, pd.CategoricalDtype)
    target = pd.api.types.pandas_dtype(dtype)
    actual = values.dtype
    if type(actual) is not type(target) or actual != target:
        return False
    if isinstance(target, pd.DatetimeTZDtype):
        return actual.unit == target.unit and actual.tz is target.tz  # type: ignore[attr-defined]
    return True


def utc_times(values: pd.Series) -> pd.Series:
    """``pd.to_datetime(values, utc=True)`` as :data:`UTC_NS`: a column of Python
    ``datetime`` objects through :func:`arrow_times`, anything else (strings, pandas
    timestamps, numbers) through pandas."""
    import pandas as pd

    if values.dtype == object and len(values):
        array = arrow_times(values.to_numpy().tolist())
        if array is not None:
            return pd.Series(array.to_pandas(), index=values.index).astype(UTC_NS)
    return pd.to_datetime(values, utc=True).astype(UTC_NS)


def arrow_times(cells: Sequence[Any]) -> pa.Array | None:
    """``cells`` as an Arrow ``timestamp[ns, UTC]`` array when every one is a Python
    ``datetime`` or None (what botocore returns: aware, in the local zone), which pyarrow
    converts to UTC several times faster than pandas' per-element time-zone checks; None
    when any is something else (for pandas to convert)."""
    import pyarrow as pa

    if not all(type(v) is datetime or v is None for v in cells):
        return None
    return pa.array(cells, type=pa.timestamp("ns", tz="UTC"), from_pandas=True)
