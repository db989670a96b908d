"""The findings of an evaluation, with the image findings kept as columns.

A first scan of a neglected registry flags most of its images: 593,000 image findings at
a million images (docs/benchmarks.md). Building a :class:`~hygiene.model.Finding` object
for each, and a dict for each again for the JSON document, the store and the reports,
cost more than the rules themselves. :class:`Findings` is a ``Sequence[Finding]`` that
holds the image findings as parallel columns and makes objects only when something asks
for one (indexing, iteration), while the stages that handle all of them at once read the
columns: the plan (:mod:`hygiene.plan`), the JSON writer (:mod:`hygiene.jsonout`), the
store and the counts. Repository and namespace findings (a few per repository) are plain
objects.

The order is the engine's: image findings first (by rule, repository, push time), then
the others in the order their rules ran. ``Findings[i]`` and ``Findings.json_rows()``
give exactly what the same :class:`~hygiene.model.Finding` and its ``to_json()`` would.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import operator
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np

from hygiene.messages import Message
from hygiene.model import Finding, FixSafety, Severity

NAT = np.iinfo(np.int64).min  # numpy's NaT as int64 nanoseconds


@dataclass(frozen=True)
class RuleInfo:
    """What every finding of one rule shares."""

    code: str
    name: str
    severity: Severity
    fix: str
    fix_safety: FixSafety


@dataclass
class ImageFindings:
    """One image finding per entry, as parallel columns (see :class:`Findings`).

    ``unit_offsets`` (length ``n + 1``) cut ``unit_digests`` and ``unit_rows`` into each
    finding's deletion unit, root first; ``unit_rows`` are rows of the inventory's images
    frame the engine evaluated. Times are int64 nanoseconds since the epoch, UTC
    (:data:`NAT` when missing).
    """

    rules: list[RuleInfo]
    rule: np.ndarray  # int: index into rules
    rows: np.ndarray  # int: image row of the finding (its unit's root)
    account: list[str]
    region: list[str]
    repository: list[str]
    namespace: list[str | None]
    tags: list[Any]  # the inventory's tag lists (not copied)
    message: list[Any]  # Message, or text from a rule without a template
    unit_offsets: np.ndarray
    unit_digests: list[str]
    unit_rows: np.ndarray
    bytes: np.ndarray  # int64: bytes of the unit
    pushed_at: np.ndarray  # int64 ns
    last_pull: np.ndarray  # int64 ns: the unit's latest pull
    details: list[dict[str, Any] | None]  # rule-specific details, merged into details
    also: list[list[str] | None]  # other image rules that hit the same image
    unique_digests: bool = True  # the inventory has no digest twice in a repository
    # int: the repository of each finding, or None: the engine's repo_id, one number for
    # each (account, region, repository) and one of those for each number; the report's
    # views and totals count by it
    repo_ids: np.ndarray | None = None
    # the messages' English text, rendered once for every reader of all the rows
    _texts: list[str] | None = field(default=None, init=False, repr=False, compare=False)
    _messages: tuple[list[str], list[Any]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __len__(self) -> int:
        return len(self.rule)

    def texts(self) -> list[str]:
        """Every message's English text (rendered on the first call; the JSON document,
        the stores and the report each read all of them)."""
        if self._texts is None:
            self._texts = english_texts(self.message, self.creation_order())
        return self._texts

    def creation_order(self) -> np.ndarray:
        """Positions of the entries by rule, then image row: about the order in which
        the rules made their messages (and the inventory its tag lists). Many small
        objects read in that order are read mostly in sequence in memory; in the
        findings' order (rule, repository, push time) they are scattered, and reading a
        million of them took several times as long (cache misses, not work). Any order
        gives the same results; this one is only faster."""
        return np.lexsort((self.rows, self.rule))

    def _parts(self, i: int) -> tuple[str, str, dict[str, Any]]:
        text, template, params = message_parts(self.message[i], render=self._texts is None)
        return (self._texts[i] if self._texts is not None else text), template, params

    def unit(self, i: int) -> list[str]:
        return self.unit_digests[int(self.unit_offsets[i]) : int(self.unit_offsets[i + 1])]

    def _details(self, i: int, pushed_at: str | None, last_pull: str | None) -> dict[str, Any]:
        details: dict[str, Any] = {
            "unit": self.unit(i),
            "pushed_at": pushed_at,
            "last_pull": last_pull,
        }
        also = self.also[i]
        if also is not None:
            details["also"] = list(also)
        extra = self.details[i]
        if isinstance(extra, dict):
            details.update(extra)
        return details

    def findings(self, start: int, stop: int) -> list[Finding]:
        pushed = iso_strings(self.pushed_at[start:stop])
        pulled = iso_strings(self.last_pull[start:stop])
        out = []
        for k, i in enumerate(range(start, stop)):
            info = self.rules[int(self.rule[i])]
            unit = self.unit(i)
            text, template, params = self._parts(i)
            out.append(
                Finding(
                    code=info.code,
                    rule=info.name,
                    severity=info.severity,
                    account=self.account[i],
                    region=self.region[i],
                    repository=self.repository[i],
                    namespace=self.namespace[i],
                    message=text,
                    fix=info.fix,
                    fix_safety=info.fix_safety,
                    image_digest=unit[0],
                    tags=tuple(self.tags[i]),
                    bytes=int(self.bytes[i]),
                    details=self._details(i, pushed[k], pulled[k]),
                    message_template=template,
                    message_params=params,
                )
            )
        return out

    def _message_columns(self) -> tuple[list[str], list[Any]]:
        """Each message's template and its parameters (the message's own mapping, or {}),
        made once for every reader of all the rows (:func:`message_columns`)."""
        if self._messages is None:
            self._messages = message_columns(self.message)
        return self._messages

    def params_rows(self, start: int, stop: int, *, copy: bool = True) -> list[dict[str, Any]]:
        """The ``message_params`` of entries ``start:stop`` as :meth:`json_rows` gives them."""
        params: list[Any] = self._message_columns()[1][start:stop]
        if not all_plain(params):
            params = [dict(p) if _plain(p) else _copy_json(dict(p)) for p in params]
        elif copy or not set(map(type, params)) <= {dict}:
            params = list(map(dict, params))
        return params

    def json_rows(self, start: int, stop: int, *, copy: bool = True) -> list[dict[str, Any]]:
        """``Finding.to_json()`` of entries ``start:stop``, built from the columns: each
        row its own copy (nothing in it is shared with another row or call), unless
        ``copy`` is false: then the rows hold the findings' own tag lists, ``also`` lists
        and plain message parameters (for a writer that only encodes them)."""
        constants = [
            (r.code, r.name, r.severity.value, r.fix, r.fix_safety.value) for r in self.rules
        ]
        offsets = self.unit_offsets[start : stop + 1].tolist()
        digests = self.unit_digests
        templates = self._message_columns()[0]
        tags_of: list[Any] = self.tags[start:stop]
        if copy or not set(map(type, tags_of)) <= {list}:
            tags_of = list(map(list, tags_of))
        params = self.params_rows(start, stop, copy=copy)
        also_of: list[Any] = self.also[start:stop]
        if copy or not set(map(type, also_of)) <= {list, type(None)}:
            also_of = [None if also is None else list(also) for also in also_of]
        rows: list[dict[str, Any]] = []
        append = rows.append
        for (
            rule,
            account,
            region,
            repository,
            namespace,
            template,
            message_params,
            text,
            tags,
            size,
            pushed,
            pulled,
            also,
            extra,
            begin,
            end,
        ) in zip(
            self.rule[start:stop].tolist(),
            self.account[start:stop],
            self.region[start:stop],
            self.repository[start:stop],
            self.namespace[start:stop],
            templates[start:stop],
            params,
            self.texts()[start:stop],
            tags_of,
            self.bytes[start:stop].tolist(),
            iso_strings(self.pushed_at[start:stop]),
            iso_strings(self.last_pull[start:stop]),
            also_of,
            self.details[start:stop],
            offsets[:-1],
            offsets[1:],
            strict=True,
        ):
            code, name, severity, fix, fix_safety = constants[rule]
            unit = digests[begin:end]
            details: dict[str, Any] = {"unit": unit, "pushed_at": pushed, "last_pull": pulled}
            if also is not None:
                details["also"] = also
            if extra is not None and isinstance(extra, dict):
                details.update(extra if _plain(extra) else _copy_json(extra))
            append(
                {
                    "code": code,
                    "rule": name,
                    "severity": severity,
                    "account": account,
                    "region": region,
                    "repository": repository,
                    "namespace": namespace,
                    "message": text,
                    "fix": fix,
                    "fix_safety": fix_safety,
                    "image_digest": unit[0],
                    "tags": tags,
                    "bytes": size,
                    "details": details,
                    "message_template": template,
                    "message_params": message_params,
                }
            )
        return rows

    def codes(self) -> list[str]:
        return [self.rules[i].code for i in self.rule.tolist()]

    def unit_members(self) -> set[tuple[str, str, str, str]]:
        """(account, region, repository, digest) of every image in a unit."""
        lengths = np.diff(self.unit_offsets).tolist()
        out: set[tuple[str, str, str, str]] = set()
        position = 0
        for i, length in enumerate(lengths):
            where = (self.account[i], self.region[i], self.repository[i])
            for digest in self.unit_digests[position : position + length]:
                out.add((*where, digest))
            position += length
        return out


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(mapping: Any) -> bool:
    """Every value of ``mapping`` is a string, a number, a boolean or None."""
    scalars = _SCALARS
    return all(type(v) in scalars for v in mapping.values())


def all_plain(params: list[Any]) -> bool:
    """Every entry of ``params`` is a dict whose values are all strings, numbers,
    booleans or None (:func:`_plain` of each, in a few passes over all of them at C
    speed rather than a Python call per entry)."""
    if not set(map(type, params)) <= {dict}:
        return all(map(_plain, params))
    return set(map(type, itertools.chain.from_iterable(map(dict.values, params)))) <= _SCALARS


_TEMPLATE = operator.attrgetter("template")
_PARAMS = operator.attrgetter("params")


def message_columns(messages: list[Any]) -> tuple[list[str], list[Any]]:
    """Each message's template and parameters (its own mapping): "" and {} for plain
    text from a rule without a template. Read with :func:`operator.attrgetter` when all
    are :class:`Message` (a million messages: a loop in Python took over a second; in
    creation order, :meth:`ImageFindings.creation_order`, it was no faster, as each
    message is read once)."""
    if set(map(type, messages)) == {Message}:
        return list(map(_TEMPLATE, messages)), list(map(_PARAMS, messages))
    templates: list[str] = []
    params: list[Any] = []
    empty: dict[str, Any] = {}
    for message in messages:
        if isinstance(message, Message):
            templates.append(message.template)
            params.append(message.params)
        else:
            templates.append("")
            params.append(empty)
    return templates, params


def inverse(order: np.ndarray) -> np.ndarray:
    """The permutation that puts ``pick(values, order)`` back in the order of ``values``."""
    back = np.empty(len(order), dtype=np.int64)
    back[order] = np.arange(len(order), dtype=np.int64)
    return back


def pick(values: Sequence[Any], positions: np.ndarray) -> list[Any]:
    """``[values[i] for i in positions]``, gathered at C speed."""
    where = positions.tolist()
    if len(where) < 2:
        return [values[i] for i in where]
    return list(operator.itemgetter(*where)(values))


def finding_index(index: int, length: int, what: str = "finding") -> int:
    """``index`` into a lazy sequence of ``length`` findings (or other rows, ``what``),
    negative from the end, as a list takes it; IndexError outside."""
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"{what} index out of range")
    return index


def _copy_json(value: Any) -> Any:
    """A copy of JSON-shaped ``value``, as ``dataclasses.asdict`` copies a field (a
    dataclass inside, such as a :class:`~hygiene.messages.Message` parameter, becomes a
    dict of its fields)."""
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_copy_json(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def english(value: Any, by_name: dict[str, bool] | None = None) -> str:
    """``message_parts(value)[0]``: a message's English text. A :class:`Message` whose
    parameters are plain (strings, numbers, booleans, None) is filled in directly,
    each value as its ``str``, which is what :meth:`Message.render` gives each of them
    (its checks for nested messages and lists, made per value, cost most of its time);
    when every placeholder of the template is ``%(name)s`` (``by_name`` caches that per
    template), the parameters fill it in as they are (``%s`` is ``str``)."""
    if type(value) is Message:
        params = value.params
        if not params:
            return value.template
        if type(params) is dict and _plain(params):
            template = value.template
            if _fills_as_str(template, by_name):
                return template % params
            return template % {key: str(param) for key, param in params.items()}
        return value.render()
    return message_parts(value)[0]


def _fills_as_str(template: str, by_name: dict[str, bool] | None) -> bool:
    """Every placeholder of ``template`` is ``%(name)s`` (or ``%%``): filled in with the
    parameters as they are, each is its ``str``. ``by_name`` caches the answer."""
    simple = None if by_name is None else by_name.get(template)
    if simple is None:
        simple = _PLACEHOLDER.sub("", template).count("%") == 0
        if by_name is not None:
            by_name[template] = simple
    return simple


ENGLISH_BLOCK = 4096
"""Messages :func:`english_texts` renders at a time (their parameters stay in cache
between the check and the formatting)."""


def english_texts(messages: list[Any], order: np.ndarray | None = None) -> list[str]:
    """:func:`english` of every message, in order. They are rendered in ``order`` (a
    permutation: see :meth:`ImageFindings.creation_order`), a block at a time: a block
    of messages that are all
    :class:`Message` with plain, non-empty parameters (dicts of strings, numbers,
    booleans and None) and templates of ``%(name)s`` placeholders only, which is what
    the rules write, is filled in by one ``map`` of ``template % params`` (what
    :func:`english` does for each of them); any other block goes message by message."""
    ordered = messages if order is None else pick(messages, order)
    out: list[str] = []
    by_name: dict[str, bool] = {}
    for start in range(0, len(ordered), ENGLISH_BLOCK):
        block = ordered[start : start + ENGLISH_BLOCK]
        if set(map(type, block)) == {Message}:
            params = list(map(_PARAMS, block))
            if set(map(type, params)) == {dict} and all(params) and all_plain(params):
                templates = list(map(_TEMPLATE, block))
                if all(_fills_as_str(t, by_name) for t in set(templates)):
                    out += map(operator.mod, templates, params)
                    continue
        out += [english(m, by_name) for m in block]
    return out if order is None else pick(out, inverse(order))


# a placeholder that formats its value as str() does, and a literal percent sign
_PLACEHOLDER = re.compile(r"%\([^()]*\)s|%%")


def message_parts(value: Any, *, render: bool = True) -> tuple[str, str, dict[str, Any]]:
    """(English text, template, parameters) of a rule's message (a :class:`Message`, or
    plain text from a rule that has no template); the text is "" with ``render=False``."""
    if isinstance(value, Message):
        return (value.render() if render else ""), value.template, dict(value.params)
    return str(value), "", {}


class Findings(Sequence[Finding]):
    """The findings of an evaluation: a ``Sequence[Finding]`` (see the module docstring)."""

    CHUNK = 20_000

    def __init__(self, image: ImageFindings | None = None, other: Sequence[Finding] = ()) -> None:
        self.image = image if image is not None and len(image) else None
        self.other = list(other)

    @property
    def image_count(self) -> int:
        return len(self.image) if self.image is not None else 0

    def __len__(self) -> int:
        return self.image_count + len(self.other)

    @overload
    def __getitem__(self, index: int) -> Finding: ...

    @overload
    def __getitem__(self, index: slice) -> list[Finding]: ...

    def __getitem__(self, index: int | slice) -> Finding | list[Finding]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = finding_index(index, len(self))
        if index < self.image_count:
            assert self.image is not None
            return self.image.findings(index, index + 1)[0]
        return self.other[index - self.image_count]

    def __iter__(self) -> Iterator[Finding]:
        if self.image is not None:
            for start in range(0, len(self.image), self.CHUNK):
                yield from self.image.findings(start, min(start + self.CHUNK, len(self.image)))
        yield from self.other

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Findings | list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Findings({self.image_count} image findings, {len(self.other)} others)"

    def json_chunks(
        self, size: int = CHUNK, *, copy: bool = True
    ) -> Iterator[list[dict[str, Any]]]:
        """``Finding.to_json()`` of every finding, in order, ``size`` at a time (without
        ``copy``, image rows share the findings' own lists: see
        :meth:`ImageFindings.json_rows`)."""
        if self.image is not None:
            for start in range(0, len(self.image), size):
                stop = min(start + size, len(self.image))
                yield self.image.json_rows(start, stop, copy=copy)
        for start in range(0, len(self.other), size):
            yield [f.to_json() for f in self.other[start : start + size]]

    def codes(self) -> list[str]:
        """The rule code of every finding, in order."""
        image = self.image.codes() if self.image is not None else []
        return image + [f.code for f in self.other]

    def counts(self) -> dict[str, int]:
        """Findings per rule code."""
        return dict(sorted(Counter(self.codes()).items()))

    def severities(self) -> set[Severity]:
        out = {f.severity for f in self.other}
        if self.image is not None:
            out |= {self.image.rules[i].severity for i in np.unique(self.image.rule).tolist()}
        return out


# --------------------------------------------------------------------------- times


def iso_strings(nanoseconds: np.ndarray) -> list[str | None]:
    """ISO 8601 UTC strings (``2026-11-28T03:00:00Z``, whole seconds) of int64
    nanoseconds since the epoch; None for :data:`NAT`.

    Formats each distinct day once and each second of the day from a table, then joins
    them with numpy's object add: several times faster than ``np.datetime_as_string``.
    """
    values = np.asarray(nanoseconds, dtype=np.int64)
    nat = values == NAT
    seconds = np.floor_divide(values, 1_000_000_000)
    seconds[nat] = 0
    days, second_of_day = np.divmod(seconds, 86400)
    unique_days, inverse = np.unique(days, return_inverse=True)
    day_text = np.datetime_as_string(unique_days.astype("datetime64[D]")).astype(object)
    text = day_text[inverse] + _clock_texts(second_of_day, "Z")
    text[nat] = None
    return list(text.tolist())


@functools.cache
def _triples(template: str = "{:03d}") -> np.ndarray:
    """``template.format(n)`` for n = 0…999, as an object array to index with numbers."""
    table = np.empty(1000, dtype=object)
    table[:] = [template.format(n) for n in range(1000)]
    return table


CLOCK_TABLE_FROM = 20_000
"""Times a process formats (per suffix) before it makes the 86,400-entry table."""

_clock_tables: dict[str, np.ndarray] = {}
_clock_formatted: dict[str, int] = {}


def _clock_texts(second_of_day: np.ndarray, suffix: str = "") -> np.ndarray:
    """``T%H:%M:%S`` and ``suffix`` for each second of the day, as an object array.

    A process that formats only a few thousand times (a small scan) formats each
    distinct second once; once it has formatted :data:`CLOCK_TABLE_FROM` (in one call or
    over many, as the exports' chunks do), it makes a table of all 86,400 and reads every
    later time from it."""
    table = _clock_tables.get(suffix)
    if table is None:
        _clock_formatted[suffix] = _clock_formatted.get(suffix, 0) + len(second_of_day)
        if _clock_formatted[suffix] >= CLOCK_TABLE_FROM:
            table = _clock_tables[suffix] = _clock_table(suffix)
    if table is not None:
        return table[second_of_day]  # type: ignore[no-any-return]
    unique, inverse = np.unique(second_of_day, return_inverse=True)
    texts = np.empty(len(unique), dtype=object)
    texts[:] = [
        f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{suffix}" for s in unique.tolist()
    ]
    return texts[inverse]  # type: ignore[no-any-return]


def _clock_table(suffix: str) -> np.ndarray:
    table = np.empty(86400, dtype=object)
    table[:] = [
        f"T{h:02d}:{m:02d}:{s:02d}{suffix}" for h in range(24) for m in range(60) for s in range(60)
    ]
    return table
