"""The delete-images proposals of columnar image findings, read from their columns and
the inventory's (:func:`columnar_image_proposals`), and which findings propose a
deletion (:func:`image_deletions`); with the lifecycle plan's selection of repositories
(:func:`in_keys`).

Split from :mod:`hygiene.plan` (which holds the object path, :func:`~hygiene.plan.
_image_proposals`, that these equal: ``tests/test_columnar.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hygiene.findingtable import ImageFindings
from hygiene.fixsafety import code_safety
from hygiene.inventory import Inventory
from hygiene.model import Action, FixSafety, Proposal, proposal_id
from hygiene.planscope import (
    all_text,
    arrow_strings,
    columnar_entries,
    evidence_entries,
    repo_where,
)
from hygiene.units import human_bytes


def columnar_image_proposals(
    found: ImageFindings,
    keep: np.ndarray,
    inventory: Inventory,
    in_use_checked: list[str] | None = None,
) -> list[Proposal] | None:
    """:func:`hygiene.plan._image_proposals` of the image findings ``keep`` selects, read from the
    findings' columns and the inventory's (the same proposals, ids and evidence; tested
    against it on generated registries).

    Several rules may flag one image: each gives its own finding, with the same unit;
    the unit is proposed once, with every rule's code, and goes the safe way when any of
    them is safe (as in :func:`hygiene.plan._image_proposals`).

    None when the shortcut's conditions do not hold, and the caller takes the general
    path: every unit is its own root's (the engine's units are disjoint), no digest is
    twice in a repository, and the unit rows point at this inventory's images.

    The orderings are computed on columns (the proposals' order, each proposal's units,
    evidence entries and target); what :func:`hygiene.plan._image_proposals` sorts as Python strings
    is sorted here by Arrow, whose byte order of UTF-8 is Python's order of code points.
    """
    if len(found.rules) > 62:
        return None  # the codes of a unit are a bit mask of its rules below
    if not columnar_entries(inventory.images):
        return None  # times without a time zone: the entries are made one by one
    selected = np.flatnonzero(keep)
    # one entry per root (the first finding of each), with the codes of all of them
    _, head, inverse = np.unique(found.rows[selected], return_index=True, return_inverse=True)
    masks = np.zeros(len(head), dtype=np.int64)
    np.bitwise_or.at(masks, inverse, np.left_shift(1, found.rule[selected].astype(np.int64)))
    firsts = np.sort(head)
    chosen = selected[firsts]
    unit_masks = masks[inverse[firsts]]
    codes_of = _MaskCodes(found)
    offsets = found.unit_offsets
    lengths = (offsets[1:] - offsets[:-1])[chosen]
    if not lengths.all():
        return None  # a unit of no image (the orderings below take each unit's first)
    starts = offsets[:-1][chosen]
    take = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    take = take + np.arange(int(lengths.sum()))
    members = found.unit_rows[take]
    images = inventory.images
    ordered_members = np.sort(members)
    if not found.unique_digests or bool((ordered_members[1:] == ordered_members[:-1]).any()):
        return None  # a unit that is not its own finding's alone
    if len(members) and (int(members.max()) >= len(images) or int(members.min()) < 0):
        return None
    digests = _objects(found.unit_digests)[take]
    member_digests = arrow_strings(images["digest"]).take(pa.array(members, type=pa.int64()))
    if not _same_digests(member_digests, digests, members):
        return None  # not the inventory the findings were made from
    where_columns = {}
    for column, values in (
        ("repository", found.repository),
        ("region", found.region),
        ("account", found.account),
    ):
        of_unit = _objects(values)[chosen]
        if not _same_values(images[column], members, of_unit, lengths):
            return None  # not the inventory the findings were made from
        where_columns[column] = of_unit
    if not len(chosen):
        return []

    n_units, n_members = len(chosen), len(members)
    positions = np.concatenate([[0], np.cumsum(lengths)])
    member_unit = np.repeat(np.arange(n_units), lengths)
    unsafe_of_unit = codes_of.unsafe(unit_masks)
    # the repository of each unit, ranked as (account, region, repository) sorts
    factorized = _factorized_keys(
        where_columns["account"], where_columns["region"], where_columns["repository"]
    )
    if factorized is None:
        return None
    combo, keys = factorized
    # units: by repository, safe first, by root digest; a group is a repository and safety
    unit_order = _sort_indices(
        ("rank", combo),
        ("unsafe", unsafe_of_unit),
        ("root", member_digests.take(pa.array(positions[:-1], type=pa.int64()))),
    )
    sorted_combo, sorted_unsafe = combo[unit_order], unsafe_of_unit[unit_order]
    new_group = np.ones(n_units, dtype=bool)
    new_group[1:] = (sorted_combo[1:] != sorted_combo[:-1]) | (
        sorted_unsafe[1:] != sorted_unsafe[:-1]
    )
    group_starts = np.flatnonzero(new_group)
    n_groups = len(group_starts)
    group_of_unit = np.empty(n_units, dtype=np.int64)
    group_of_unit[unit_order] = np.cumsum(new_group) - 1
    rank_of_unit = np.empty(n_units, dtype=np.int64)
    rank_of_unit[unit_order] = np.arange(n_units)
    member_group = group_of_unit[member_unit]
    is_index = images["is_index"].to_numpy(dtype=bool)[members]

    # evidence entries (and rule codes), by group then digest
    order_by_digest = _sort_indices(("group", member_group), ("digest", member_digests))
    member_bounds = np.searchsorted(member_group[order_by_digest], np.arange(n_groups + 1))
    digests_by_digest = digests[order_by_digest].tolist()
    entries = evidence_entries(images, members[order_by_digest], digests_by_digest)
    codes_of_member = codes_of.lists(unit_masks)[member_unit[order_by_digest]].tolist()
    stored = images["storage_bytes"].to_numpy(dtype=np.int64)[members[order_by_digest]]
    totals = np.add.reduceat(stored, member_bounds[:-1]).tolist()
    # targets: indexes first, then the rest, each in unit order and unit member order
    in_unit = np.arange(n_members) - np.repeat(positions[:-1], lengths)
    by_target = np.lexsort((in_unit, rank_of_unit[member_unit], ~is_index, member_group))
    target_digests = digests[by_target].tolist()
    # each unit's digests (sorted when several), units ordered by their least digest
    # (units are disjoint: lists compare by their first digest)
    member_by_unit = order_by_digest[np.argsort(member_unit[order_by_digest], kind="stable")]
    sorted_members = digests[member_by_unit].tolist()
    bounds = positions.tolist()
    unit_lists = list(map(sorted_members.__getitem__, map(slice, bounds[:-1], bounds[1:])))
    # each unit's least digest: the first of its members in digest order (members are
    # contiguous by unit)
    rank_by_digest = np.empty(n_members, dtype=np.int64)
    rank_by_digest[order_by_digest] = np.arange(n_members)
    least = np.minimum.reduceat(rank_by_digest, positions[:-1])
    units_by_least = np.argsort(least, kind="stable")  # groups in order, least digest within
    unit_bounds = np.searchsorted(group_of_unit[units_by_least], np.arange(n_groups + 1))
    units_by_least_list = units_by_least.tolist()
    # per group: its first unit (repository, safety), units, codes, namespace
    first_units = unit_order[group_starts]
    group_masks = np.bitwise_or.reduceat(unit_masks[unit_order], group_starts)
    group_codes = codes_of.lists(group_masks).tolist()
    namespace_of = _last_namespace(found.namespace, chosen, combo, len(keys))
    unit_counts = np.diff(np.append(group_starts, n_units)).tolist()

    proposals = []
    member_bounds_list = member_bounds.tolist()
    unit_bounds_list = unit_bounds.tolist()
    for g, (first, codes, size, units_in_group) in enumerate(
        zip(first_units.tolist(), group_codes, totals, unit_counts, strict=True)
    ):
        account, region, repository = keys[int(combo[first])]
        m0, m1 = member_bounds_list[g], member_bounds_list[g + 1]
        u0, u1 = unit_bounds_list[g], unit_bounds_list[g + 1]
        target = {"digests": target_digests[m0:m1]}
        evidence = {
            "images": entries[m0:m1],
            "units": [unit_lists[k] for k in units_by_least_list[u0:u1]],
            "rule_codes": dict(zip(digests_by_digest[m0:m1], codes_of_member[m0:m1], strict=True)),
        }
        if in_use_checked is not None:
            # the in-use sources read by the scan that proposed it (docs/in-use.md)
            evidence["in_use_checked"] = in_use_checked
        where_target = repo_where((account, region, repository)) | target
        proposals.append(
            Proposal(
                id=proposal_id(Action.DELETE_IMAGES, where_target, evidence, plain=True),
                action=Action.DELETE_IMAGES,
                account=account,
                region=region,
                repository=repository,
                namespace=namespace_of[int(combo[first])],
                target=target,
                evidence=evidence,
                rule_codes=tuple(codes),
                fix_safety=FixSafety.UNSAFE if unsafe_of_unit[first] else FixSafety.SAFE,
                bytes=size,
                summary=(
                    f"delete {m1 - m0} image(s) in {units_in_group} unit(s) from "
                    f"{repository}, {human_bytes(size)} ({', '.join(codes)})"
                ),
            )
        )
    return proposals


class _MaskCodes:
    """The sorted codes and the safety of a set of rules given as a bit mask of their
    positions in ``found.rules``."""

    def __init__(self, found: ImageFindings) -> None:
        self.codes = [r.code for r in found.rules]
        self._lists: dict[int, list[str]] = {}

    def _codes(self, mask: int) -> list[str]:
        cached = self._lists.get(mask)
        if cached is None:
            bits = [b for b in range(len(self.codes)) if mask >> b & 1]
            cached = self._lists[mask] = sorted({self.codes[b] for b in bits})
        return cached

    def lists(self, masks: np.ndarray) -> np.ndarray:
        """Each mask's codes: a new list per entry (evidence lists are never shared)."""
        distinct, inverse = np.unique(masks, return_inverse=True)
        out = np.empty(len(masks), dtype=object)
        lists = [self._codes(m) for m in distinct.tolist()]
        out[:] = [list(lists[i]) for i in inverse.tolist()]
        return out

    def unsafe(self, masks: np.ndarray) -> np.ndarray:
        """True where no rule of the mask is safe (as :func:`code_safety` says)."""
        distinct, inverse = np.unique(masks, return_inverse=True)
        flags = [
            all(code_safety(c) is not FixSafety.SAFE for c in self._codes(m))
            for m in distinct.tolist()
        ]
        return np.array(flags, dtype=bool)[inverse] if len(masks) else np.zeros(0, dtype=bool)


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _same_digests(inventory_digests: pa.Array, digests: np.ndarray, rows: np.ndarray) -> bool:
    """Whether the findings' ``digests`` are the inventory's at their ``rows``; compared
    in row order (the order the strings sit in memory: several times faster than the
    findings' order), a chunk at a time (no second copy of every digest), as Arrow
    arrays (no Python string made per inventory digest). A digest that is not a ``str``
    (Arrow would take bytes as text) is no match."""
    by_row = np.argsort(rows, kind="stable")
    for start in range(0, len(by_row), DIGEST_CHUNK):
        part = by_row[start : start + DIGEST_CHUNK]
        ours = digests[part]
        if not all_text(ours):
            return False
        try:
            mine = pa.array(ours, type=pa.string())
        except (UnicodeEncodeError, pa.ArrowException):  # a lone surrogate, a non-text
            return False
        if not inventory_digests.take(pa.array(part)).equals(mine):
            return False
    return True


