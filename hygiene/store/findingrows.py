"""A finding as a row of the ``findings`` table, and back.

A row holds the finding's scalar fields as columns (code, rule, severity, fix safety,
account, region, repository, namespace, image digest, bytes, message) and the rest of
:meth:`~hygiene.model.Finding.to_json` in ``data``: ``fix``, ``tags``, ``details``,
``message_template`` and ``message_params``. Since migration 0005 ``data`` no longer
repeats the columns (a nightly run of a million-image registry stores ~900,000
findings: the repeated columns were a third of the table and of the time spent writing
it). :func:`finding_json` puts a row back together as the ``to_json()`` dict.

Columnar findings (:class:`~hygiene.findingtable.Findings`) give their image findings'
columns here without a dict per finding (:func:`image_columns`): each column is read
from the :class:`~hygiene.findingtable.ImageFindings` columns, and ``data`` is written
by orjson straight from them. ``tests/store/test_findingrows.py`` checks both against
``Finding.to_json()``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

import orjson

from hygiene.messages import Message
from hygiene.model import Finding

COLUMNS = (
    "code", "rule", "severity", "fix_safety", "account", "region", "repository",
    "namespace", "image_digest", "bytes", "message",
)  # fmt: skip
"""The ``findings`` columns that hold a field of the finding (besides ``run_id``, ``id``
and ``data``), named as the field."""

ORDER = tuple(f.name for f in dataclasses.fields(Finding))
"""The keys of ``Finding.to_json()``, in its order."""

DATA_KEYS = tuple(k for k in ORDER if k not in COLUMNS)
"""What ``data`` holds: ``fix``, ``tags``, ``details``, ``message_template``,
``message_params``."""

CHUNK = 20_000


def data_of(finding: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` of a ``Finding.to_json()`` dict: everything the columns do not hold."""
    return {k: v for k, v in finding.items() if k not in COLUMNS}


def finding_json(columns: Mapping[str, Any], data: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``Finding.to_json()`` dict of a stored row: its columns (:data:`COLUMNS`, by
    name) and its ``data``, in ``to_json()``'s key order. A row written before migration
    0005 kept every field in ``data`` too; what ``data`` holds wins."""
    merged = {k: columns[k] for k in COLUMNS}
    if data:
        merged.update(data)
    out = {k: merged.pop(k) for k in ORDER if k in merged}
    out.update(merged)  # keys a later Finding may add
    return out


def column_chunks(
    findings: Iterable[Finding], size: int | None = None
) -> Iterator[list[list[Any]]]:
    """The rows of ``findings`` as columns, ``size`` (:data:`CHUNK`) rows at a time: one
    list per name of :data:`COLUMNS` (values as the database holds them: text, int,
    None), then ``data`` as JSON text."""
    size = size or CHUNK
    image = getattr(findings, "image", None)
    if image is not None:
        for start in range(0, len(image), size):
            yield image_columns(image, start, min(start + size, len(image)))
    others: Iterable[Finding] = findings.other if image is not None else findings  # type: ignore[attr-defined]
    iterator = iter(others)
    while batch := list(islice(iterator, size)):
        yield object_columns(batch)


def object_columns(findings: Sequence[Finding]) -> list[list[Any]]:
    """:func:`column_chunks` of plain :class:`~hygiene.model.Finding` objects."""
    rows = [f.to_json() for f in findings]
    columns: list[list[Any]] = [[row[name] for row in rows] for name in COLUMNS]
    columns[COLUMNS.index("bytes")] = [int(row["bytes"]) for row in rows]
    columns.append([_json_text(data_of(row)) for row in rows])
    return columns


def image_columns(image: Any, start: int, stop: int) -> list[list[Any]]:
    """:func:`column_chunks` of entries ``start:stop`` of an
    :class:`~hygiene.findingtable.ImageFindings`, read from its columns: what
    ``ImageFindings.json_rows`` gives, without a dict per finding."""
    import numpy as np

    from hygiene.findingtable import iso_strings

    rules = image.rules
    rule = image.rule[start:stop]

    def per_rule(values: list[Any]) -> list[Any]:
        table = np.empty(len(values), dtype=object)
        table[:] = values
        return list(table[rule].tolist())

    offsets = image.unit_offsets[start : stop + 1].tolist()
    digests = image.unit_digests
    n = stop - start
    image_digest = [digests[b] for b in offsets[:-1]] if n else []
    # data: {"fix": …, "tags": …, "details": …, "message_template": …, "message_params": …}
    fixes = per_rule([orjson.dumps(r.fix) for r in rules])
    data: list[str] = []
    append = data.append
    dumps = orjson.dumps
    for fix, tags, message, pushed, pulled, also, extra, begin, end in zip(
        fixes,
        image.tags[start:stop],
        image.message[start:stop],
        iso_strings(image.pushed_at[start:stop]),
        iso_strings(image.last_pull[start:stop]),
        image.also[start:stop],
        image.details[start:stop],
        offsets[:-1],
        offsets[1:],
        strict=True,
    ):
        details: dict[str, Any] = {
            "unit": digests[begin:end],
            "pushed_at": pushed,
            "last_pull": pulled,
        }
        if also is not None:
            details["also"] = also
        if extra is not None and isinstance(extra, dict):
            details.update(extra)
        if isinstance(message, Message):
            template, params = message.template, message.params
        else:
            template, params = "", {}
        append(
            (
                b'{"fix":'
                + fix
                + b',"tags":'
                + dumps(tags if type(tags) is list else list(tags))
                + b',"details":'
                + dumps(details, default=_json_default)
                + b',"message_template":'
                + dumps(template)
                + b',"message_params":'
                + dumps(params, default=_json_default)
                + b"}"
            ).decode()
        )
    return [
        per_rule([r.code for r in rules]),
        per_rule([r.name for r in rules]),
        per_rule([r.severity.value for r in rules]),
        per_rule([r.fix_safety.value for r in rules]),
        image.account[start:stop],
        image.region[start:stop],
        image.repository[start:stop],
        image.namespace[start:stop],
        image_digest,
        image.bytes[start:stop].tolist(),
        image.texts()[start:stop],
        data,
    ]


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=_json_default).decode()


def _json_default(value: Any) -> Any:
    """What orjson does not write itself, as ``dataclasses.asdict`` and ``to_json()``
    give it: a mapping that is not a dict, a tuple inside a dataclass, numpy scalars."""
    if isinstance(value, Mapping):
        return dict(value)
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):  # scalar or array
        return value.tolist()
    raise TypeError(f"not JSON: {type(value).__name__}")
