"""The findings CSV's image findings counted per rule and repository
(``report.image_findings_csv: per_repository``, the default).

A neglected registry of a million images has about 900,000 image findings: one CSV row
each is a file no one reads in a spreadsheet (and close to the 1,048,576 rows one holds).
Each rule's image findings in one repository become one row instead: how many images,
their bytes, the oldest and newest push, the latest pull and one of them as an example.
A rule that hit one image in a repository keeps that finding's own row. Every image
stays listed where someone acts on it: ``*-images.csv`` (what a deletion proposal would
delete), ``*-kept.csv`` (what a protection kept) and the scan document (every finding).

Counting is done on the engine's columns (:class:`~hygiene.findingtable.ImageFindings`)
with :mod:`hygiene.grouping`; only the findings given as rows (rules that only report)
are counted in Python, and there are few of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from hygiene.findingtable import NAT, english, iso_strings
from hygiene.grouping import groups

GROUP = ["code", "rule", "severity", "fix_safety", "account", "region", "repository", "namespace"]
"""What the image findings counted in one row share."""

EXAMPLE_DIGEST = 19  # "sha256:" and 12 hex digits, as the reports shorten digests


def total_rows(rows: Any) -> list[dict[str, Any]]:
    """The findings CSV's rows of ``rows`` (a :class:`~hygiene.report.findingrows.FindingRows`
    or finding rows): image findings counted per :data:`GROUP` (:func:`total_row`), in the
    order of each group's first finding, then every finding without an image, as it is.
    Each row has ``images``: how many image findings it stands for (None for a finding
    about no image)."""
    image = getattr(rows, "image", None)
    other: Iterable[Mapping[str, Any]] = rows.other if hasattr(rows, "other") else rows
    loose: list[Mapping[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for row in other:
        if row.get("image_digest") is None:
            rest.append({**row, "images": None})
        else:
            loose.append(row)
    out = _column_totals(image, getattr(rows, "positions", None)) if image is not None else []
    out += _row_totals(loose)
    return out + rest


def _column_totals(image: Any, positions: np.ndarray | None) -> list[dict[str, Any]]:
    """Totals of the engine's image findings (``positions``: a selection of them), grouped
    with :func:`hygiene.grouping.groups`: counts, sums, oldest and newest are numpy
    reductions over the findings sorted by group."""
    at = np.arange(len(image)) if positions is None else np.asarray(positions, dtype=np.int64)
    if not len(at):
        return []
    columns: list[Any] = []
    texts: tuple[Any, ...] = (image.account, image.region, image.repository, image.namespace)
    repo_ids = getattr(image, "repo_ids", None)
    if repo_ids is not None:  # one number per (account, region, repository): the engine's
        columns, texts = [np.asarray(repo_ids, dtype=np.int64)[at]], (image.namespace,)
    for values in texts:
        column = np.empty(len(values), dtype=object)
        column[:] = values
        columns.append(column[at] if positions is not None else column)
    # groups in order of first appearance: the rows keep the engine's order (rule,
    # repository, push time)
    grouped = groups(np.asarray(image.rule, dtype=np.int64)[at], columns)
    first = at[grouped.first]
    pushed = np.asarray(image.pushed_at, dtype=np.int64)[at]
    latest = np.iinfo(np.int64).max
    oldest = grouped.reduce(np.minimum, np.where(pushed == NAT, latest, pushed))
    oldest[oldest == latest] = NAT  # no time at all: NaT
    newest = grouped.reduce(np.maximum, pushed)  # NaT is the smallest: it never wins
    pulled = grouped.reduce(np.maximum, np.asarray(image.last_pull, dtype=np.int64)[at])
    sizes = grouped.reduce(np.add, np.asarray(image.bytes, dtype=np.int64)[at])
    times = zip(iso_strings(oldest), iso_strings(newest), iso_strings(pulled), strict=True)
    out: list[dict[str, Any]] = []
    for position, count, size, (old, new, last) in zip(
        first.tolist(), grouped.counts.tolist(), sizes.tolist(), times, strict=True
    ):
        info = image.rules[int(image.rule[position])]
        shared = {
            "code": info.code,
            "rule": info.name,
            "severity": info.severity.value,
            "fix_safety": info.fix_safety.value,
            "account": image.account[position],
            "region": image.region[position],
            "repository": image.repository[position],
            "namespace": image.namespace[position],
            "fix": info.fix,
        }
        text = english(image.message[position])
        digest = image.unit_digests[int(image.unit_offsets[position])]
        if count == 1:  # the finding's own row (its CSV columns)
            out.append(
                {
                    **shared,
                    "image_digest": digest,
                    "tags": list(image.tags[position]),
                    "images": 1,
                    "bytes": size,
                    "message": text,
                    "details": image._details(position, old, last),
                }
            )
            continue
        out.append(
            total_row(
                shared, images=count, size=size, example=(digest, text), times=(old, new, last)
            )
        )
    return out


def _row_totals(rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Totals of image findings given as rows (``Finding.to_json()``)."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(_text(row.get(k)) for k in GROUP), []).append(row)
    out: list[dict[str, Any]] = []
    for members in groups.values():
        first = members[0]
        if len(members) == 1:
            out.append({**first, "images": 1})
            continue
        details = [d if isinstance(d := m.get("details"), Mapping) else {} for m in members]

        def times(key: str, pick: Any, of: list[Any] = details) -> str | None:
            values = [str(d[key]) for d in of if d.get(key) is not None]
            return pick(values, key=_instant) if values else None

        out.append(
            total_row(
                {k: first.get(k) for k in [*GROUP, "fix"]},
                images=len(members),
                size=sum(int(m.get("bytes") or 0) for m in members),
                example=(str(first.get("image_digest")), str(first.get("message") or "")),
                times=(times("pushed_at", min), times("pushed_at", max), times("last_pull", max)),
            )
        )
    return out


def _instant(text: str) -> Any:
    """An ISO time for comparing (``…Z`` and fractions of a second compare as times, not
    as text); text that is not one compares after every time, as itself."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return (1, text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (0, moment)


def _text(value: Any) -> Any:
    """A group key's part: enums by their value, the rest as they are."""
    return getattr(value, "value", value)


def total_row(
    shared: Mapping[str, Any],
    *,
    images: int,
    size: int,
    example: tuple[str, str],
    times: tuple[str | None, str | None, str | None],
) -> dict[str, Any]:
    """One row for ``images`` image findings of one rule in one repository: what they
    share, their bytes, a message naming one of them, and in ``details`` the oldest and
    newest push, the latest pull (None: none of them was ever pulled) and that example's
    digest."""
    digest, text = example
    oldest, newest, pulled = times
    return {
        **shared,
        "image_digest": None,
        "tags": None,
        "images": images,
        "bytes": int(size),
        "message": f"{images} images, for example {digest[:EXAMPLE_DIGEST]}: {text}",
        "details": {
            "example": digest,
            "oldest_push": oldest,
            "newest_push": newest,
            "latest_pull": pulled,
        },
    }
