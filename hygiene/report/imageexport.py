"""The images export: one row per image an open deletion proposal would delete, made
from each proposal's evidence chunk by chunk when the exports are written
(:func:`export_images`). From evidence as the planner writes it the rows are made
column by column (:func:`image_columns`), with no dict per image unless something reads
rows (the JSON export); other evidence goes through :func:`image_exports`, a dict per
image, which the column path is tested against.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hygiene.report.actions import ImageRow, ProposalImages
from hygiene.report.format import to_datetime
from hygiene.units import UNITS, human_bytes

IMAGE_COLUMNS = [
    "proposal", "state", "rule_codes", "namespace", "repository", "digest", "tags", "untagged",
    "pushed_at", "age_days", "last_pull", "bytes", "size", "grace_until", "account", "region",
]  # fmt: skip


def export_images(
    proposals: Iterable[dict[str, Any]], images_of: Mapping[str, list[ImageRow]]
) -> LazyRows:
    """One row per image an open deletion proposal would delete, made chunk by chunk
    when the exports are written: from the evidence column by column
    (:func:`image_columns`) when ``images_of`` is a :class:`ProposalImages`."""
    proposals = list(proposals)

    if isinstance(images_of, ProposalImages):
        length = sum(images_of.count(str(p.get("id"))) for p in proposals)

        def columns(size: int) -> Iterator[list[list[Any]]]:
            batch: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []
            count = 0
            for proposal in proposals:
                source = images_of.proposal(str(proposal.get("id")))
                if source is not None:
                    batch.append((proposal, source))
                    count += images_of.count(str(proposal.get("id")))
                if count >= size:
                    yield image_columns(batch, images_of.now)
                    batch, count = [], 0
            if batch:
                yield image_columns(batch, images_of.now)

        return LazyRows.of_columns(columns, IMAGE_COLUMNS, length)

    def chunks(size: int) -> Iterator[list[dict[str, Any]]]:
        batch: list[dict[str, Any]] = []
        for proposal in proposals:
            batch += _image_exports(proposal, images_of.get(str(proposal.get("id")), []))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    length = sum(len(images_of.get(str(p.get("id")), [])) for p in proposals)
    return LazyRows(chunks, length)


class LazyRows(Sequence[dict[str, Any]]):
    """Export rows made chunk by chunk (``chunks(size)``) each time they are read.

    Rows made as columns (:meth:`of_columns`) give the CSV writer their values column by
    column (:meth:`column_chunks`), and make a dict per row only for what reads rows
    (the JSON export, iteration)."""

    def __init__(
        self,
        chunks: Callable[[int], Iterator[list[dict[str, Any]]]],
        length: int,
        columns: tuple[list[str], Callable[[int], Iterator[list[list[Any]]]]] | None = None,
    ):
        self._chunks = chunks
        self._length = length
        self._columns = columns

    @classmethod
    def of_columns(
        cls, chunks: Callable[[int], Iterator[list[list[Any]]]], names: list[str], length: int
    ) -> LazyRows:
        """Rows whose chunks are made as columns: ``chunks(size)`` gives each chunk's
        values, one list per column of ``names``."""

        def rows(size: int) -> Iterator[list[dict[str, Any]]]:
            for values in chunks(size):
                yield column_rows(names, values)

        return cls(rows, length, (names, chunks))

    def chunks(self, size: int = 20_000) -> Iterator[list[dict[str, Any]]]:
        return self._chunks(size)

    def column_chunks(self, names: list[str], size: int) -> Iterator[list[list[Any]]] | None:
        """Each chunk's values of the columns ``names``, one list per column; None when
        the rows are not made as those columns."""
        if self._columns is None or self._columns[0] != names:
            return None
        return self._columns[1](size)

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for chunk in self._chunks(20_000):
            yield from chunk

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyRows | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def _image_exports(proposal: Mapping[str, Any], rows: Iterable[ImageRow]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        out.append(
            {
                **row.to_json(),
                "state": proposal.get("state"),
                "namespace": proposal.get("namespace"),
                "size": human_bytes(row.bytes),
                "grace_until": proposal.get("grace_until"),
                "account": proposal.get("account"),
                "region": proposal.get("region"),
            }
        )
    return out


def image_exports(
    proposal: Mapping[str, Any], source: Mapping[str, Any], now: datetime
) -> list[dict[str, Any]]:
    """``_image_exports(proposal, image_rows(source, now))`` (``source``: the proposal
    the images are listed under, ``proposal`` itself but for a repeated id), made from
    the evidence without an :class:`ImageRow` per image."""
    evidence = source.get("evidence") or {}
    codes_by_digest = evidence.get("rule_codes") or {}
    if not isinstance(codes_by_digest, Mapping):
        codes_by_digest = {}
    default_codes = source.get("rule_codes") or ()
    shared = {
        "proposal": str(source.get("id", "")),
        "repository": str(source.get("repository", "")),
        "state": proposal.get("state"),
        "namespace": proposal.get("namespace"),
        "grace_until": proposal.get("grace_until"),
        "account": proposal.get("account"),
        "region": proposal.get("region"),
    }
    keyed: list[tuple[bool, datetime, str, int, dict[str, Any]]] = []
    for image in evidence.get("images") or []:
        pushed = to_datetime(image.get("pushed_at"))
        pulled = to_datetime(image.get("last_pull"))
        digest = str(image.get("digest", ""))
        tags = [str(t) for t in image.get("tags") or ()]
        size = int(image.get("bytes") or 0)
        row = {
            **shared,
            "digest": digest,
            "tags": tags,
            "untagged": not tags,
            "pushed_at": pushed.isoformat() if pushed else None,
            "age_days": (now - pushed).days if pushed else None,
            "last_pull": pulled.isoformat() if pulled else None,
            "bytes": size,
            "rule_codes": list(codes_by_digest.get(digest) or default_codes),
            "size": human_bytes(size),
        }
        keyed.append((pushed is None, pushed or now, digest, len(keyed), row))
    keyed.sort(key=lambda k: k[:4])
    return [k[4] for k in keyed]


def column_rows(names: list[str], values: list[Any]) -> list[dict[str, Any]]:
    """The rows of columns ``values`` (one list, or Arrow string array, per name), as
    dicts; lists are copied."""
    lists = [v.to_pylist() if isinstance(v, pa.Array) else v for v in values]
    return [
        {name: list(v) if type(v) is list else v for name, v in zip(names, row, strict=True)}
        for row in zip(*lists, strict=True)
    ]


# times image_columns reads straight from the evidence: ISO 8601 in UTC as iso_utc
# writes them (whole seconds, or six or nine digits of fraction); other times go through
# the slow path (image_exports), which parses them one by one
_UTC_TEXT = (
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{6}|[.][0-9]{9})?[+]00:00$"
)
_DAY_US = 86_400_000_000
_IMAGE_KEYS = ("digest", "tags", "pushed_at", "last_pull", "bytes")


def image_columns(
    batch: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], now: datetime
) -> list[list[Any]]:
    """The images export's values (:data:`IMAGE_COLUMNS`, one list per column) of the
    images of ``batch``'s proposals: ``(proposal, source)`` pairs as
    :func:`image_exports` takes them, one after the other, each proposal's images oldest
    push first. The same values as :func:`image_exports`' rows, without a dict per
    image: evidence as the planner writes it (digests and tags as text, times as
    :func:`hygiene.model.iso_utc` writes them, sizes as integers) is read column by
    column, times parsed by Arrow; anything else makes the whole batch through
    :func:`image_exports`."""
    fast = _image_columns(batch, now)
    if fast is not None:
        return fast
    rows = [row for proposal, source in batch for row in image_exports(proposal, source, now)]
    return [[row[name] for row in rows] for name in IMAGE_COLUMNS]


def _image_columns(
    batch: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], now: datetime
) -> list[list[Any]] | None:
    """:func:`image_columns` of evidence as the planner writes it; None for anything else."""
    if now.tzinfo is None:  # naive: the slow path says what it says
        return None
    lists: list[list[Any]] = []
    for _, source in batch:
        evidence = source.get("evidence") or {}
        if not isinstance(evidence, dict):
            return None
        images = evidence.get("images") or []
        if type(images) is not list:
            return None
        lists.append(images)
    images = list(itertools.chain.from_iterable(lists))
    if not images:
        return [[] for _ in IMAGE_COLUMNS]
    if set(map(type, images)) != {dict}:
        return None
    try:  # every entry has every key: one C loop per key (a tuple per image, then
        # transposed, took twice as long)
        digests, tags, pushed, pulled, sizes = (
            list(map(operator.itemgetter(key), images)) for key in _IMAGE_KEYS
        )
    except KeyError:
        return None
    if not (set(map(type, digests)) <= {str} and set(map(type, tags)) <= {list}
            and set(map(type, itertools.chain.from_iterable(tags))) <= {str}
            and set(map(type, sizes)) <= {int}):  # fmt: skip
        return None
    try:
        digest_text = pa.array(digests, type=pa.string())
    except UnicodeEncodeError:  # a lone surrogate: not UTF-8
        return None
    pushed_times = _utc_microseconds(pushed)
    pulled_times = _utc_microseconds(pulled)
    if pushed_times is None or pulled_times is None:
        return None
    (pushed_us, missing, pushed_text), (_, _, pulled_text) = pushed_times, pulled_times
    group = np.repeat(np.arange(len(lists)), [len(listed) for listed in lists])
    # each proposal's images oldest push first (no push time last), then by digest
    keys = {
        "group": group,
        "missing": missing,
        "pushed": np.where(missing, 0, pushed_us),
        "digest": digest_text,
        "position": np.arange(len(images)),
    }
    order = pc.sort_indices(pa.table(keys), sort_keys=[(k, "ascending") for k in keys])
    at = order.to_numpy()
    group_of = group[at]
    # each proposal's rows are one run of the sorted rows (the group is the first key)
    counts = np.bincount(group_of, minlength=len(lists)).tolist()
    pushed_us, missing = pushed_us[at], missing[at]
    now_us = (now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    ages = pa.array(np.floor_divide(now_us - pushed_us, _DAY_US), mask=missing)
    pushed, pulled = (_iso_texts(text).take(order) for text in (pushed_text, pulled_text))
    shared: list[list[Any]] = [[] for _ in range(7)]
    rule_codes: list[Any] = []
    start = 0
    for (proposal, source), listed in zip(batch, lists, strict=True):
        # each proposal's images are one run of the images as listed, before sorting
        rule_codes += _rule_codes(source, digests[start : start + len(listed)])
        start += len(listed)
        for values, value in zip(shared, (
            str(source.get("id", "")), proposal.get("state"), proposal.get("namespace"),
            str(source.get("repository", "")), proposal.get("grace_until"),
            proposal.get("account"), proposal.get("region"),
        ), strict=True):  # fmt: skip
            values.append(value)
    rows = pa.array(group_of)
    proposal_id, state, namespace, repository, grace, account, region = (
        _spread(values, counts, rows) for values in shared
    )
    tag_lists = _text_lists(tags, order, text=True)  # lists of text, checked above
    untagged = (
        pc.equal(pc.list_value_length(tag_lists), 0)
        if isinstance(tag_lists, pa.Array)
        else list(map(operator.not_, tag_lists))
    )
    return [
        proposal_id, state, _text_lists(rule_codes, order), namespace, repository,
        digest_text.take(order), tag_lists, untagged, pushed, ages, pulled,
        *_sizes(sizes, order), grace, account, region,
    ]  # fmt: skip


def _rule_codes(source: Mapping[str, Any], digests: list[str]) -> list[Any]:
    """The rule codes of each of ``digests`` (images of ``source``'s evidence): the
    evidence's by digest, else the proposal's (a tuple as it is: a list when read)."""
    by_digest = (source.get("evidence") or {}).get("rule_codes") or {}
    if not isinstance(by_digest, Mapping):
        by_digest = {}
    found = list(map(by_digest.get, digests))
    if all(found):  # every digest has codes of its own
        return found
    default = list(source.get("rule_codes") or ())
    return [codes or default for codes in found]


def _text_lists(
    values: list[Any], order: pa.Array, *, text: bool = False
) -> pa.Array | list[list[Any]]:
    """Lists (or tuples) of ``values`` in ``order``, as an Arrow array of lists of text
    when every value in them is text (a list of lists otherwise); ``text``: the caller
    checked that they are lists of text."""
    if text or (
        set(map(type, values)) <= {list, tuple}
        and set(map(type, itertools.chain.from_iterable(values))) <= {str}
    ):
        try:
            return pa.array(values, type=pa.list_(pa.string())).take(order)
        except UnicodeEncodeError:  # a lone surrogate: not UTF-8
            pass
    positions = order.to_pylist()
    return [list(values[k]) for k in positions]


def _sizes(sizes: list[int], order: pa.Array) -> tuple[Any, Any]:
    """The sizes (integers) in ``order`` and their :func:`human_bytes` texts: as Arrow
    int64 when int64 holds them all."""
    try:
        values = pa.array(sizes, type=pa.int64()).take(order)
    except (OverflowError, pa.ArrowInvalid):  # an integer int64 does not hold
        ordered = list(map(sizes.__getitem__, order.to_pylist()))
        return ordered, _size_texts(ordered)
    return values, _size_texts(values.to_numpy())


def _spread(values: list[Any], counts: list[int], rows: pa.Array) -> pa.Array | list[Any]:
    """Each proposal's value (``values``) repeated for its ``counts`` rows, in order: as
    Arrow text (``rows``: the proposal of each row) when the values are text (some of
    them None at most), else as a list. Text in Arrow is what a list of it would be: the
    same cells, the same kinds (:func:`hygiene.report.csvout.add_kinds`) and rows."""
    shown = [v if n else None for v, n in zip(values, counts, strict=True)]  # none: no rows
    if any(type(v) is str for v in shown) and all(type(v) is str or v is None for v in shown):
        try:
            return pa.array(shown, type=pa.string()).take(rows)
        except UnicodeEncodeError:  # a lone surrogate: not UTF-8
            pass
    return list(
        itertools.chain.from_iterable(
            itertools.repeat(v, n) for v, n in zip(values, counts, strict=True)
        )
    )


def _size_texts(sizes: list[int]) -> pa.Array | list[str]:
    """``human_bytes`` of each size, as Arrow text: the unit from the binary exponent,
    the tenths rounded half to even from the exact quotient, as ``f"{x:.1f}"`` rounds
    a float that holds it exactly (sizes below 2**53: whole floats); one by one when a
    size is negative or larger."""
    values = np.asarray(sizes)
    if values.dtype != np.int64 or (len(values) and not 0 <= values.min() <= values.max() < 2**53):
        return list(map(human_bytes, values.tolist()))
    exponent = np.frexp(values.astype(np.float64))[1]  # the bit length, exactly
    unit = np.clip((exponent - 1) // 10, 0, len(UNITS) - 1).astype(np.int64)
    shift = 10 * unit
    tenths = values * 10
    whole = tenths >> shift
    rest = tenths - (whole << shift)
    half = np.where(shift > 0, 1 << np.maximum(shift - 1, 0), 1)
    whole += (rest > half) | ((rest == half) & (whole % 2 == 1) & (shift > 0))
    text = pc.binary_join_element_wise(
        pa.array(whole // 10).cast(pa.string()), ".", pa.array(whole % 10).cast(pa.string()),
        " ", pa.array(UNITS, type=pa.string()).take(pa.array(unit)), "",
    )  # fmt: skip
    in_bytes = pc.binary_join_element_wise(pa.array(values).cast(pa.string()), " B", "")
    return pc.if_else(pa.array(unit == 0), in_bytes, text)


def _utc_microseconds(values: list[Any]) -> tuple[np.ndarray, np.ndarray, pa.Array] | None:
    """Microseconds since the epoch of times written as :func:`hygiene.model.iso_utc`
    writes them (whole seconds, six or nine digits of fraction, ``+00:00``), the
    fraction cut after six digits as ``datetime.fromisoformat`` reads it, where the
    time is missing (None), and the times as text; None when any is written otherwise."""
    if not set(map(type, values)) <= {str, type(None)}:
        return None
    try:
        text = pa.array(values, type=pa.string())
    except UnicodeEncodeError:
        return None
    written = text.drop_null()
    if len(written) and not (
        pc.all(pc.match_substring_regex(written, _UTC_TEXT)).as_py()
        and not pc.any(pc.starts_with(written, "0000")).as_py()
    ):
        return None
    try:  # Arrow says when a day does not exist (the slow path then says what it says)
        nanoseconds = pc.cast(text, pa.timestamp("ns", tz="UTC")).cast(pa.int64())
    except pa.ArrowInvalid:
        return None
    missing = np.asarray(nanoseconds.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    micro = np.floor_divide(nanoseconds.fill_null(0).to_numpy(), 1000)
    return micro, missing, text


def _iso_texts(text: pa.Array) -> pa.Array:
    """``to_datetime(t).isoformat()`` of times :func:`_utc_microseconds` read: the
    fraction cut after six digits, and none when those are zeros (null stays null)."""
    # the first 26 characters (up to six digits of fraction) and the offset: the text
    # itself when it has six digits, or none (25 characters: cut before the offset)
    cut = pc.binary_join_element_wise(pc.utf8_slice_codeunits(text, 0, 26), "+00:00", "")
    # "." only ever starts the fraction: six zeros there, or no fraction, write none
    whole = pc.or_(pc.less(pc.utf8_length(text), 26), pc.match_substring(text, ".000000"))
    if not pc.any(whole).as_py():
        return cut
    seconds = pc.binary_join_element_wise(pc.utf8_slice_codeunits(text, 0, 19), "+00:00", "")
    return pc.if_else(whole, seconds, cut)
