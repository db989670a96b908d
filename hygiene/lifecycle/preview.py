"""Evaluate a lifecycle policy locally on one repository's images, like ECR does.

ECR's preview API is asynchronous, one repository at a time, and missing from moto; this
is a pure function over the inventory's images frame that follows ECR's documented
evaluation rules (AWS user guide, "Lifecycle policy evaluation rules"):

* All rules are evaluated, then applied in ``rulePriority`` order (lowest first).
* An image is expired (or transitioned) by at most one rule.
* An image matched by the *tag selection* of a higher-priority rule cannot be acted on by
  a lower-priority rule, even if that higher rule left it alone.
* Images already marked still count toward later ``imageCountMoreThan`` rules.
* Counting orders images by push time; the newest are kept, the oldest go first.
* ``tagPrefixList`` / ``tagPatternList`` entries are ANDed: every entry must match at
  least one of the image's tags. ``*`` matches any run of characters; a pattern without
  ``*`` must equal the tag.
* ``sinceImagePushed`` / ``sinceImagePulled`` / ``sinceImageTransitioned``: the image is
  older than ``countNumber`` days (strictly) by that clock.

Choices where the documentation is silent (see docs/lifecycle.md):

* Index children (manifests listed by an index in the same repository) are never selected
  nor counted on their own; they go with their index, unless another index that stays
  still lists them.
* OCI referrers (``subject_digest`` set by ``subjectManifestDigest``) whose subject is in
  the repository go with their subject and are not selected on their own. Legacy cosign
  tags (``sha256-<hex>.sig``) are ordinary tagged images to ECR and are evaluated as such.
* ``sinceImagePulled`` on a never-pulled image counts from its push
  (``never_pulled="pushed"``, the default) or never selects it (``"keep"``).
* Storage class: ``ARCHIVED`` images are the ``archive`` class, ``ACTIVATING`` images
  belong to no class (left alone), everything else (``ACTIVE`` or unknown) is
  ``standard``. ``sinceImageTransitioned`` reads an ``archived_at`` column when the
  frame has one; otherwise it selects nothing and the preview says so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from hygiene.errors import LifecycleError
from hygiene.lifecycle.policy import LifecyclePolicy, LifecycleRule, parse_policy, pattern_regex

NeverPulled = Literal["pushed", "keep"]
ACTION_COLUMNS = ["digest", "rule_priority", "action", "via", "tags", "pushed_at", "bytes"]
ACTION_DTYPES: dict[str, Any] = {
    "digest": "string",
    "rule_priority": "int64",
    "action": "string",
    "via": "string",
    "tags": "object",
    "pushed_at": "datetime64[ns, UTC]",
    "bytes": "int64",
}


class PreviewResult:
    """What a policy would do to one repository.

    ``actions`` (:data:`ACTION_COLUMNS`; ``via`` = the index or subject digest a unit
    member went with) may be given as a function that builds the frame: the batch
    preview of thousands of repositories (:mod:`hygiene.lifecycle.batch`) builds a frame
    only for a repository whose actions someone reads, and gives the expired and
    transitioned digests, which every proposal holds, as lists.
    """

    __slots__ = (
        "_actions",
        "_expired",
        "_transitioned",
        "by_rule",
        "bytes",
        "images",
        "notes",
        "repository",
        "transitioned_bytes",
        "transitioned_images",
    )

    def __init__(
        self,
        repository: str | None,
        actions: pd.DataFrame | Callable[[], pd.DataFrame],
        images: int,  # images expired
        bytes: int,  # storage bytes expired (index children counted once, indexes 0)
        transitioned_images: int = 0,
        transitioned_bytes: int = 0,
        by_rule: dict[int, int] | None = None,  # rulePriority → images acted on
        notes: list[str] | None = None,
        *,
        expired_digests: list[str] | None = None,
        transitioned_digests: list[str] | None = None,
    ) -> None:
        self.repository = repository
        self._actions = actions
        self.images = images
        self.bytes = bytes
        self.transitioned_images = transitioned_images
        self.transitioned_bytes = transitioned_bytes
        self.by_rule = by_rule if by_rule is not None else {}
        self.notes = notes if notes is not None else []
        self._expired = expired_digests
        self._transitioned = transitioned_digests

    def __repr__(self) -> str:
        return (
            f"PreviewResult(repository={self.repository!r}, images={self.images}, "
            f"bytes={self.bytes}, transitioned_images={self.transitioned_images})"
        )

    @property
    def actions(self) -> pd.DataFrame:
        if not isinstance(self._actions, pd.DataFrame):
            self._actions = self._actions()
        return self._actions

    @property
    def expired_digests(self) -> list[str]:
        if self._expired is not None:
            return list(self._expired)
        rows = self.actions[self.actions["action"] == "expire"]
        return [str(d) for d in rows["digest"]]

    @property
    def transitioned_digests(self) -> list[str]:
        if self._transitioned is not None:
            return list(self._transitioned)
        rows = self.actions[self.actions["action"] == "transition"]
        return [str(d) for d in rows["digest"]]

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "images": self.images,
            "bytes": self.bytes,
            "transitioned_images": self.transitioned_images,
            "transitioned_bytes": self.transitioned_bytes,
            "by_rule": {str(k): v for k, v in sorted(self.by_rule.items())},
            "notes": list(self.notes),
            "actions": [
                {
                    "digest": str(row.digest),
                    "rule_priority": int(row.rule_priority),
                    "action": str(row.action),
                    "via": None if pd.isna(row.via) else str(row.via),
                    "tags": list(row.tags),
                    "pushed_at": None if pd.isna(row.pushed_at) else row.pushed_at.isoformat(),
                    "bytes": int(row.bytes),
                }
                for row in self.actions.itertuples(index=False)
            ],
        }


def _tag_match(exploded: pd.Series, n: int, entries: tuple[str, ...], *, prefix: bool) -> Any:
    """Boolean array: the image has, for every entry, at least one tag matching it.

    ``exploded`` holds each image's tags, indexed by the image's position (0 … n-1)."""
    result = np.ones(n, dtype=bool)
    owner = exploded.index.to_numpy()
    for entry in entries:
        if prefix:
            hit = exploded.str.startswith(entry, na=False)
        else:
            hit = exploded.str.fullmatch(pattern_regex(entry).pattern, na=False)
        # any hit per image: how many tags of each image match, more than none
        result &= np.bincount(owner[hit.to_numpy(dtype=bool)], minlength=n)[:n] > 0
    return result


def _selection(rule: LifecycleRule, frame: pd.DataFrame, exploded: pd.Series, tagged: Any) -> Any:
    n = len(frame)
    if rule.tag_status == "untagged":
        return ~tagged
    if rule.tag_status == "any":
        return np.ones(n, dtype=bool)
    if rule.tag_status != "tagged":
        raise LifecycleError(
            f"rulePriority {rule.rule_priority}: selection.tagStatus {rule.tag_status!r} "
            "is not one of tagged | untagged | any"
        )
    if rule.tag_pattern_list:
        return tagged & _tag_match(exploded, n, rule.tag_pattern_list, prefix=False)
    if rule.tag_prefix_list:
        return tagged & _tag_match(exploded, n, rule.tag_prefix_list, prefix=True)
    return np.zeros(n, dtype=bool)  # ECR refuses such a rule; select nothing


def _clock(
    rule: LifecycleRule, frame: pd.DataFrame, never_pulled: NeverPulled, notes: list[str]
) -> pd.Series:
    if rule.count_type == "sinceImagePushed":
        return frame["pushed_at"]
    if rule.count_type == "sinceImagePulled":
        pulled = frame["last_pull"]
        return pulled.fillna(frame["pushed_at"]) if never_pulled == "pushed" else pulled
    if rule.count_type == "sinceImageTransitioned":
        if "archived_at" in frame:
            return pd.to_datetime(frame["archived_at"], utc=True)
        notes.append(
            f"rulePriority {rule.rule_priority}: the inventory has no archive times "
            "(archived_at); sinceImageTransitioned selects nothing in this preview"
        )
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    raise LifecycleError(
        f"rulePriority {rule.rule_priority}: selection.countType {rule.count_type!r} "
        "is not one of imageCountMoreThan | sinceImagePushed | sinceImagePulled | "
        "sinceImageTransitioned"
    )


def preview_policy(
    policy: LifecyclePolicy | str,
    images: pd.DataFrame,
    *,
    now: datetime,
    repository: str | None = None,
    never_pulled: NeverPulled = "pushed",
) -> PreviewResult:
    """Which images of one repository ``policy`` would expire or transition at ``now``.

    ``images`` is the inventory images frame (``hygiene.inventory.IMAGE_DTYPES``), of one
    repository or filtered by ``repository``. Pure: no I/O.
    """
    if isinstance(policy, str):
        policy = parse_policy(policy)
    frame = images
    if repository is not None:
        frame = images[images["repository"].astype(str) == repository]
    elif len(images) and images["repository"].astype(str).nunique() > 1:
        raise LifecycleError("a lifecycle preview runs on one repository; pass repository=")
    frame = frame.reset_index(drop=True)
    n = len(frame)
    notes: list[str] = []

    digests = frame["digest"].astype(str).to_numpy()
    present = set(digests)
    parents = frame["parent_indexes"].map(lambda ps: [p for p in ps if p in present])
    is_child = parents.map(bool).to_numpy(dtype=bool)
    subjects = frame["subject_digest"].astype(object)
    is_referrer = (
        subjects.notna().to_numpy(dtype=bool)
        & ~frame["is_signature_tag"].to_numpy(dtype=bool)
        & subjects.isin(present).to_numpy(dtype=bool)
    )
    eligible = ~is_child & ~is_referrer
    status = frame["status"].astype(object).to_numpy()
    storage = np.where(
        status == "ARCHIVED", "archive", np.where(status == "ACTIVATING", "none", "standard")
    )
    tagged = frame["tag_count"].to_numpy() > 0
    exploded = frame["tags"].explode()
    exploded = exploded[exploded.notna()].astype(str)

    # newest first; ties broken by digest so the result never depends on row order
    order = frame.sort_values(["pushed_at", "digest"], ascending=[False, True]).index.to_numpy()

    claimed = np.zeros(n, dtype=bool)
    rule_of = np.zeros(n, dtype=np.int64)  # 0 = no rule (ECR priorities are >= 1)
    action_of = np.full(n, "", dtype=object)
    for rule in policy.ordered():
        selected = (
            eligible & (storage == rule.storage_class) & _selection(rule, frame, exploded, tagged)
        )
        if rule.count_type == "imageCountMoreThan":
            in_order = selected[order]
            position = np.cumsum(in_order)
            beyond = np.zeros(n, dtype=bool)
            beyond[order] = in_order & (position > rule.count_number)
            candidates = beyond
        else:
            clock = _clock(rule, frame, never_pulled, notes)
            limit = pd.Timestamp(now) - timedelta(days=rule.count_number)
            candidates = (clock < limit).fillna(False).to_numpy(dtype=bool)
        acted = selected & candidates & ~claimed
        rule_of[acted] = rule.rule_priority
        action_of[acted] = rule.action
        claimed |= selected

    rows = _expand_units(frame, digests, parents, rule_of, action_of, is_referrer)
    actions = pd.DataFrame(rows, columns=["row", "rule_priority", "action", "via"])
    actions = actions.sort_values(["rule_priority", "row"], kind="stable")
    picked = frame.loc[actions["row"].to_numpy()]
    out = pd.DataFrame(
        {
            "digest": picked["digest"].to_numpy(),
            "rule_priority": actions["rule_priority"].to_numpy(dtype=np.int64),
            "action": actions["action"].to_numpy(),
            "via": pd.array(actions["via"].tolist(), dtype="string"),
            "tags": picked["tags"].to_numpy(),
            "pushed_at": picked["pushed_at"].to_numpy(),
            "bytes": picked["storage_bytes"].to_numpy(dtype=np.int64),
        },
        columns=ACTION_COLUMNS,
    )
    out["pushed_at"] = pd.to_datetime(out["pushed_at"], utc=True)
    out = out.astype(ACTION_DTYPES)
    expired = out["action"] == "expire"
    moved = out["action"] == "transition"
    return PreviewResult(
        repository=repository if repository is not None else _only_repository(frame),
        actions=out.reset_index(drop=True),
        images=int(expired.sum()),
        bytes=int(out.loc[expired, "bytes"].sum()),
        transitioned_images=int(moved.sum()),
        transitioned_bytes=int(out.loc[moved, "bytes"].sum()),
        by_rule={int(k): int(v) for k, v in out.groupby("rule_priority").size().items()},
        notes=sorted(set(notes)),
    )


def _only_repository(frame: pd.DataFrame) -> str | None:
    return str(frame["repository"].iloc[0]) if len(frame) else None


def _expand_units(
    frame: pd.DataFrame,
    digests: Any,
    parents: pd.Series,
    rule_of: Any,
    action_of: Any,
    is_referrer: Any,
) -> list[tuple[int, int, str, str | None]]:
    """Add index children and referrers to the images the rules acted on.

    A child goes with its index only when every index listing it goes too (an index that
    stays keeps its children). Referrers go with their subject, recursively. An image
    reached both by an expire and a transition is expired.
    """
    row_of = {d: i for i, d in enumerate(digests)}
    decided: dict[int, tuple[int, str, str | None]] = {
        int(i): (int(rule_of[i]), str(action_of[i]), None) for i in np.flatnonzero(rule_of)
    }
    subject_list = frame["subject_digest"].astype(object).tolist()
    referrers: dict[str, list[int]] = {}
    for i in np.flatnonzero(is_referrer):
        referrers.setdefault(str(subject_list[i]), []).append(int(i))
    child_lists = frame["child_digests"].tolist()
    parent_lists = parents.tolist()
    children_of = {
        int(i): [row_of[c] for c in child_lists[i] if c in row_of]
        for i in np.flatnonzero(frame["is_index"].to_numpy(dtype=bool))
    }
    pending = list(decided)
    while pending:  # worklist: each decided image is expanded once per decision
        root = pending.pop()
        priority, action, _via = decided[root]
        root_digest = str(digests[root])
        members = list(referrers.get(root_digest, []))
        members += [
            child
            for child in children_of.get(root, [])
            if all(row_of[p] in decided for p in parent_lists[child])
        ]
        for member in members:
            current = decided.get(member)
            # unit members are never acted on by a rule directly (children and
            # referrers are not selectable); an expire beats a transition
            upgrade = current is not None and current[1] == "transition" and action == "expire"
            if current is None or upgrade:
                decided[member] = (priority, action, root_digest)
                pending.append(member)
    return [(row, p, a, via) for row, (p, a, via) in sorted(decided.items())]
