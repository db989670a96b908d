"""The images frame, built a repository at a time while the others are still read.

A scan's reads wait on the network with 8 threads while the main thread has nothing to
do; building the images frame from 100,000 records after the last read took about 0.8 s,
most of it Python work per record: turning records into columns, copying the tag and
child lists, converting the times, the categories' codes, the index links.
:class:`ImageFrames` does that work for each repository as its read succeeds
(:meth:`ImageFrames.add`), and what needs the whole registry once, at the end
(:meth:`ImageFrames.frame`).

The frame it makes equals :func:`hygiene.inventory.build_images` of the same records in
the same order (which is ``ImageFrames`` with one piece): every step done on a piece is
elementwise, and every step that depends on other rows is done on the whole or, from
what each piece prepared, only where the piece's part is known to be the whole's: a
category column's codes (when every value is text: the whole's categories are the
sorted union of the pieces'), an index's children's parents (when no other piece holds
a repository of the same name: the one-shot build links by name), the choice of time
conversion (Arrow when every piece could).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

from hygiene.frametypes import UTC_NS, arrow_times, coerce

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

INDEX_MEDIA_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
SIGNATURE_TAG = re.compile(r"^sha256-[0-9a-f]{64}\.(sig|att|sbom)$")
# The OCI referrers tag schema (distribution spec, "Referrers Tag Schema"): a registry
# without the referrers API gets an image index tagged ``sha256-<hex>`` listing the
# referrers of ``sha256:<hex>``. Only an index carries such a tag.
REFERRERS_TAG = re.compile(r"^sha256-[0-9a-f]{64}$")


def legacy_signature_subject(tag: str, is_index: bool = False) -> str | None:
    """``sha256-<hex>.sig`` → ``sha256:<hex>`` (the signed image's digest); on an image
    index also ``sha256-<hex>`` (the referrers tag schema: the index lists the referrers
    of ``sha256:<hex>``)."""
    if SIGNATURE_TAG.match(tag) or (is_index and REFERRERS_TAG.match(tag)):
        return "sha256:" + tag[len("sha256-") : len("sha256-") + 64]
    return None


def tag_subject(tags: Sequence[str], is_index: bool) -> str | None:
    """The image a tag-named referrer refers to: when every tag of the image is a legacy
    cosign tag (or, on an index, a referrers-tag-schema tag), the first tag's subject."""
    subjects = [legacy_signature_subject(t, is_index) for t in tags]
    if subjects and all(s is not None for s in subjects):
        return subjects[0]
    return None


def link_indexes(images: pd.DataFrame) -> pd.DataFrame:
    """Fill ``parent_indexes`` from each index's ``child_digests``: the indexes of the
    same repository, that is the same account, region and name (a replicated repository
    has the same name in other regions, and its indexes list nothing here)."""
    parents: dict[tuple[str, str, str, str], list[str]] = {}
    indexes = images[images["is_index"]]
    for account, region, repository, digest, children in zip(
        indexes["account"],
        indexes["region"],
        indexes["repository"],
        indexes["digest"],
        indexes["child_digests"],
        strict=True,
    ):
        for child in children or ():
            key = (str(account), str(region), str(repository), child)
            parents.setdefault(key, []).append(str(digest))
    images = images.copy()
    column: list[list[str]] = [[] for _ in range(len(images))]
    if parents:
        # only the rows whose digest some index lists can have parents
        listed = {key[3] for key in parents}
        candidates = images["digest"].astype(object).isin(listed).to_numpy().nonzero()[0]
        accounts, regions = images["account"].to_numpy(), images["region"].to_numpy()
        repositories, digests = images["repository"].to_numpy(), images["digest"].to_numpy()
        for row in candidates.tolist():
            where = (str(accounts[row]), str(regions[row]), str(repositories[row]))
            found = parents.get((*where, str(digests[row])))
            if found is not None:
                column[row] = found
    images["parent_indexes"] = column
    return images


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
    # category columns whose values are all text or None: (distinct values, each row's
    # position among them, or None when there is one distinct value)
    codes: dict[str, tuple[list[str | None], list[int] | None]]
    # parent_indexes of the piece's rows, linked within the piece; None when a value it
    # needs is not text (the whole is linked at the end)
    parents: list[list[str]] | None
    # the (account, region, name) of the piece's repositories, when ``parents`` is set
    repositories: set[tuple[str, str, str]]


def _local_codes(values: Sequence[Any]) -> tuple[list[str | None], list[int] | None] | None:
    distinct = list(dict.fromkeys(values))
    if not all(v is None or type(v) is str for v in distinct):
        return None
    if len(distinct) <= 1:
        return distinct, None
    position = {v: i for i, v in enumerate(distinct)}
    return distinct, [position[v] for v in values]


def _local_parents(columns: Mapping[str, Sequence[Any]]) -> list[list[str]] | None:
    """:func:`link_indexes` of the piece alone (same keys, same order, one list shared by
    the rows of one key), when its values are all text."""
    accounts, regions = columns["account"], columns["region"]
    repositories, digests = columns["repository"], columns["digest"]
    media, children = columns["manifest_media_type"], columns["child_digests"]
    if not all(
        type(v) is str for v in chain(set(accounts), set(regions), set(repositories), set(digests))
    ) or not all(v is None or type(v) is str for v in set(media)):
        return None
    parents: dict[tuple[str, str, str, Any], list[str]] = {}
    for account, region, repository, digest, kind, listed in zip(
        accounts, regions, repositories, digests, media, children, strict=True
    ):
        if kind in INDEX_MEDIA_TYPES:
            for child in listed:
                parents.setdefault((account, region, repository, child), []).append(digest)
    column: list[list[str]] = [[] for _ in range(len(digests))]
    if parents:
        named = {key[3] for key in parents}
        for row, digest in enumerate(digests):
            if digest in named:
                key = (accounts[row], regions[row], repositories[row], digest)
                found = parents.get(key)
                if found is not None:
                    column[row] = found
    return column


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
        self.categories = [c for c in self.raw if self.dtypes[c] == "category"]
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
        codes = {}
        for name in self.categories:
            local = _local_codes(columns[name])
            if local is not None:
                codes[name] = local
        parents = _local_parents(columns)
        repositories = (
            set(zip(columns["account"], columns["region"], columns["repository"], strict=True))
            if parents is not None
            else set()
        )
        self._pieces[key] = _Piece(
            len(rows), columns, times, referrers, codes, parents, repositories
        )

    def discard(self, key: Hashable) -> None:
        self._pieces.pop(key, None)

    def frame(self, keys: Iterable[Hashable]) -> pd.DataFrame:
        """The typed images frame (``IMAGE_DTYPES``) of the pieces ``keys`` names, in
        that order, with the derived columns."""
        import numpy as np
        import pandas as pd

        pieces = [self._pieces[key] for key in keys]
        length = sum(p.length for p in pieces)
        columns: dict[str, Any] = {}
        for name in self.raw:
            values = list(chain.from_iterable(p.columns[name] for p in pieces))
            columns[name] = pd.Series(values, dtype=object)
        for name in self.categories:
            categorical = _categorical(name, pieces, length)
            if categorical is not None:
                columns[name] = categorical
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
        names = [p.repositories for p in pieces]
        if all(p.parents is not None for p in pieces) and sum(map(len, names)) == len(
            set().union(*names)
        ):  # no two pieces share a repository: each piece's links are the whole's
            frame["parent_indexes"] = list(chain.from_iterable(p.parents or () for p in pieces))
        else:
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


def _categorical(name: str, pieces: list[_Piece], length: int) -> pd.Series | None:
    """The category column ``name`` from the pieces' codes: categories sorted as pandas
    sorts them (text by code point), codes mapped from each piece's; None when a piece
    has a value that is not text, or no piece has any value (pandas' own conversion)."""
    import numpy as np
    import pandas as pd

    locals_ = [p.codes.get(name) for p in pieces]
    if any(local is None for local in locals_):
        return None
    categories = sorted({v for d, _ in filter(None, locals_) for v in d if v is not None})
    if not categories:
        return None
    position = {v: i for i, v in enumerate(categories)}
    codes = np.empty(length, dtype=np.int64)
    start = 0
    for piece, local in zip(pieces, locals_, strict=True):
        assert local is not None
        distinct, rows = local
        mapping = np.array([-1 if v is None else position[v] for v in distinct], dtype=np.int64)
        end = start + piece.length
        if rows is None:
            if piece.length:
                codes[start:end] = mapping[0]
        else:
            codes[start:end] = mapping[np.asarray(rows, dtype=np.int64)]
        start = end
    return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(categories)))
