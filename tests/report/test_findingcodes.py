"""The nightly views counted from numbers (``hygiene.report.findingcodes``): the engine's
image findings by rule index and repository id give what the text path gives, in the
same order, on generated findings where codes, repositories and text keys repeat."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.rules import bench_config, synthetic_inventory
from hygiene.findingtable import ImageFindings, RuleInfo
from hygiene.messages import Message
from hygiene.model import FixSafety, Severity
from hygiene.report import findingcodes, views
from hygiene.report.findingrows import (
    FindingRows,
    broken_rules,
    code_numbers,
    codes_in_order,
    reclaimable,
    rule_groups,
)
from hygiene.report.findingtotals import total_rows
from hygiene.rules import evaluate
from tests.builders import NOW
from tests.conftest import examples
from tests.report.test_findingrows import check_rows, old_by_code, synthetic_rows

SETTINGS = settings(
    max_examples=examples(80),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CODES = st.sampled_from(["IM001", "IM002", "RP001", "XX9"])
SMALL = st.sampled_from(["", "a", "b", "team/app"])


def sequential_broken(findings: Sequence[Mapping[str, Any]]) -> dict[Any, dict[str, Any]]:
    """The text path, one finding at a time (``views.compliance_scores`` before)."""
    broken: dict[Any, dict[str, Any]] = {}
    for finding in findings:
        if finding.get("repository"):
            key = (str(finding.get("account", "")), str(finding.get("region", "")),
                   finding["repository"])  # fmt: skip
            broken.setdefault(key, {})[finding["code"]] = finding.get("severity", "info")
    return broken


def ordered(value: Any) -> Any:
    """A dict's items, recursively: equal only in the same order."""
    if isinstance(value, dict):
        return [(k, ordered(v)) for k, v in value.items()]
    return value


@st.composite
def rows_with_numbers(draw: Any) -> FindingRows:
    """Image findings with repository ids (two ids may share a text key, as a missing
    value and its text would) and other findings as rows: codes, severities and keys
    repeat across rules, ids and the two parts."""
    rules = [
        RuleInfo(draw(CODES), "rule", draw(st.sampled_from(Severity)), "fix", FixSafety.SAFE)
        for _ in range(draw(st.integers(1, 4)))
    ]
    repositories = draw(st.lists(st.tuples(SMALL, SMALL, SMALL), min_size=1, max_size=4))
    n = draw(st.integers(0, 30))
    repo = [draw(st.integers(0, len(repositories) - 1)) for _ in range(n)]
    where = [repositories[r] for r in repo]
    digests = [draw(st.sampled_from(["", "sha256:a", "sha256:b", "sha256:c"])) for _ in range(n)]
    image = ImageFindings(
        rules=rules,
        rule=np.array([draw(st.integers(0, len(rules) - 1)) for _ in range(n)], dtype=np.int64),
        # one inventory row per image (account, region, repository, digest), as the
        # engine's rows are when digests are unique
        rows=np.asarray(
            pd.factorize(
                pd.Series([(*w, d) for w, d in zip(where, digests, strict=True)], dtype=object)
            )[0],
            dtype=np.int64,
        ),
        account=[w[0] for w in where],
        region=[w[1] for w in where],
        repository=[w[2] for w in where],
        namespace=[None] * n,
        tags=[[] for _ in range(n)],
        message=[Message("m", {}) for _ in range(n)],
        unit_offsets=np.arange(n + 1, dtype=np.int64),
        unit_digests=digests,
        unit_rows=np.arange(n, dtype=np.int64),
        bytes=np.array([draw(st.integers(0, 2**40)) for _ in range(n)], dtype=np.int64),
        pushed_at=np.zeros(n, dtype=np.int64),
        last_pull=np.zeros(n, dtype=np.int64),
        details=[None] * n,
        also=[None] * n,
        unique_digests=draw(st.booleans()),
        repo_ids=np.array(repo, dtype=np.int64),
    )
    other = [
        {
            "code": draw(CODES),
            **draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "severity": st.sampled_from(["error", "info", "warning"]),
                        "repository": SMALL | st.none(),
                        "account": SMALL | st.none(),
                        "region": SMALL,
                        "image_digest": st.sampled_from(["", "sha256:a", "sha256:z"]) | st.none(),
                        "bytes": st.integers(0, 2**40) | st.none(),
                    },
                )
            ),
        }
        for _ in range(draw(st.integers(0, 6)))
    ]
    return FindingRows(image, other)


