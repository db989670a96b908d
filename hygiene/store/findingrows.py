"""Findings as rows of the ``findings`` table, and back.

Since migration 0006 the table holds two kinds of row:

- **Image totals**: the image findings (those naming an image) of one run, counted per
  rule and repository: one row per (code, rule, severity, fix safety, account, region,
  repository, namespace) with ``images``, how many image findings, and ``bytes``, the
  sum of their bytes; no digests, no message, no ``data`` (both NULL). The per-image
  detail lives in the scan document and the CSV exports; nothing in the job reads the
  table back (the reports' trends come from the runs' summaries), and one row per image
  was ~900,000 rows a night at a million images. :func:`image_totals` computes them
  from the columnar findings (:class:`~hygiene.findingtable.Findings`) with numpy and
  pandas' hashing, never a Python step per finding.
- **Findings**: every other finding (repository and namespace findings: compliance,
  naming, ...) stays one row, ``images`` NULL: its scalar fields as columns (code, rule,
  severity, fix safety, account, region, repository, namespace, bytes, message) and the
  rest of :meth:`~hygiene.model.Finding.to_json` in ``data`` (``fix``, ``tags``,
  ``details``, ``message_template``, ``message_params``; migration 0005).
  :func:`finding_json` puts such a row back together as the ``to_json()`` dict.

``tests/store/test_findingrows.py`` checks both against the obvious path (a loop over
``Finding`` objects).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

import orjson

from hygiene.model import Finding

TOTAL_KEYS = (
    "code", "rule", "severity", "fix_safety", "account", "region", "repository",
    "namespace", "images", "bytes",
)  # fmt: skip
"""The keys of an image total (:func:`image_totals`, ``Store.findings``), in order; each
is a column of the ``findings`` table."""

GROUP_KEYS = TOTAL_KEYS[:-2]
"""What the image findings of one total share (all but ``images`` and ``bytes``)."""

COLUMNS = (
    "code", "rule", "severity", "fix_safety", "account", "region", "repository",
    "namespace", "bytes", "message",
)  # fmt: skip
"""The ``findings`` columns that hold a field of a (non-image) finding, named as the
field; ``data`` holds the rest."""

TABLE_COLUMNS = (*COLUMNS[:-2], "images", "bytes", "message", "data")
"""What :func:`row_chunks` gives, column by column (besides ``run_id``)."""

ORDER = tuple(f.name for f in dataclasses.fields(Finding))
"""The keys of ``Finding.to_json()``, in its order."""

DATA_KEYS = tuple(k for k in ORDER if k not in COLUMNS and k != "image_digest")
"""What ``data`` holds: ``fix``, ``tags``, ``details``, ``message_template``,
``message_params``."""

CHUNK = 20_000


def data_of(finding: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` of a ``Finding.to_json()`` dict: everything the columns do not hold (its
    ``image_digest`` is None: a finding naming an image is counted in a total instead)."""
    return {k: v for k, v in finding.items() if k not in COLUMNS and k != "image_digest"}


