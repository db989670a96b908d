"""Deletion units: an image a rule would delete, with what must go with it.

A unit is the image (its *root*), the children of an index when every index listing them
is in the same unit (a surviving index needs its children), and the referrers of every
member: signatures, SBOMs and attestations that describe it (ECR's own lifecycle deletes
them with their subject, see docs/ecr-facts.md, "Multi-arch images, attestations,
signatures"). A protected dependent never joins a unit; it is kept, with its reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from hygiene.rules.columns import arrow_strings
from hygiene.rules.kept import KeptImages
from hygiene.rules.protections import MAX_DEPTH, Edges, Protections


@dataclass
class Units:
    """Deletion units: for each root row, its members (root first) and bytes.

    The members of every unit are one flat sequence cut by ``starts``/``counts``:
    ``members`` are image rows, ``digests`` their digests.
    """

    roots: np.ndarray  # sorted unique root rows
    starts: np.ndarray
    counts: np.ndarray
    members: np.ndarray  # image rows, unit after unit
    digests: np.ndarray  # object: str, aligned with members
    bytes: np.ndarray

    @classmethod
    def build(
        cls, roots: np.ndarray, members: np.ndarray, digests: np.ndarray, sizes: np.ndarray
    ) -> Units:
        """From parallel arrays sorted by root (digests: object array of str)."""
        unique, starts, counts = _runs(roots)
        total = np.add.reduceat(sizes, starts) if len(starts) else starts
        return cls(
            roots=unique,
            starts=starts,
            counts=counts,
            members=members,
            digests=digests,
            bytes=np.asarray(total, dtype=np.int64),
        )

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The units of root ``rows``, in that order: offsets (``len(rows) + 1``), member
        rows, member digests (object) and the bytes of each unit."""
        # a table from row to unit: one pass over the rows, not a binary search each
        size = int(self.roots[-1]) + 1 if len(self.roots) else 0
        if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= size):
            raise AssertionError("an image finding without a deletion unit")
        unit_of_row = np.full(size, -1, dtype=np.int64)
        unit_of_row[self.roots] = np.arange(len(self.roots))
        position = unit_of_row[rows]
        if len(rows) and int(position.min()) < 0:
            raise AssertionError("an image finding without a deletion unit")
        lengths = self.counts[position]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        take = np.repeat(self.starts[position] - offsets[:-1], lengths) + np.arange(offsets[-1])
        return offsets, self.members[take], self.digests[take], self.bytes[position]


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(values, return_index=True, return_counts=True)``; for sorted
    ``values`` (a unit's members are together) read from where each run starts,
    without numpy's sort."""
    if len(values) < 2 or bool(np.any(values[1:] < values[:-1])):
        unique, starts, counts = np.unique(values, return_index=True, return_counts=True)
        return unique, starts, counts
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    counts = np.diff(np.r_[starts, len(values)])
    return values[starts], starts, counts


def build_units(
    images: pd.DataFrame,
    protections: Protections,
    roots: np.ndarray,
    edges: Edges,
    kept: KeptImages,
) -> Units:
    """The deletion unit of each root row (an image a rule would delete).

    Index children join their index's unit only when every index listing them is in the
    same unit; referrers join their subject's. A dependent left out is kept, with the
    reason, in ``kept``.
    """
    n = len(images)
    protected = protections.protected
    unit_of = np.full(n, -1, dtype=np.int64)
    unit_of[roots] = roots
    level_of = np.full(n, -1, dtype=np.int64)
    level_of[roots] = 0
    frontier = roots
    excluded: dict[int, str] = {}
    for level in range(1, MAX_DEPTH + 2):
        if not len(frontier):
            break
        in_frontier = np.zeros(n, dtype=bool)
        in_frontier[frontier] = True
        # index children of the frontier
        take = in_frontier[edges.parent]
        children, parents = edges.child[take], edges.parent[take]
        root_of_child = unit_of[parents]
        # a child joins only if every index listing it is in the same unit
        all_parent_units = pd.DataFrame({"child": edges.child, "unit": unit_of[edges.parent]}).loc[
            np.isin(edges.child, children)
        ]
        same = all_parent_units.groupby("child")["unit"].agg(["min", "max"])
        ok_child = (
            (same["min"] == same["max"]).reindex(children).to_numpy(dtype=bool)
            & (same["min"].reindex(children).to_numpy() == root_of_child)
            & ~protected[children]
            & (unit_of[children] < 0)
        )
        for child in children[~ok_child].tolist():
            if unit_of[child] < 0:
                excluded[child] = "protected" if protected[child] else "child"
        # referrers of the frontier
        take = in_frontier[edges.subject]
        referrers, subjects = edges.referrer[take], edges.subject[take]
        ok_ref = ~protected[referrers] & (unit_of[referrers] < 0)
        for referrer in referrers[~ok_ref].tolist():
            if unit_of[referrer] < 0:
                excluded[referrer] = "protected"
        new_members = np.concatenate([children[ok_child], referrers[ok_ref]])
        new_roots = np.concatenate([root_of_child[ok_child], unit_of[subjects[ok_ref]]])
        new_members, first = np.unique(new_members, return_index=True)
        unit_of[new_members] = new_roots[first]
        level_of[new_members] = level
        frontier = new_members
    _drop_members_with_owners_outside(images, unit_of, level_of, edges, kept)
    # why an excluded dependent stays: its own protection, or another index that
    # lists it survives, or the indexes listing it go in different units
    kept_parent = (
        np.bincount(edges.child, weights=unit_of[edges.parent] < 0, minlength=n) > 0
        if n
        else np.zeros(0, dtype=bool)
    )
    for row, why in excluded.items():
        if unit_of[row] >= 0:
            continue
        if why == "protected":
            reasons = list(protections.reasons(np.array([row]))[0])
        elif kept_parent[row]:
            reasons = ["child-of-kept-index"]
        else:
            reasons = ["child-of-several-indexes"]
        kept.add(row, reasons)
    members = np.flatnonzero(unit_of >= 0)
    # root first (level 0), then children and referrers level by level, by row
    order = np.lexsort((members, level_of[members], unit_of[members]))
    members = members[order]
    return Units.build(
        unit_of[members],
        members,
        _digest_objects(images, members),
        images["storage_bytes"].to_numpy()[members],
    )


def _drop_members_with_owners_outside(
    images: pd.DataFrame,
    unit_of: np.ndarray,
    level_of: np.ndarray,
    edges: Edges,
    kept: KeptImages,
) -> None:
    """Take out of its unit every member one of whose owners stays outside it, and what
    then depends on it, to a fixed point (``unit_of`` set to -1, the reason in ``kept``).

    A member joined through one edge may have another: a referrer listed by an image
    index (the OCI referrers tag schema lists an image's signatures in an index) joins
    that index's unit although its subject stays, and a referrer joins its subject's
    unit although an index that stays lists it. Deleting the first hides a present
    image's signature; ECR refuses the second (``ImageReferencedByManifestList``), and
    apply would skip the whole unit. A unit's root has no owner (rules flag only
    top-level images and orphaned referrers), so it is never taken out.
    """
    digests = images["digest"]
    while True:
        in_unit = unit_of >= 0
        child_out = in_unit[edges.child] & (unit_of[edges.parent] != unit_of[edges.child])
        referrer_out = in_unit[edges.referrer] & (unit_of[edges.subject] != unit_of[edges.referrer])
        reasons: dict[int, list[str]] = {}
        for row, parent in zip(
            edges.child[child_out].tolist(), edges.parent[child_out].tolist(), strict=True
        ):
            why = "child-of-kept-index" if unit_of[parent] < 0 else "child-of-several-indexes"
            reasons.setdefault(row, []).append(why)
        for row, subject in zip(
            edges.referrer[referrer_out].tolist(), edges.subject[referrer_out].tolist(), strict=True
        ):
            reasons.setdefault(row, []).append(f"referrer-of:{digests.iat[subject]}")
        rows = [row for row in reasons if level_of[row] > 0]
        if not rows:
            return
        for row in rows:
            kept.add(row, sorted(set(reasons[row])))
        unit_of[np.asarray(rows, dtype=np.int64)] = -1


def _digest_objects(images: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Digests of ``rows`` as an object array of str (made only for these rows)."""
    out = np.empty(len(rows), dtype=object)
    out[:] = arrow_strings(images["digest"]).take(pa.array(rows)).to_pylist()
    return out
