"""The nightly views' counts from numbers: the engine's image findings by rule index and
repository id instead of their text, one finding at a time.

At a million images a first scan has ~900,000 image findings. Their rule (an index into
the engine's rules) and their repository (the engine's ``repo_id``: one number per
(account, region, repository)) are numbers already; the views used to number each
finding's code and repository text again (hashing 900,000 strings, several times).
:mod:`hygiene.report.findingrows` calls these when its columns carry those numbers, and
its own text path otherwise; :mod:`tests.report.test_findingcodes` checks each against
that text path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

_LOWEST = np.iinfo(np.int64).min


def code_numbers(
    rule_index: np.ndarray, rule_codes: Sequence[str], other_codes: Sequence[Any]
) -> tuple[np.ndarray, list[str]] | None:
    """``pd.factorize`` of every finding's code: the image findings' (``rule_codes`` of
    their ``rule_index``), then ``other_codes``; each finding's number and the codes in
    order of first appearance. None unless every code is text (``str`` itself)."""
    import pandas as pd

    if not set(map(type, rule_codes)) | set(map(type, other_codes)) <= {str}:
        return None
    other = np.asarray(other_codes, dtype=object)
    other_numbers, other_names = pd.factorize(other) if len(other) else (np.empty(0), [])
    names = np.asarray([*rule_codes, *list(other_names)], dtype=object)
    same, distinct = pd.factorize(names)  # one number per code, whichever rules give it
    raw = np.concatenate(
        [np.asarray(rule_index, dtype=np.int64), np.asarray(other_numbers, dtype=np.int64)
         + len(rule_codes)]
    )  # fmt: skip
    numbers, first = pd.factorize(same[raw]) if len(raw) else (np.empty(0, np.int64), raw)
    return np.asarray(numbers, dtype=np.int64), distinct[first].tolist()


def largest_sums(
    size: np.ndarray, key: np.ndarray, code: np.ndarray, codes: int
) -> tuple[int, np.ndarray]:
    """``size`` (int64) counted once per ``key``, at its largest: the sum over the keys,
    and for each of the ``codes`` numbers the same sum over its own entries (``code``):
    what ``pd.Series(size).groupby(key).max().sum()`` and the same per code give."""
    import pandas as pd

    group, keys = pd.factorize(key)
    largest = np.full(len(keys), _LOWEST, dtype=np.int64)
    np.maximum.at(largest, group, size)
    pair, pairs = pd.factorize(np.asarray(code, dtype=np.int64) * max(len(keys), 1) + group)
    per_pair = np.full(len(pairs), _LOWEST, dtype=np.int64)
    np.maximum.at(per_pair, pair, size)
    per_code = np.zeros(codes, dtype=np.int64)
    np.add.at(per_code, np.asarray(pairs, dtype=np.int64) // max(len(keys), 1), per_pair)
    return int(largest.sum()), per_code


def broken_pairs(
    repo_ids: np.ndarray,
    rule_index: np.ndarray,
    entry: Callable[[int], tuple[Any, str, str] | None],
    broken: dict[Any, dict[str, str]],
) -> None:
    """Add the image findings' rules to ``broken`` (key → {code: severity}) as one
    ``broken.setdefault(key, {})[code] = severity`` per finding, in order, would:
    ``entry(position)`` gives a finding's (key, code, severity), None for a finding
    without a repository, and is the same for the findings of one (``repo_ids``,
    ``rule_index``) pair. One call per pair, not per finding: keys in order of their
    first finding, codes in order of their first finding of that key, the severity of
    the last."""
    import pandas as pd

    n = len(rule_index)
    if not n:
        return
    rules = int(np.max(rule_index)) + 1
    pair, _ = pd.factorize(np.asarray(repo_ids, dtype=np.int64) * rules + rule_index)
    count = int(pair.max()) + 1
    positions = np.arange(n, dtype=np.int64)
    first = np.full(count, n, dtype=np.int64)
    np.minimum.at(first, pair, positions)
    last = np.full(count, -1, dtype=np.int64)
    np.maximum.at(last, pair, positions)
    # the pairs' numbers follow their first findings: keys and codes go in in that order
    found = list(map(entry, first.tolist()))  # a pair's findings share key, code, severity
    for pair_entry in found:
        if pair_entry is not None:
            broken.setdefault(pair_entry[0], {}).setdefault(pair_entry[1], pair_entry[2])
    for at in np.argsort(last, kind="stable").tolist():  # the last finding sets the value
        pair_entry = found[at]
        if pair_entry is not None:
            broken[pair_entry[0]][pair_entry[1]] = pair_entry[2]
