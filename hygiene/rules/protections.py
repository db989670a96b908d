"""Protections, computed once as columns before any image rule runs.

An image is *protected* (never part of a deletion unit) when

* ``repository-opt-out`` – its repository carries the opt-out resource tag
  (``hygiene:keep=true`` by default);
* ``repository-incomplete`` – its repository was not read completely (``scan_error``);
* ``protected-tag:<tag>`` – one of its tags matches a protected pattern (``prod*`` …);
* ``newest-<K>`` – it is among the K most recently pushed tagged images of its repository;
* ``pulled-recently`` – it, or an index child / referrer of it, was pulled within the
  protection window;
* ``in-use:<source>:<where>`` – a workload runs it (``inventory.in_use``, matched by
  :func:`hygiene.rules.in_use.in_use`), directly or through a child or referrer
  (docs/in-use.md);
* ``in-use-unknown:<sources>`` – an in-use source could not be read: every image is
  kept, so no image deletion is proposed on such a run;
* ``child-of-kept-index`` / ``referrer-of-kept-image`` – protection flows down from an
  index to its children and from an image to its referrers (signatures, SBOMs).

Everything here is vectorised over the images frame: the only Python loops are over
index/referrer *levels* (at most a handful) and over configuration entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hygiene.rules.base import labels
from hygiene.rules.columns import (
    arrow_strings,
    group_ids,
    match_globs,
    stable_lexsort,
    string_codes,
    utc_ns,
)
from hygiene.rules.in_use import in_use as match_in_use

MAX_DEPTH = 4  # index → child → referrer → referrer-of-referrer; real registries stop at 3


# --------------------------------------------------------------------------- derived columns


def _list_array(values: pd.Series) -> pa.ListArray:
    """An object column of Python lists → a pyarrow list<string> array (in C)."""
    return pa.array(values.to_numpy(dtype=object), type=pa.list_(pa.string()))


def build_tag_table(images: pd.DataFrame) -> pd.DataFrame:
    """One row per (image row, tag), tags as pyarrow strings, in each image's tag order."""
    lists = _list_array(images["tags"])
    parents = pc.list_parent_indices(lists).to_numpy()
    rows = images.index.to_numpy(dtype=np.int64)[parents] if len(parents) else parents
    return pd.DataFrame(
        {
            "row": np.asarray(rows, dtype=np.int64),
            "tag": pd.arrays.ArrowExtensionArray(pc.list_flatten(lists)),
        }
    )


@dataclass
class Edges:
    """Graph of an image and what depends on it, as row-position arrays."""

    child: np.ndarray  # index children ...
    parent: np.ndarray  # ... and the index listing them
    referrer: np.ndarray  # referrers (OCI subject or legacy cosign tag) ...
    subject: np.ndarray  # ... and the image they refer to
    # no digest twice in one repository (one row per image; the plan relies on it)
    unique_digests: bool = True

    @property
    def dependent(self) -> np.ndarray:
        return np.concatenate([self.child, self.referrer])

    @property
    def owner(self) -> np.ndarray:
        return np.concatenate([self.parent, self.subject])


def repository_rows(frame: pd.DataFrame, keys: list[str], repositories: pd.DataFrame) -> np.ndarray:
    """For each ``repo_id`` of ``frame`` (0 to n-1), the row of its repository in
    ``repositories`` (the first of equal keys), -1 for none: the keys compared as text
    (``astype(str)``, a missing value equal to a missing value), as the pandas merge of
    the two did (tested against it) without its set-up."""
    if not len(frame):
        return np.full(0, -1, dtype=np.int64)
    ids = frame["repo_id"].to_numpy()
    first = np.full(int(ids.max()) + 1, len(ids), dtype=np.int64)
    np.minimum.at(first, ids, np.arange(len(ids), dtype=np.int64))  # each id's first row
    named = first < len(ids)  # every id, as group_ids numbers them (0 to n-1)
    groups = frame[keys].take(first[named]).astype({k: str for k in keys})
    wanted = zip(*(_cells(groups[k]) for k in keys), strict=True)
    names = repositories[["account", "region", "name"]].astype(str)
    known: dict[tuple[Any, ...], int] = {}
    for row, key in enumerate(
        zip(*(_cells(names[k]) for k in ("account", "region", "name")), strict=True)
    ):
        known.setdefault(key, row)
    rows = np.full(len(first), -1, dtype=np.int64)
    rows[named] = [known.get(key, -1) for key in wanted]
    return rows


