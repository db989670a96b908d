"""The findings of a report, without a dict per finding held in memory.

A first scan of a neglected registry has ~900,000 findings at a million images. The
report used to hold one ``Finding.to_json()`` dict for each (about 3 GiB) while its views
grouped them and its exports wrote them. :class:`FindingRows` is a read-only
``Sequence`` of those same dicts that builds them chunk by chunk when something iterates
it, from the engine's columns (:class:`hygiene.findingtable.Findings`); a report read
back from JSON (``hygiene report --from-json``) wraps its plain list the same way.

What the views count (findings per rule, per namespace, reclaimable bytes, the rules a
repository breaks) comes from :meth:`FindingRows.columns`: one column per field they
read, made from the engine's columns without building the dicts.
:mod:`tests.report.test_findingrows` checks every aggregate against the dict path.
"""

from __future__ import annotations

import itertools
import operator
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np

from hygiene.findingtable import finding_index
from hygiene.inventory import namespace_of
from hygiene.report import findingcodes

CHUNK = 20_000
MISSING: Any = object()  # a key the finding's JSON does not have


@dataclass
class FindingColumns:
    """The fields the report's views read, one list per field, in the findings' order.

    Values are those of the JSON rows (``MISSING`` where a row has no such key);
    ``scope`` holds ``(position, project, namespaces)`` for the findings whose details
    name a project or namespaces (:func:`hygiene.report.views.belongs_to`).
    """

    code: list[Any]
    rule: list[Any]
    severity: list[Any]
    fix_safety: list[Any]
    fix: list[Any]
    namespace: list[Any]
    repository: list[Any]
    account: list[Any]
    region: list[Any]
    digest: list[Any]
    bytes: list[Any]
    scope: list[tuple[int, Any, Any]]
    # finding_namespaces(self) as an object array, made on first use (each weekly
    # report compares it with its namespace)
    names: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    # the inventory row of each of the engine's image findings, which come first (the
    # root of its unit: the image whose digest the finding names), when one row is one
    # (account, region, repository, digest): the image findings' unique_digests. Their
    # images are then counted by row (:func:`reclaimable`), not by text.
    image_rows: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    # the same image findings' rule (index into rule_codes) and repository (the engine's
    # repo_id: one per account, region and repository): the views count by these
    # numbers (:mod:`hygiene.report.findingcodes`), not by text
    rule_index: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    rule_codes: list[str] = field(default_factory=list, init=False, repr=False, compare=False)
    repo_ids: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    numbers: Any = field(default=None, init=False, repr=False, compare=False)  # code_numbers

    def __len__(self) -> int:
        return len(self.code)

    def take(self, positions: list[int]) -> FindingColumns:
        """The columns of the findings at ``positions`` (ascending), in that order."""
        at = {old: new for new, old in enumerate(positions)}
        picked = [
            [values[i] for i in positions]
            for values in (self.code, self.rule, self.severity, self.fix_safety, self.fix,
                           self.namespace, self.repository, self.account, self.region,
                           self.digest, self.bytes)
        ]  # fmt: skip
        scope = [(at[k], project, names) for k, project, names in self.scope if k in at]
        taken = FindingColumns(*picked, scope=scope)  # type: ignore[misc]
        where = np.asarray(positions, dtype=np.int64)
        for name in ("image_rows", "rule_index", "repo_ids"):  # the image findings picked
            values = getattr(self, name)
            if values is not None:
                setattr(taken, name, values[where[where < len(values)]])
        taken.rule_codes = self.rule_codes
        return taken


_FIELDS = ("code", "rule", "severity", "fix_safety", "fix", "namespace", "repository",
           "account", "region", "image_digest", "bytes")  # fmt: skip


def _dict_columns(rows: Sequence[Mapping[str, Any]], offset: int = 0) -> FindingColumns:
    values = [[row.get(key, MISSING) for row in rows] for key in _FIELDS]
    if any(code is MISSING for code in values[0]):
        raise KeyError("code")  # as the views' finding["code"]
    scope = []
    for k, row in enumerate(rows):
        details = row.get("details")
        if isinstance(details, Mapping) and (details.get("project") or details.get("namespaces")):
            scope.append((offset + k, details.get("project"), details.get("namespaces")))
    return FindingColumns(*values, scope=scope)  # type: ignore[misc]


