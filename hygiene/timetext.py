"""ISO 8601 texts of many times at once, written as bytes in one array.

:func:`offset_texts` gives what :func:`hygiene.model.iso_utc` writes for each time: every
text is laid out in a row of a byte matrix from small tables (the days present, the
86,400 clock times, the 1,000 three-digit groups), and the rows become strings in one
numpy conversion. A delete proposal's evidence holds two times per image.
"""

from __future__ import annotations

import functools

import numpy as np

from hygiene.findingtable import NAT

WIDTH = len("2026-11-28T03:00:00.123456789+00:00")
_SUFFIX = np.frombuffer(b"+00:00", dtype=np.uint8)
CHUNK = 65_536
"""Times written at a time (their bytes and numpy texts: about 11 MiB)."""
_DAY_SPAN = 100_000
"""Days between the first and last time below which every day between is formatted
(one table, no sort); beyond it, the distinct days alone are."""


def offset_texts(nanoseconds: np.ndarray) -> list[str | None]:
    """``iso_utc`` of each time given as int64 nanoseconds since the epoch
    (``2026-11-28T03:00:00+00:00``, with ``.ffffff`` or ``.fffffffff`` when there is a
    fraction), None for :data:`~hygiene.findingtable.NAT`. Every date is ``YYYY-MM-DD``:
    int64 nanoseconds reach from 1677 to 2262."""
    values = np.asarray(nanoseconds, dtype=np.int64)
    present = np.flatnonzero(values != NAT)
    if not len(present):
        return [None] * len(values)
    seconds, fraction = np.divmod(values[present], 1_000_000_000)
    days, second_of_day = np.divmod(seconds, 86400)
    first, last = int(days.min()), int(days.max())
    if last - first < _DAY_SPAN:
        day_numbers, day_of = np.arange(first, last + 1), days - first
    else:
        day_numbers, day_of = np.unique(days, return_inverse=True)
    day_text = np.datetime_as_string(day_numbers.astype("datetime64[D]"))
    day_bytes = day_text.astype("S10").view(np.uint8).reshape(-1, 10)
    strings: list[str] = []
    for start in range(0, len(present), CHUNK):  # a chunk's bytes and texts at a time
        part = slice(start, start + CHUNK)
        strings += _texts(day_bytes[day_of[part]], second_of_day[part], fraction[part])
    if len(present) == len(values):
        return strings  # type: ignore[return-value]
    out = np.full(len(values), None, dtype=object)
    out[present] = strings
    return out.tolist()  # type: ignore[no-any-return]


def _texts(day_bytes: np.ndarray, second_of_day: np.ndarray, fraction: np.ndarray) -> list[str]:
    """The texts of times given as their day's ``YYYY-MM-DD`` bytes, second of the day
    and nanoseconds of fraction."""
    text = np.zeros((len(fraction), WIDTH), dtype=np.uint8)
    text[:, :10] = day_bytes
    text[:, 10] = ord("T")
    text[:, 11:19] = _clock()[second_of_day]
    # .mmmuuunnn+00:00, then cut to .mmmuuu+00:00 or +00:00 (as Timestamp.isoformat)
    micro, nano = np.divmod(fraction, 1000)
    milli, micro = np.divmod(micro, 1000)
    triples = _triples()
    text[:, 19] = ord(".")
    text[:, 20:23] = triples[milli]
    text[:, 23:26] = triples[micro]
    text[:, 26:29] = triples[nano]
    text[:, 29:] = _SUFFIX
    whole_second = fraction == 0
    whole_micro = (nano == 0) & ~whole_second
    text[whole_micro, 26:32] = _SUFFIX
    text[whole_micro, 32:] = 0
    text[whole_second, 19:25] = _SUFFIX
    text[whole_second, 25:] = 0
    # numpy drops the trailing zero bytes of each row
    return text.view(f"S{WIDTH}").ravel().astype(f"U{WIDTH}").tolist()  # type: ignore[no-any-return]


@functools.cache
def _clock() -> np.ndarray:
    """``HH:MM:SS`` of each second of the day, as rows of bytes: made digit by digit from
    the numbers (a text per second made in Python took 0.05-0.1 s, which a small scan
    pays once for a few hundred times)."""
    second = np.arange(86400)
    fields = (second // 3600, second // 60 % 60, second % 60)
    text = np.full((86400, 8), ord(":"), dtype=np.uint8)
    for column, value in zip((0, 3, 6), fields, strict=True):
        text[:, column] = ord("0") + value // 10
        text[:, column + 1] = ord("0") + value % 10
    return text


@functools.cache
def _triples() -> np.ndarray:
    """``000`` … ``999`` as rows of bytes."""
    text = "".join(f"{n:03d}" for n in range(1000))
    return np.frombuffer(text.encode(), dtype=np.uint8).reshape(1000, 3)