def _cells(column: pd.Series) -> list[Any]:
    """A text column's values, a missing one as None (equal to any other missing one)."""
    missing = column.isna().to_numpy()
    values = column.tolist()
    if missing.any():
        values = [None if m else v for v, m in zip(values, missing, strict=True)]
    return values


def derive(images: pd.DataFrame, repositories: pd.DataFrame) -> tuple[pd.DataFrame, Edges]:
    """Add the columns every rule and protection reads; return the dependency edges.

    ``repo_id`` groups (account, region, repository); ``repo_row`` is the repository's
    row in ``repositories`` (-1 if absent); ``subject_row`` is the referred image's row or
    -1; ``is_child`` means some index in the inventory lists the image; ``top_level``
    images are neither children nor referrers with a present subject (an orphaned
    referrer is top level); ``unit_last_pull`` is the latest pull of the image, its
    children and referrers; ``tagged_rank`` is 1 for the newest tagged top-level image
    of a repository (0 when not ranked).
    """
    n = len(images)
    frame = images.reset_index(drop=True)
    keys = ["account", "region", "repository"]
    frame["repo_id"] = group_ids(frame, keys)

    # repository row of each image
    repo_row_of_group = repository_rows(frame, keys, repositories)
    frame["repo_row"] = repo_row_of_group[frame["repo_id"].to_numpy()] if n else np.empty(0)

    # digest lookup: (repo_id, digest) → row, on dictionary codes of every digest named
    parent_lists = _list_array(frame["parent_indexes"])
    child_rows = pc.list_parent_indices(parent_lists).to_numpy().astype(np.int64)
    parent_digests = pc.list_flatten(parent_lists)
    subject = frame["subject_digest"]
    has_subject = subject.notna().to_numpy()
    referrer_rows = np.flatnonzero(has_subject)
    subject_array = arrow_strings(subject)
    own_digests = arrow_strings(frame["digest"]).fill_null("")
    all_digests = pa.concat_arrays(
        [own_digests, parent_digests, subject_array.filter(pa.array(has_subject))]
    )
    codes = string_codes(all_digests) if len(all_digests) else np.empty(0, dtype=np.int64)
    n_parents = len(parent_digests)
    rid = frame["repo_id"].to_numpy(dtype=np.int64)
    own_key = (rid << 32) | codes[:n]
    lookup = pd.Index(own_key)
    row_of_position = np.arange(n)
    unique_digests = bool(lookup.is_unique)
    if not unique_digests:  # the same digest twice in a repository: first row wins
        first = ~lookup.duplicated()
        lookup, row_of_position = lookup[first], row_of_position[first]

    def find(rows: np.ndarray, digest_codes: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.empty(0, dtype=np.int64)
        position = lookup.get_indexer((rid[rows] << 32) | digest_codes)
        out = np.full(len(rows), -1, dtype=np.int64)
        found = position >= 0
        out[found] = row_of_position[position[found]]
        return out

    parent_rows = find(child_rows, codes[n : n + n_parents])
    keep = parent_rows >= 0
    child_rows, parent_rows = child_rows[keep], parent_rows[keep]
    subject_rows = find(referrer_rows, codes[n + n_parents :])

    subject_row = np.full(n, -1, dtype=np.int64)
    subject_row[referrer_rows] = subject_rows
    is_child = np.zeros(n, dtype=bool)
    is_child[child_rows] = True
    frame["subject_row"] = subject_row
    frame["is_referrer"] = subject_row >= 0
    frame["is_child"] = is_child
    frame["orphaned_referrer"] = has_subject & (subject_row < 0)
    frame["top_level"] = ~is_child & (subject_row < 0)

    found_ref = subject_rows >= 0
    edges = Edges(
        child=child_rows,
        parent=parent_rows,
        referrer=referrer_rows[found_ref],
        subject=subject_rows[found_ref],
        unique_digests=unique_digests,
    )

    # the unit's latest pull: an index pulled through its platform manifest, an image
    # verified through its signature (cosign pulls the signature) both count as pulls
    last_pull = utc_ns(frame["last_pull"]).astype(np.int64)
    last_pull = propagate_up(last_pull, edges)
    frame["unit_last_pull"] = pd.DatetimeIndex(last_pull.view("M8[ns]")).tz_localize("UTC")

    rankable = (
        frame["top_level"] & (frame["tag_count"] > 0) & ~frame["is_signature_tag"]
    ).to_numpy()
    rows = np.flatnonzero(rankable)
    tagged_rank = np.zeros(n, dtype=np.int32)
    tagged_rank[rows] = rank_newest(rid[rows], utc_ns(frame["pushed_at"])[rows])
    frame["tagged_rank"] = tagged_rank
    return frame, edges


def rank_newest(group: np.ndarray, when: np.ndarray) -> np.ndarray:
    """1 for the newest entry of each group, 2 for the next…; ties keep input order."""
    if not len(group):
        return np.zeros(0, dtype=np.int64)
    key = when.astype("datetime64[ns]").astype(np.int64)
    key = -np.maximum(key, np.iinfo(np.int64).min + 1)  # descending; NaT sorts last
    order = stable_lexsort((key, group))  # ties in input order
    ordered = group[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    position = np.arange(len(order))
    first = np.maximum.accumulate(np.where(starts, position, 0))
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = position - first + 1
    return ranks


def propagate_up(values: np.ndarray, edges: Edges) -> np.ndarray:
    """values[owner] = max(values[owner], values[dependent]), through every level."""
    values = values.copy()
    dependent, owner = edges.dependent, edges.owner
    for _ in range(MAX_DEPTH):
        before = values[owner]
        np.maximum.at(values, owner, values[dependent])
        if np.array_equal(before, values[owner]):
            break
    return values


def propagate_down(flags: np.ndarray, edges: Edges) -> np.ndarray:
    """flags[dependent] |= flags[owner], through every level; returns the inherited part."""
    inherited = np.zeros_like(flags)
    current = flags.copy()
    dependent, owner = edges.dependent, edges.owner
    for _ in range(MAX_DEPTH):
        hit = np.zeros_like(current)
        hit[dependent[current[owner]]] = True
        new = hit & ~current
        if not new.any():
            break
        inherited |= new
        current |= new
    return inherited


# --------------------------------------------------------------------------- protections


@dataclass
class Protections:
    """Per-image protection columns (aligned with the derived images frame)."""

    frame: pd.DataFrame  # columns below, index = image rows
    keep_newest: int
    unknown_reason: str = "in-use-unknown"  # + ":<sources that could not be read>"

    COLUMNS = (
        "opt_out",
        "incomplete",
        "protected_tag",
        "newest",
        "pulled_recently",
        "in_use",
        "in_use_reason",
        "in_use_unknown",
        "inherited",
        "protected",
    )

    @property
    def protected(self) -> np.ndarray:
        return self.frame["protected"].to_numpy(dtype=bool)

    def reasons(self, rows: np.ndarray) -> list[tuple[str, ...]]:
        """Why each of ``rows`` is protected, in a fixed order (empty when it is not)."""
        sub = self.frame.iloc[rows] if len(rows) else self.frame.iloc[:0]
        columns: list[list[str | None]] = [
            labels(sub["opt_out"], "repository-opt-out").tolist(),
            labels(sub["incomplete"], "repository-incomplete").tolist(),
            [
                f"protected-tag:{t}" if isinstance(t, str) else None
                for t in sub["protected_tag"].astype(object).where(sub["protected_tag"].notna())
            ],
            labels(sub["newest"], f"newest-{self.keep_newest}").tolist(),
            labels(sub["pulled_recently"], "pulled-recently").tolist(),
            sub["in_use_reason"].astype(object).where(sub["in_use_reason"].notna(), None).tolist(),
            labels(sub["in_use_unknown"], self.unknown_reason).tolist(),
            sub["inherited"].astype(object).where(sub["inherited"].notna(), None).tolist(),
        ]
        return [tuple(r for r in row if r) for row in zip(*columns, strict=True)]


def compute_protections(
    images: pd.DataFrame,
    repositories: pd.DataFrame,
    edges: Edges,
    tag_table: pd.DataFrame,
    settings: Any,
    protected_tags_by_namespace: dict[str | None, Sequence[str]],
    now: pd.Timestamp,
    in_use: pd.DataFrame | None = None,
    opt_out_value: str = "true",
    in_use_unknown: Sequence[str] = (),
) -> Protections:
    """Compute every protection column once (see module docstring).

    ``settings`` is :class:`hygiene.config.ProtectionSettings`;
    ``protected_tags_by_namespace`` maps a namespace (None = default) to its patterns;
    ``in_use`` is the references frame (``inventory.in_use``); ``in_use_unknown`` names
    the in-use sources that could not be read (then every image is protected).
    """
    n = len(images)
    repo_row = images["repo_row"].to_numpy(dtype=np.int64)
    present = repo_row >= 0

    key = settings.opt_out_tag_key
    repo_opt_out = np.array(
        [
            str((tags or {}).get(key, "")).lower() == opt_out_value
            for tags in repositories["resource_tags"]
        ],
        dtype=bool,
    )
    repo_incomplete = repositories["scan_error"].notna().to_numpy(dtype=bool)
    opt_out = np.zeros(n, dtype=bool)
    incomplete = ~present  # an image without a repository record was not read properly
    opt_out[present] = repo_opt_out[repo_row[present]]
    incomplete[present] = repo_incomplete[repo_row[present]]

    # protected tags, per namespace group of patterns
    protected_tag = pd.Series(pd.NA, index=images.index, dtype="string")
    if len(tag_table):
        namespace_of_row = images["namespace"].astype(object).to_numpy()
        default = protected_tags_by_namespace.get(None, ())
        special = {ns: p for ns, p in protected_tags_by_namespace.items() if ns is not None}
        tag_ns = namespace_of_row[tag_table["row"].to_numpy()]
        groups: dict[tuple[str, ...], np.ndarray] = {}
        if special:
            ns_series = pd.Series(tag_ns, dtype=object)
            for patterns in {tuple(p) for p in special.values()}:
                names = [ns for ns, p in special.items() if tuple(p) == patterns]
                groups[patterns] = ns_series.isin(names).to_numpy()
            others = ~np.logical_or.reduce(list(groups.values()))
            groups[tuple(default)] = groups.get(tuple(default), others) | others
        else:
            groups[tuple(default)] = np.ones(len(tag_table), dtype=bool)
        tags = pa.array(tag_table["tag"].array)
        hit = np.zeros(len(tag_table), dtype=bool)
        for patterns, mask in groups.items():
            hit |= mask & match_globs(tags, patterns)
        first = tag_table.loc[hit].drop_duplicates("row")
        protected_tag.iloc[first["row"].to_numpy()] = first["tag"].astype(str).to_numpy()

    keep = settings.keep_newest
    tagged_rank = images["tagged_rank"].to_numpy()
    newest = (tagged_rank > 0) & (tagged_rank <= keep)

    window = now - pd.Timedelta(days=settings.pulled_within_days)
    pulled_recently = (images["unit_last_pull"] >= window).fillna(False).to_numpy(dtype=bool)
    if settings.pulled_within_days == 0:
        pulled_recently = np.zeros(n, dtype=bool)

    used, used_reason = _in_use_columns(images, tag_table, edges, in_use)
    unknown = np.full(n, bool(in_use_unknown), dtype=bool)

    own = (
        opt_out
        | incomplete
        | protected_tag.notna().to_numpy(dtype=bool)
        | newest
        | pulled_recently
        | used
        | unknown
    )
    # protection flows down: children of a kept index, referrers of a kept image
    inherited_flag = propagate_down(own, edges)
    inherited = pd.Series(pd.NA, index=images.index, dtype="string")
    if inherited_flag.any():
        is_child = images["is_child"].to_numpy(dtype=bool)
        inherited[inherited_flag & is_child] = "child-of-kept-index"
        inherited[inherited_flag & ~is_child] = "referrer-of-kept-image"
    frame = pd.DataFrame(
        {
            "opt_out": opt_out,
            "incomplete": incomplete,
            "protected_tag": protected_tag,
            "newest": newest,
            "pulled_recently": pulled_recently,
            "in_use": used,
            "in_use_reason": pd.Series(used_reason, index=images.index, dtype="string"),
            "in_use_unknown": unknown,
            "inherited": inherited,
            "protected": own | inherited_flag,
        },
        index=images.index,
    )
    unknown_reason = "in-use-unknown"
    if in_use_unknown:
        unknown_reason += ":" + ",".join(in_use_unknown)
    return Protections(frame=frame, keep_newest=keep, unknown_reason=unknown_reason)


def _in_use_columns(
    images: pd.DataFrame, tag_table: pd.DataFrame, edges: Edges, uses: pd.DataFrame | None
) -> tuple[np.ndarray, np.ndarray]:
    """(in use, reason) per row. A platform manifest in use makes the index listing it in
    use (and a named referrer its subject), with the dependent's reason."""
    found = match_in_use(images, tag_table, uses if uses is not None else pd.DataFrame())
    own = found.used
    used = propagate_up(own.astype(np.int8), edges).astype(bool)
    reasons = found.reasons.copy()
    lifted = used & ~own
    if lifted.any():
        texts, codes = np.unique(found.reasons[own].astype(str), return_inverse=True)
        code = np.full(len(images), -1, dtype=np.int64)
        code[own] = codes
        code = propagate_up(code, edges)
        reasons[lifted] = texts[code[lifted]]
    return used, reasons