DIGEST_CHUNK = 65_536


def _same_values(column: pd.Series, rows: np.ndarray, of_unit: np.ndarray, lengths: Any) -> bool:
    """Whether the column's value at each of ``rows`` is its unit's (``of_unit``, each
    repeated ``lengths`` times). A category column is compared on its codes: a value
    that is not one of its categories, or a missing one, is no match."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        wanted = column.cat.categories.get_indexer(pd.Index(of_unit, dtype=object))
        codes = column.cat.codes.to_numpy()[rows]
        return bool((wanted >= 0).all()) and np.array_equal(codes, np.repeat(wanted, lengths))
    return np.array_equal(column.astype(object).to_numpy()[rows], np.repeat(of_unit, lengths))


def _factorized_keys(
    account: np.ndarray, region: np.ndarray, repository: np.ndarray
) -> tuple[np.ndarray, list[tuple[str, str, str]]] | None:
    """Each entry's repository as a rank among the sorted distinct (account, region,
    repository) keys, and those keys; None when a value is missing (None)."""
    a_codes, a_uniques = pd.factorize(account)
    r_codes, r_uniques = pd.factorize(region)
    p_codes, p_uniques = pd.factorize(repository)
    if min(a_codes.min(initial=0), r_codes.min(initial=0), p_codes.min(initial=0)) < 0:
        return None
    packed = (a_codes.astype(np.int64) * len(r_uniques) + r_codes) * len(p_uniques) + p_codes
    distinct, inverse = np.unique(packed, return_inverse=True)
    width = len(r_uniques) * len(p_uniques)
    found = [
        (
            a_uniques[v // width],
            r_uniques[v // len(p_uniques) % len(r_uniques)],
            p_uniques[v % len(p_uniques)],
        )
        for v in distinct.tolist()
    ]
    order = sorted(range(len(found)), key=found.__getitem__)
    rank = np.empty(len(found), dtype=np.int64)
    rank[order] = np.arange(len(found))
    return rank[inverse], [found[i] for i in order]


def _sort_indices(*columns: tuple[str, Any]) -> np.ndarray:
    """Row order by the columns (arrays), first column first (strings compared as Python
    does)."""
    table = pa.table({name: values for name, values in columns})
    order = pc.sort_indices(table, sort_keys=[(name, "ascending") for name, _ in columns])
    return np.asarray(order.to_numpy(), dtype=np.int64)


def _last_namespace(
    namespaces: list[str | None], chosen: np.ndarray, combo: np.ndarray, n_keys: int
) -> list[str | None]:
    """The namespace of each repository key: its last chosen finding's (as the loop of
    :func:`hygiene.plan._image_proposals` keeps the last)."""
    last = np.full(n_keys, -1, dtype=np.int64)
    np.maximum.at(last, combo, np.arange(len(chosen)))
    return [namespaces[i] for i in chosen[last].tolist()]


def image_deletions(
    found: ImageFindings,
    proposes: Callable[[str, tuple[str, str, str]], Action | None],
    broken: set[tuple[str, str, str]],
) -> np.ndarray:
    """Which image findings propose a deletion (``proposes(code, repository)`` is
    ``delete-images``). Whether a rule's finding does depends on its repository only
    when that repository is ``broken``: the rule is asked once with a repository that
    is not, and the findings in a repository of a broken one's name are asked one by
    one."""
    nowhere = cast(tuple[str, str, str], (None, None, None))  # in no set of names
    per_rule = [proposes(r.code, nowhere) is Action.DELETE_IMAGES for r in found.rules]
    keep = np.array(per_rule, dtype=bool)[found.rule]
    names = {name for _, _, name in broken}
    if names:
        for i, name in enumerate(found.repository):
            if name in names:
                key = (found.account[i], found.region[i], name)
                code = found.rules[int(found.rule[i])].code
                keep[i] = proposes(code, key) is Action.DELETE_IMAGES
    return keep


def in_keys(frame: pd.DataFrame, name: str, keys: set[tuple[str, str, str]]) -> np.ndarray:
    """Rows of ``frame`` whose (account, region, ``name``) is one of ``keys`` (matched on
    the columns' codes, not on a tuple per row)."""
    if not keys or frame.empty:
        return np.zeros(len(frame), dtype=bool)
    index = pd.MultiIndex.from_arrays([frame["account"], frame["region"], frame[name]])
    return np.asarray(index.isin(list(keys)), dtype=bool)
