"""hygiene.grouping against grouping rows in a dict."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from hygiene.grouping import groups

VALUE = st.one_of(st.none(), st.sampled_from(["a", "b", "ml/x"]), st.integers(0, 2))


@given(st.lists(st.tuples(st.integers(0, 3), VALUE, VALUE, st.integers(0, 2**40)), min_size=1))
def test_groups_equal_a_dict_of_rows(rows: list[tuple[int, object, object, int]]) -> None:
    key = np.array([r[0] for r in rows], dtype=np.int64)
    columns = []
    for k in (1, 2):
        column = np.empty(len(rows), dtype=object)
        column[:] = [r[k] for r in rows]
        columns.append(column)
    sizes = np.array([r[3] for r in rows], dtype=np.int64)
    expected: dict[tuple[object, ...], list[int]] = {}
    for i, row in enumerate(rows):
        expected.setdefault(row[:3], []).append(i)  # in order of first appearance
    grouped = groups(key, columns)
    members = list(expected.values())
    assert grouped.counts.tolist() == [len(m) for m in members]
    assert grouped.first.tolist() == [m[0] for m in members]
    assert grouped.order.tolist() == [i for m in members for i in m]
    assert grouped.reduce(np.add, sizes).tolist() == [sum(rows[i][3] for i in m) for m in members]
    assert grouped.reduce(np.maximum, sizes).tolist() == [
        max(rows[i][3] for i in m) for m in members
    ]
    group_of = {i: g for g, m in enumerate(members) for i in m}
    assert grouped.number.tolist() == [group_of[i] for i in range(len(rows))]
