"""The images frame, built a repository at a time while the others are still read.

A scan's reads wait on the network with 8 threads while the main thread has nothing to
do; building the images frame from 100,000 records after the last read took about 0.8 s,
most of it Python work per record: turning records into columns, copying the tag and
child lists, converting the times. :class:`ImageFrames` does that work for each
repository as its read succeeds (:meth:`ImageFrames.add`), and what needs the whole
registry (the categories, the index links) once, at the end (:meth:`ImageFrames.frame`).

The frame it makes equals :func:`hygiene.inventory.build_images` of the same records in
the same order (which is ``ImageFrames`` with one piece): every step done on a piece is
elementwise, and every step that depends on other rows (categories, the parents an
index gives, the choice of time conversion) is done on the whole.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

from hygiene.frametypes import UTC_NS, arrow_times, coerce

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

# the columns made from the others (ImageFrames.frame)
DERIVED = frozenset(
    {"tag_count", "storage_bytes", "is_index", "parent_indexes", "is_signature_tag"}
)
LISTS = ("tags", "child_digests")  # list[str] columns: each value copied, a non-list → []


@dataclass
class _Piece:
    """One repository's records as columns (each a list, in the records' order)."""

    length: int
    columns: dict[str, Sequence[Any]]
    # time columns already converted (all ``datetime`` or None): Arrow arrays in UTC
    times: dict[str, pa.Array]
    # rows whose first tag starts with "sha256-": only these can be tag-named referrers
    tag_referrers: list[int]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


class ImageFrames:
    """The images frame from pieces of image records (one per repository, as read).

    :meth:`add` a piece under a key as soon as its records are final; adding under a key
    again replaces that piece (a repository read again is read whole: nothing of an
    earlier read is kept). :meth:`frame` builds the frame of the pieces named, in that
    order; pieces not named are left out (a read that was not kept)."""

    def __init__(self, dtypes: Mapping[str, Any]) -> None:
        self.dtypes = dict(dtypes)
        self.raw = [c for c in self.dtypes if c not in DERIVED]
        self.times = [c for c in self.raw if self.dtypes[c] == UTC_NS]
        self._pieces: dict[Hashable, _Piece] = {}

    def add(self, key: Hashable, records: Sequence[Mapping[str, Any]]) -> None:
        rows = [tuple(map(r.get, self.raw)) for r in records]
        values = list(zip(*rows, strict=True)) if rows else [() for _ in self.raw]
        columns: dict[str, Sequence[Any]] = dict(zip(self.raw, values, strict=True))
        for name in LISTS:
            columns[name] = [_as_list(v) for v in columns[name]]
        times = {}
        for name in self.times:
            converted = arrow_times(columns[name]) if rows else None
            if converted is not None:
                times[name] = converted
        tags = columns["tags"]
        referrers = [i for i, t in enumerate(tags) if t and t[0].startswith("sha256-")]
        self._pieces[key] = _Piece(len(rows), columns, times, referrers)

    def discard(self, key: Hashable) -> None:
        self._pieces.pop(key, None)

    def frame(self, keys: Iterable[Hashable]) -> pd.DataFrame:
        """The typed images frame (``IMAGE_DTYPES``) of the pieces ``keys`` names, in
        that order, with the derived columns."""
        import numpy as np
        import pandas as pd

        from hygiene.inventory import INDEX_MEDIA_TYPES, link_indexes, tag_subject

        pieces = [self._pieces[key] for key in keys]
        length = sum(p.length for p in pieces)
        columns: dict[str, Any] = {}
        for name in self.raw:
            values = list(chain.from_iterable(p.columns[name] for p in pieces))
            columns[name] = pd.Series(values, dtype=object)
        frame = coerce(
            columns, {c: t for c, t in self.dtypes.items() if c not in DERIVED | set(self.times)}
        )
        for name in self.times:
            frame[name] = self._times(name, pieces, columns[name])
        frame["tag_count"] = np.fromiter(
            (len(t) for t in frame["tags"]), dtype="int32", count=length
        )
        frame["is_index"] = frame["manifest_media_type"].astype(object).isin(INDEX_MEDIA_TYPES)
        frame["storage_bytes"] = frame["size_bytes"].where(~frame["is_index"], 0).astype("int64")
        # a tag-named referrer's first tag starts with "sha256-" (tag_subject): ask only those
        subjects: list[str | None] = [None] * length
        tags, is_index = frame["tags"].tolist(), frame["is_index"].tolist()
        start = 0
        for piece in pieces:
            for row in piece.tag_referrers:
                subjects[start + row] = tag_subject(tags[start + row], bool(is_index[start + row]))
            start += piece.length
        signature_subject = pd.Series(subjects, index=frame.index, dtype=object)
        frame["is_signature_tag"] = signature_subject.notna()
        frame["subject_digest"] = (
            frame["subject_digest"].fillna(signature_subject.astype("string")).astype("string")
        )
        frame = link_indexes(frame)
        return coerce(frame, self.dtypes)

    def _times(self, name: str, pieces: list[_Piece], cells: pd.Series) -> pd.Series:
        """A time column: the pieces' Arrow arrays joined when every piece had one (the
        conversion :func:`hygiene.frametypes.utc_times` would choose for the whole
        column), else the whole column through ``utc_times``."""
        import pandas as pd
        import pyarrow as pa

        from hygiene.frametypes import utc_times

        arrays = [p.times.get(name) for p in pieces if p.length]
        if not arrays or any(a is None for a in arrays):
            return utc_times(cells)
        joined = pa.concat_arrays(arrays)
        return pd.Series(joined.to_pandas(), index=cells.index).astype(UTC_NS)