@SETTINGS
@given(rows_with_numbers())
def test_views_from_numbers_equal_the_text_path_in_order(rows: FindingRows) -> None:
    plain = list(rows)
    columns = rows.columns()
    if rows.image is not None:  # the numbers are there: the fast paths are taken
        assert columns.repo_ids is not None and code_numbers(columns) is not None
    assert ordered(broken_rules(columns)) == ordered(sequential_broken(plain))
    assert list(codes_in_order(columns).items()) == list(old_by_code(plain).items())
    sizes = reclaimable(columns)
    text = FindingRows(None, plain).columns()  # the same findings without numbers
    assert text.rule_index is None and code_numbers(text) is None
    assert list(sizes.items()) == list(reclaimable(text).items())
    assert rule_groups(columns, sizes) == rule_groups(text, sizes)
    assert views.reclaimable_bytes(rows) == views.reclaimable_bytes(plain)
    by_rule, expected = views.findings_by_rule(rows), views.findings_by_rule(plain)
    assert [{**g, "findings": list(g["findings"])} for g in by_rule] == expected
    for mask in (np.arange(len(rows)) % 2 == 0, np.arange(len(rows)) >= len(rows) // 3):
        picked = rows.select(mask)
        taken = picked.columns()
        if picked.image_count:  # the selection keeps the numbers of its image findings
            assert taken.repo_ids is not None and len(taken.repo_ids) == picked.image_count
            assert code_numbers(taken) is not None
        wanted = [f for f, keep in zip(plain, mask.tolist(), strict=True) if keep]
        assert ordered(broken_rules(taken)) == ordered(sequential_broken(wanted))
        fresh = FindingRows(picked.image, picked.other, picked.positions).columns()
        assert ordered(broken_rules(fresh)) == ordered(sequential_broken(wanted))
        assert list(codes_in_order(taken).items()) == list(old_by_code(wanted).items())
        assert views.reclaimable_bytes(picked) == views.reclaimable_bytes(wanted)


def test_synthetic_registry_takes_the_numbers_and_agrees() -> None:
    rows = synthetic_rows()
    columns = rows.columns()
    assert columns.repo_ids is not None and columns.rule_index is not None
    assert code_numbers(columns) is not None
    check_rows(rows)
    plain = list(rows)
    assert ordered(broken_rules(columns)) == ordered(sequential_broken(plain))
    # a repository with findings of several rules, and several repositories per rule
    assert max(len(codes) for codes in broken_rules(columns).values()) > 1
    assert len(broken_rules(columns)) > len(codes_in_order(columns))


@SETTINGS
@given(
    st.lists(CODES, max_size=4),
    st.lists(st.integers(0, 3), max_size=20),
    st.lists(CODES | st.none() | st.integers(0, 2), max_size=6),
)
def test_code_numbers_are_pandas_factorize(
    rule_codes: list[Any], picks: list[int], other: list[Any]
) -> None:
    rule_index = np.array([p % len(rule_codes) for p in picks] if rule_codes else [], np.int64)
    numbered = findingcodes.code_numbers(rule_index, rule_codes, other)
    if any(type(c) is not str for c in other):
        assert numbered is None
        return
    every = np.empty(len(rule_index) + len(other), dtype=object)
    every[:] = [rule_codes[i] for i in rule_index.tolist()] + other
    numbers, names = pd.factorize(every, use_na_sentinel=False)
    assert numbered is not None
    assert numbered[0].tolist() == numbers.tolist() and numbered[1] == names.tolist()


@SETTINGS
@given(
    st.lists(
        st.tuples(st.integers(-(2**62), 2**62), st.integers(0, 5), st.integers(0, 3)),
        min_size=1,
        max_size=40,
    )
)
def test_largest_sums_are_pandas_group_maxima(entries: list[tuple[int, int, int]]) -> None:
    size, key, code = (np.array(c, dtype=np.int64) for c in zip(*entries, strict=True))
    total, per_code = findingcodes.largest_sums(size, key * 7919, code, 4)
    assert total == int(pd.Series(size).groupby(key).max().sum())
    pairs = pd.Series(size).groupby([code, key]).max().groupby(level=0).sum()
    expected = [int(pairs.get(c, 0)) for c in range(4)]
    assert per_code.tolist() == expected


def test_broken_pairs_keep_the_order_and_last_severity_of_findings() -> None:
    # two ids with one text key, one code from two rules with different severities
    repo_ids = np.array([5, 9, 5, 9, 5, 2, 9], dtype=np.int64)
    rule_index = np.array([1, 0, 0, 2, 2, 1, 1], dtype=np.int64)
    keys = {5: ("k", "r", "one"), 9: ("k", "r", "one"), 2: None}
    rules = {0: ("B", "warning"), 1: ("A", "error"), 2: ("B", "info")}

    def entry(k: int) -> tuple[Any, str, str] | None:
        key = keys[int(repo_ids[k])]
        return None if key is None else (key, *rules[int(rule_index[k])])

    broken: dict[Any, dict[str, str]] = {}
    findingcodes.broken_pairs(repo_ids, rule_index, entry, broken)
    expected: dict[Any, dict[str, str]] = {}
    for k in range(len(repo_ids)):
        found = entry(k)
        if found is not None:
            expected.setdefault(found[0], {})[found[1]] = found[2]
    one = ("k", "r", "one")
    assert ordered(broken) == ordered(expected) == [(one, [("A", "error"), ("B", "info")])]
    assert Counter(map(len, broken.values())) == {2: 1}


def pandas_reclaimable(columns: Any) -> dict[Any, int]:
    """:func:`reclaimable` as it was before the numbers: pandas groups."""
    codes, distinct = pd.factorize(np.asarray(columns.code, dtype=object))
    names = distinct.tolist()
    out: dict[Any, int] = dict.fromkeys(names, 0)
    keep = np.array([bool(d) and isinstance(d, str) for d in columns.digest])
    key = pd.factorize(pd.Series([(str(a), str(r), str(p), str(d)) for a, r, p, d in zip(
        columns.account, columns.region, columns.repository, columns.digest, strict=True
    )], dtype=object)[keep])[0]  # fmt: skip
    size = np.array([int(b) if isinstance(b, int) else 0 for b in columns.bytes])[keep]
    out[None] = int(pd.Series(size).groupby(key, sort=False).max().sum())
    per_code = pd.Series(size).groupby([codes[keep], key], sort=False).max()
    for code, total in per_code.groupby(level=0, sort=False).sum().items():
        out[names[code]] = int(total)
    return out


def test_a_finding_without_a_code_is_counted_as_before() -> None:
    # pandas numbers a None code -1: the sums by number are not used then
    rows = FindingRows(None, [
        {"code": "IM001", "image_digest": "sha256:a", "repository": "r", "bytes": 5},
        {"code": None, "image_digest": "sha256:b", "repository": "r", "bytes": 7},
        {"code": "IM002", "image_digest": "sha256:a", "repository": "r", "bytes": 3},
    ])  # fmt: skip
    columns = rows.columns()
    assert list(reclaimable(columns).items()) == list(pandas_reclaimable(columns).items())


def two_region_rows() -> FindingRows:
    """A synthetic registry where ten repositories have a namesake in another region."""
    inventory = synthetic_inventory(3_000, 30)
    images, repositories = inventory.images, inventory.repositories
    names = sorted(set(images["repository"].astype(str)))[:10]
    twin = images[images["repository"].astype(str).isin(names)].astype({"region": object})
    twin["region"] = "us-east-2"
    twin_repositories = repositories[repositories["name"].astype(str).isin(names)].copy()
    twin_repositories["region"] = "us-east-2"
    both = {
        "images": pd.concat([images, twin], ignore_index=True),
        "repositories": pd.concat([repositories, twin_repositories], ignore_index=True),
    }
    inventory = type(inventory)(**{**vars(inventory), **both})
    return FindingRows.of(evaluate(inventory, bench_config(), NOW).findings)


def test_engine_numbers_each_repository_once_and_totals_agree() -> None:
    from dataclasses import replace

    rows = two_region_rows()
    image = rows.image
    assert image is not None and image.repo_ids is not None
    keys = list(zip(image.account, image.region, image.repository, strict=True))
    # one id per (account, region, repository) and one of those per id; a name twice
    pairs = set(zip(image.repo_ids.tolist(), keys, strict=True))
    assert len(pairs) == len(set(keys)) == len(set(image.repo_ids.tolist()))
    assert len(set(image.repository)) < len(set(keys))
    check_rows(rows)
    # a namespace that is not the repository's: the totals tell them apart
    first = image.repository[0]
    image.namespace[:] = [
        "elsewhere" if name == first and k % 2 else space
        for k, (name, space) in enumerate(zip(image.repository, image.namespace, strict=True))
    ]
    by_text = FindingRows(replace(image, repo_ids=None), rows.other)
    assert total_rows(rows) == total_rows(by_text)
    counted = [t for t in total_rows(rows) if (t["images"] or 0) > 1]
    assert len({t["repository"] for t in counted}) < len(
        {t["region"] + t["repository"] for t in counted}
    )
    for mask in (np.arange(len(rows)) % 3 == 0, np.arange(len(rows)) >= len(rows) // 2):
        assert total_rows(rows.select(mask)) == total_rows(by_text.select(mask))