class FindingRows(Sequence[dict[str, Any]]):
    """``Finding.to_json()`` of a report's findings, built when iterated (module docstring).

    ``image`` is the engine's :class:`~hygiene.findingtable.ImageFindings` (or None),
    ``positions`` those of its entries in this selection (None: all of them, in
    order); ``other`` the remaining findings' JSON rows, which come after.
    """

    def __init__(
        self,
        image: Any = None,
        other: Sequence[Mapping[str, Any]] = (),
        positions: np.ndarray | None = None,
    ) -> None:
        self.image: Any = image if image is not None and len(image) else None
        self.positions = None if self.image is None else positions
        self.other: list[Any] = list(other)
        self._columns: FindingColumns | None = None
        # a selection's columns are taken from its source's when first read: the
        # nightly report selects each rule's findings and reads none of their columns
        self._taken: tuple[FindingColumns, np.ndarray] | None = None
        self._cache: dict[str, Any] = {}

    @classmethod
    def of(cls, findings: Any) -> FindingRows:
        """Rows of ``findings``: a :class:`FindingRows`, the engine's columnar
        ``Findings``, ``Finding`` objects or their JSON rows (not copied)."""
        if isinstance(findings, FindingRows):
            return findings
        image = getattr(findings, "image", None)
        if image is not None or hasattr(findings, "json_chunks"):
            return cls(image, [f.to_json() for f in findings.other])
        rows = findings if isinstance(findings, list) else list(findings)
        if rows and not isinstance(rows[0], Mapping):
            rows = [f.to_json() for f in rows]
        return cls(None, rows)

    # ------------------------------------------------------------------ sequence
    @property
    def image_count(self) -> int:
        if self.image is None:
            return 0
        return len(self.image) if self.positions is None else len(self.positions)

    def __len__(self) -> int:
        return self.image_count + len(self.other)

    def _image_runs(self) -> Iterator[tuple[int, int]]:
        """(start, stop) ranges of image entries in this selection, in order."""
        if self.image is None:
            return
        if self.positions is None:
            yield 0, len(self.image)
            return
        if not len(self.positions):
            return
        breaks = np.flatnonzero(np.diff(self.positions) != 1) + 1
        starts = np.insert(breaks, 0, 0)
        stops = np.append(breaks, len(self.positions))
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
            yield int(self.positions[a]), int(self.positions[b - 1]) + 1

    def chunks(self, size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
        """The rows, ``size`` (at most) at a time; nothing is kept between chunks."""
        assert size > 0
        for start, stop in self._image_runs():
            for begin in range(start, stop, size):
                yield self.image.json_rows(begin, min(begin + size, stop))
        for begin in range(0, len(self.other), size):
            yield list(self.other[begin : begin + size])

    def text_chunks(self, size: int = CHUNK) -> Iterator[Any]:
        """:meth:`chunks` for a JSON writer (:func:`hygiene.jsonout.list_items`): the
        image findings write their own text (:mod:`hygiene.findingjson`)."""
        from hygiene.findingjson import ImageRowsJson

        assert size > 0
        for start, stop in self._image_runs():
            for begin in range(start, stop, size):
                yield ImageRowsJson(self.image, begin, min(begin + size, stop))
        for begin in range(0, len(self.other), size):
            yield list(self.other[begin : begin + size])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for chunk in self.chunks():
            yield from chunk

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = finding_index(index, len(self))
        if index < self.image_count:
            assert self.image is not None
            at = index if self.positions is None else int(self.positions[index])
            return self.image.json_rows(at, at + 1)[0]
        return self.other[index - self.image_count]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FindingRows | list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FindingRows({self.image_count} image findings, {len(self.other)} others)"

    def append(self, row: Mapping[str, Any]) -> None:
        """Add a finding's JSON row at the end (a report put together by hand)."""
        self.other.append(row)
        self._columns = self._taken = None
        self._cache.clear()

    # ------------------------------------------------------------------ selection
    def select(self, mask: np.ndarray) -> FindingRows:
        """The findings where ``mask`` (one bool per finding, in order) is true."""
        mask = np.asarray(mask, dtype=bool)
        if len(mask) != len(self):
            raise ValueError("select: one flag per finding")
        count = self.image_count
        positions = np.flatnonzero(mask[:count])
        if self.positions is not None:
            positions = self.positions[positions]
        other = [row for row, keep in zip(self.other, mask[count:].tolist(), strict=True) if keep]
        picked = FindingRows(self.image, other, positions.astype(np.int64))
        if self._columns is not None:  # the selection's columns, from these when read
            picked._taken = (self._columns, np.flatnonzero(mask))
        return picked

    # ------------------------------------------------------------------ columns
    def columns(self) -> FindingColumns:
        """The views' fields as columns (computed once)."""
        if self._columns is None and self._taken is not None:
            columns, positions = self._taken
            self._columns, self._taken = columns.take(positions.tolist()), None
        if self._columns is None:
            self._columns = self._make_columns()
        return self._columns

    def cached(self, key: str, make: Any) -> Any:
        """``make(self.columns())``, computed once per selection."""
        if key not in self._cache:
            self._cache[key] = make(self.columns())
        return self._cache[key]

    def _make_columns(self) -> FindingColumns:
        other = _dict_columns(self.other, offset=self.image_count)
        image = self.image
        if image is None:
            return other
        n = len(image)
        index = np.arange(n) if self.positions is None else self.positions
        rules = image.rules
        rule = np.asarray(image.rule)[index]

        def per_rule(values: list[Any]) -> list[Any]:
            table = np.empty(len(values), dtype=object)
            table[:] = values
            return list(table[rule].tolist()) if len(rule) else []

        def pick(values: list[Any]) -> list[Any]:
            if self.positions is None:
                return list(values)
            table = np.empty(len(values), dtype=object)
            table[:] = values
            return list(table[index].tolist())

        offsets = np.asarray(image.unit_offsets)[index].tolist()
        digests = image.unit_digests
        scope = []
        details = pick(image.details)
        given = map(operator.is_not, details, itertools.repeat(None))  # most have none
        for k in np.flatnonzero(np.fromiter(given, dtype=bool, count=len(details))).tolist():
            extra = details[k]
            if isinstance(extra, Mapping) and (extra.get("project") or extra.get("namespaces")):
                scope.append((k, extra.get("project"), extra.get("namespaces")))
        columns = FindingColumns(
            code=per_rule([r.code for r in rules]),
            rule=per_rule([r.name for r in rules]),
            severity=per_rule([r.severity.value for r in rules]),
            fix_safety=per_rule([r.fix_safety.value for r in rules]),
            fix=per_rule([r.fix for r in rules]),
            namespace=pick(image.namespace),
            repository=pick(image.repository),
            account=pick(image.account),
            region=pick(image.region),
            digest=list(map(digests.__getitem__, offsets)),
            bytes=np.asarray(image.bytes)[index].tolist(),
            scope=scope,
        )
        for name in (*(f for f in _FIELDS if f != "image_digest"), "digest"):
            getattr(columns, name).extend(getattr(other, name))
        columns.scope.extend(other.scope)
        if getattr(image, "unique_digests", False) is True:
            columns.image_rows = np.asarray(image.rows, dtype=np.int64)[index]
        columns.rule_index, columns.rule_codes = rule, [r.code for r in rules]
        if getattr(image, "repo_ids", None) is not None:
            ids = np.asarray(image.repo_ids, dtype=np.int64)
            columns.repo_ids = ids if self.positions is None else ids[index]
        return columns


# --------------------------------------------------------------------------- aggregates


def _text(values: list[Any], missing: Any) -> list[str]:
    if set(map(type, values)) <= {str}:  # all text (one C loop): as they are
        return values
    return [str(missing if v is MISSING else v) for v in values]


def _value(values: list[Any], default: Any) -> list[Any]:
    if not any(map(operator.is_, values, itertools.repeat(MISSING))):  # none missing
        return values
    return [default if v is MISSING else v for v in values]


def code_numbers(columns: FindingColumns) -> tuple[np.ndarray, list[str]] | None:
    """Each finding's code as a number and the codes in order of first appearance
    (``pd.factorize``), from the image findings' rule index; None when the columns have
    none or a code is not text (computed once)."""
    if columns.rule_index is None:
        return None
    if columns.numbers is None:
        head = len(columns.rule_index)
        numbered = findingcodes.code_numbers(
            columns.rule_index, columns.rule_codes, columns.code[head:]
        )
        columns.numbers = False if numbered is None else numbered
    return columns.numbers or None


def _named(digest: list[Any], head: int) -> np.ndarray:
    """``bool(d) and d is not MISSING`` of each digest; the first ``head`` are the
    engine's image findings' (their units' digests: never MISSING), checked in one C
    loop when they are all given."""
    n = len(digest)
    if head and all(itertools.islice(digest, head)):
        keep = np.ones(n, dtype=bool)
        keep[head:] = _named(digest[head:], 0)
        return keep
    keep = np.fromiter(map(bool, digest), dtype=bool, count=n)
    keep &= ~np.fromiter(map(operator.is_, digest, itertools.repeat(MISSING)), dtype=bool, count=n)
    return keep


def finding_namespaces(columns: FindingColumns) -> list[str | None]:
    """:func:`hygiene.report.views.finding_namespace` of every finding."""
    out: list[str | None] = []
    for namespace, repository in zip(columns.namespace, columns.repository, strict=True):
        if namespace is not MISSING and namespace:
            out.append(namespace)
        elif repository is not MISSING and repository:
            out.append(namespace_of(repository))
        else:
            out.append(None)
    return out


def belongs_mask(columns: FindingColumns, namespace: str) -> np.ndarray:
    """Which findings :func:`hygiene.report.views.belongs_to` ``namespace``."""
    if columns.names is None:
        columns.names = np.empty(len(columns), dtype=object)
        columns.names[:] = finding_namespaces(columns)
    mask = columns.names == namespace
    for position, project, namespaces in columns.scope:
        if project == namespace or namespace in (namespaces or []):
            mask[position] = True
    return np.asarray(mask, dtype=bool)


def reclaimable(columns: FindingColumns) -> dict[Any, int]:
    """:func:`hygiene.report.views.reclaimable_bytes` of all findings (key None) and of
    each rule's findings (keyed by code): every flagged image (account, region,
    repository, digest as text) counted once, at the largest size a finding gave it."""
    import pandas as pd

    from hygiene.grouping import combined

    head = 0 if columns.rule_index is None else len(columns.rule_index)
    keep = _named(columns.digest, head)
    numbered = code_numbers(columns)
    if numbered is not None:
        codes, names = numbered
    else:
        codes, distinct = pd.factorize(np.asarray(columns.code, dtype=object))
        names = distinct.tolist()
    out: dict[Any, int] = dict.fromkeys(names, 0)
    out[None] = 0
    if not keep.any():
        return out
    rows = columns.image_rows
    if rows is not None and not keep[len(rows) :].any():
        # only the engine's image findings name images: one inventory row, one image
        key, _ = pd.factorize(rows[keep[: len(rows)]])
    else:
        key = combined(
            np.zeros(int(keep.sum()), dtype=np.int64),
            (np.asarray(values, dtype=object)[keep]
             for values in (columns.account, columns.region, columns.repository, columns.digest)),
            _text_codes,
        )  # fmt: skip
    # a negative size (a hand-made file) counts 0 bytes, as the rows' reclaimable_bytes
    # counts it: it would lower every total it is added to
    size, kept = np.maximum(_sizes(columns.bytes)[keep], 0), codes[keep]
    if size.dtype == np.int64 and kept.min() >= 0:  # int64 sizes, every code numbered
        out[None], per_code = findingcodes.largest_sums(size, key, kept, len(names))
        out.update(zip(names, per_code.tolist(), strict=True))
        return out
    image = pd.Series(size).groupby(key, sort=False).max()
    out[None] = int(image.sum())
    per_code = pd.Series(size).groupby([codes[keep], key], sort=False).max()
    for code, total in per_code.groupby(level=0, sort=False).sum().items():
        out[names[code]] = int(total)
    return out


def _sizes(values: list[Any]) -> np.ndarray:
    """``np.asarray([int(b or 0) if b is not MISSING else 0 for b in values])``: in one
    C loop when every value is an integer that int64 holds."""
    if values and set(map(type, values)) <= {int}:
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:  # an integer int64 does not hold: numpy keeps objects
            pass
    return np.asarray([int(b or 0) if b is not MISSING else 0 for b in values])


def _text_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes of ``str(value)`` (``"None"`` for a missing value) and how many there are:
    text is numbered as it is; a column with anything else is converted value by value."""
    import pandas as pd

    codes, distinct = pd.factorize(values, use_na_sentinel=False)
    uniques = distinct.tolist()
    if all(type(v) is str for v in uniques):
        return codes, len(uniques)
    # pandas takes None and NaN for one missing value (its unique is NaN: "nan", where
    # str(None) is "None"): the texts of the values themselves
    texts = np.empty(len(values), dtype=object)
    texts[:] = [str(None if v is MISSING else v) for v in values.tolist()]
    codes, names = pd.factorize(texts, use_na_sentinel=False)
    return codes, len(names)


def codes_in_order(columns: FindingColumns) -> dict[str, int]:
    """Findings per code, codes in order of first appearance."""
    numbered = code_numbers(columns)
    if numbered is not None:
        numbers, names = numbered
        return dict(zip(names, np.bincount(numbers, minlength=len(names)).tolist(), strict=True))
    return dict(Counter(columns.code))  # a Counter keeps the order of first appearance


def rule_groups(columns: FindingColumns, sizes: Mapping[Any, int]) -> list[dict[str, Any]]:
    """:func:`hygiene.report.views.findings_by_rule` without each group's findings
    (the caller adds them and sorts them), in order of first appearance; ``sizes`` is
    :func:`reclaimable` of the same columns."""
    code = columns.code
    numbered = code_numbers(columns)
    if numbered is not None:
        numbers, names = numbered
        counts = np.bincount(numbers, minlength=len(names)).tolist()
        firsts = np.full(len(names), len(numbers), dtype=np.int64)
        np.minimum.at(firsts, numbers, np.arange(len(numbers), dtype=np.int64))
        found: Iterable[tuple[Any, int, int]] = zip(names, counts, firsts.tolist(), strict=True)
    else:
        # each code's first finding: the dict keeps the last value given for a key, and
        # the positions are given from the last to the first
        first = dict(zip(reversed(code), range(len(code) - 1, -1, -1), strict=True))
        found = ((name, count, first[name]) for name, count in Counter(code).items())
    groups = []
    for name, count, position in found:  # in order of first appearance
        rule, severity = columns.rule[position], columns.severity[position]
        safety = columns.fix_safety[position]
        groups.append(
            {
                "code": name,
                "rule": "" if rule is MISSING else rule,
                "severity": "info" if severity is MISSING else severity,
                "fix_safety": "manual" if safety is MISSING else safety,
                "count": count,
                "bytes": sizes[name],
            }
        )
    return groups


def by_namespace(columns: FindingColumns) -> dict[str, dict[str, int]]:
    """Findings per namespace ("" for none) and severity."""
    import pandas as pd

    counts: dict[str, dict[str, int]] = {}
    names = [namespace or "" for namespace in finding_namespaces(columns)]
    severities = _value(columns.severity, "info")
    if not names:
        return counts
    where, places = pd.factorize(np.asarray(names, dtype=object), use_na_sentinel=False)
    what, kinds = pd.factorize(np.asarray(severities, dtype=object), use_na_sentinel=False)
    pairs = np.bincount(where * len(kinds) + what, minlength=len(places) * len(kinds))
    for (place, kind), count in zip(
        ((p, k) for p in places.tolist() for k in kinds.tolist()), pairs.tolist(), strict=True
    ):
        if count:
            counts.setdefault(place, {})[kind] = count
    return counts


def last_by_code(columns: FindingColumns, field: str) -> dict[str, str]:
    """``{code: str(value)}``, the last finding of each code winning (as a dict
    comprehension over the rows does); a missing value counts as ""."""
    return dict(zip(columns.code, _text(getattr(columns, field), ""), strict=True))


def broken_rules(columns: FindingColumns) -> dict[tuple[str, str, str], dict[str, str]]:
    """(account, region, repository) → {code: severity} of the rules it breaks."""
    broken: dict[tuple[str, str, str], dict[str, str]] = {}
    head = 0
    if columns.repo_ids is not None and columns.rule_index is not None:
        # the image findings by (repository id, rule): one entry per pair
        head = len(columns.rule_index)
        accounts, regions, repositories = columns.account, columns.region, columns.repository

        def entry(k: int) -> tuple[Any, str, str] | None:
            if repositories[k] is MISSING or not repositories[k]:
                return None
            where, severity = (accounts[k], regions[k]), columns.severity[k]
            key = ("" if where[0] is MISSING else str(where[0]),
                   "" if where[1] is MISSING else str(where[1]), repositories[k])  # fmt: skip
            return key, columns.code[k], "info" if severity is MISSING else severity

        findingcodes.broken_pairs(columns.repo_ids, columns.rule_index, entry, broken)
    for account, region, repository, code, severity in zip(
        _text(columns.account[head:], ""),
        _text(columns.region[head:], ""),
        columns.repository[head:],
        columns.code[head:],
        _value(columns.severity[head:], "info"),
        strict=True,
    ):
        if repository is not MISSING and repository:
            broken.setdefault((account, region, repository), {})[code] = severity
    return broken


def present(values: list[Any]) -> set[str]:
    """The distinct truthy values, as text (``places._values``)."""
    return {str(v) for v in set(values) if v is not MISSING and v}