def finding_json(columns: Mapping[str, Any], data: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``Finding.to_json()`` dict of a stored finding row: its columns
    (:data:`COLUMNS`, by name) and its ``data``, in ``to_json()``'s key order. Such a row
    names no image (``image_digest`` None)."""
    merged: dict[str, Any] = {k: columns[k] for k in COLUMNS}
    merged["image_digest"] = None
    if data:
        merged.update(data)
    out = {k: merged.pop(k) for k in ORDER if k in merged}
    out.update(merged)  # keys a later Finding may add
    return out


def total_json(columns: Mapping[str, Any]) -> dict[str, Any]:
    """An image total as ``Store.findings`` gives it: :data:`TOTAL_KEYS`, in order."""
    return {k: columns[k] for k in TOTAL_KEYS}


def row_chunks(findings: Iterable[Finding], size: int | None = None) -> Iterator[list[list[Any]]]:
    """The rows of ``findings`` as columns (:data:`TABLE_COLUMNS`, values as the
    database driver takes them: text, int, None; ``data`` JSON text), ``size``
    (:data:`CHUNK`) rows at a time: first the image totals (:func:`image_totals`), then
    one row per other finding, in order."""
    size = size or CHUNK
    others: Sequence[Finding]
    if getattr(findings, "image", None) is not None:
        others = findings.other  # type: ignore[attr-defined]
    else:
        findings = others = list(findings)  # read twice: totals, then the others
    totals = image_totals(findings)
    count = len(totals[0])
    for start in range(0, count, size):
        part = [column[start : start + size] for column in totals]
        n = len(part[0])
        yield [*part, [None] * n, [None] * n]  # message, data
    iterator = (f for f in others if f.image_digest is None)
    while batch := list(islice(iterator, size)):
        yield finding_columns(batch)


def finding_columns(findings: Sequence[Finding]) -> list[list[Any]]:
    """:data:`TABLE_COLUMNS` of findings that name no image, one row each: what
    ``to_json()`` gives (the enums' values; ``data`` the :data:`DATA_KEYS`, in its
    order), read from the attributes without ``to_json()``'s deep copy (``asdict``):
    the JSON text is the same, nested dataclasses written as ``asdict`` writes them
    (:func:`_json_default`)."""
    columns: list[list[Any]] = [[getattr(f, name) for f in findings] for name in COLUMNS[:-2]]
    columns[2] = [severity.value for severity in columns[2]]
    columns[3] = [fix_safety.value for fix_safety in columns[3]]
    columns.append([None] * len(findings))  # images
    columns.append([int(f.bytes) for f in findings])
    columns.append([f.message for f in findings])
    columns.append([_json_text(_data(f)) for f in findings])
    return columns


def _data(finding: Finding) -> dict[str, Any]:
    """``data_of(finding.to_json())`` without the copy: the same keys, in order, the
    same values (``tags`` a list, as ``to_json()`` makes it)."""
    data = {key: getattr(finding, key) for key in DATA_KEYS}
    data["tags"] = list(finding.tags)
    return data


def image_totals(findings: Iterable[Finding]) -> list[list[Any]]:
    """The image findings of ``findings`` (those with an ``image_digest``) counted per
    :data:`GROUP_KEYS`: one list per name of :data:`TOTAL_KEYS`, a total per position,
    in the order of each total's first finding.

    A columnar :class:`~hygiene.findingtable.Findings` is read from its columns (its
    image findings, and the image findings among its objects, the rules that only
    report), grouped with :func:`hygiene.grouping.groups`: counts and byte sums are taken
    with numpy, in whole numbers."""
    import numpy as np

    from hygiene.grouping import groups

    image = getattr(findings, "image", None)
    objects: Iterable[Finding] = findings.other if image is not None else findings  # type: ignore[attr-defined]
    loose = [f for f in objects if f.image_digest is not None]
    signatures: dict[tuple[str, str, str, str], int] = {}

    def signature(code: str, name: str, severity: Any, fix_safety: Any) -> int:
        key = (code, name, str(severity.value), str(fix_safety.value))
        return signatures.setdefault(key, len(signatures))

    rule_parts: list[Any] = []
    account: list[Any] = []
    region: list[Any] = []
    repository: list[Any] = []
    namespace: list[Any] = []
    size_parts: list[Any] = []
    if image is not None and len(image):
        of_rule = np.array(
            [signature(r.code, r.name, r.severity, r.fix_safety) for r in image.rules],
            dtype=np.int64,
        )
        rule_parts.append(of_rule[np.asarray(image.rule, dtype=np.int64)])
        account += image.account
        region += image.region
        repository += image.repository
        namespace += image.namespace
        size_parts.append(np.asarray(image.bytes, dtype=np.int64))
    if loose:
        rule_parts.append(
            np.array(
                [signature(f.code, f.rule, f.severity, f.fix_safety) for f in loose],
                dtype=np.int64,
            )
        )
        account += [f.account for f in loose]
        region += [f.region for f in loose]
        repository += [f.repository for f in loose]
        namespace += [f.namespace for f in loose]
        size_parts.append(np.array([int(f.bytes) for f in loose], dtype=np.int64))
    if not rule_parts:
        return [[] for _ in TOTAL_KEYS]
    sizes = np.concatenate(size_parts)
    texts = []
    for values in (account, region, repository, namespace):
        column = np.empty(len(values), dtype=object)
        column[:] = values  # None: its own value
        texts.append(column)
    grouped = groups(np.concatenate(rule_parts), texts)
    first = grouped.first
    totals = grouped.reduce(np.add, sizes)
    rule_of = np.concatenate(rule_parts)[first].tolist()
    rules = list(signatures)
    return [
        [rules[r][0] for r in rule_of],
        [rules[r][1] for r in rule_of],
        [rules[r][2] for r in rule_of],
        [rules[r][3] for r in rule_of],
        *(column[first].tolist() for column in texts),
        grouped.counts.tolist(),
        totals.tolist(),
    ]


def _json_text(value: Any) -> str:
    options = orjson.OPT_PASSTHROUGH_DATACLASS
    return orjson.dumps(value, default=_json_default, option=options).decode()


def _json_default(value: Any) -> Any:
    """What orjson does not write itself, as ``dataclasses.asdict`` and ``to_json()``
    give it: a dataclass (as ``asdict``: its fields, nested ones too), a mapping that
    is not a dict, a tuple inside a dataclass, numpy scalars."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return dict(value)
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):  # scalar or array
        return value.tolist()
    raise TypeError(f"not JSON: {type(value).__name__}")
