"""Plan: turn findings into proposals (pure: no I/O, no clock).

The rule is the one source of its fix: each rule declares the action it proposes
(``@rule(..., action=...)``, :mod:`hygiene.rules.base`) and its fix safety, and the plan
dispatches every finding through that declaration to the proposer of the action
(:data:`PROPOSERS`, one call per action with all of its findings):

- ``delete-images`` (IM001–IM004): one proposal per repository and fix safety. A unit
  (an index and its children, an image and its referrers: ``Finding.details["unit"]``)
  is never split; a unit any safe finding covers goes to the safe proposal.
- ``delete-repository`` (RP001 empty, RP003 abandoned): one proposal per repository;
  an abandoned repository's evidence lists every image in it (apply deletes them first,
  saving their manifests, and refuses if anything changed).
- ``put-lifecycle-policy`` (RP002): the policy generated from the rules config
  (:mod:`hygiene.lifecycle`).
- ``enable-scan-on-push`` (SC001), ``set-tag-immutability`` (SC002),
  ``remove-policy-statement`` (SC004).

A rule with a manual fix proposes nothing. Findings in repositories the scan did not
read completely propose nothing either.

Evidence holds what the proposal was decided on (digests, tags, push/pull times, bytes,
rule codes, current settings); apply compares it with the live registry before any
write. It holds nothing that changes by itself from night to night, so proposal ids are
stable while the registry is.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hygiene.config import Config
from hygiene.findingtable import Findings, ImageFindings, offset_iso_strings
from hygiene.inventory import Inventory, cell_text
from hygiene.model import Action, Finding, FixSafety, Proposal, iso_utc, proposal_id
from hygiene.planscope import (
    Scope,
    arrow_strings,
    code_safety,
    finding_safety,
    ns_ints,
    repo_where,
)
from hygiene.rules import RULES
from hygiene.units import human_bytes

DEFAULT_MUTABLE_TAGS = ("latest",)


class EvaluationLike(Protocol):
    """What plan reads from :class:`hygiene.rules.Evaluation`."""

    @property
    def findings(self) -> Sequence[Finding]: ...


def _image_proposals(findings: list[Finding], scope: Scope) -> list[Proposal]:
    """``delete-images``: one proposal per repository and fix safety. A unit (an index
    and its children, an image and its referrers: ``Finding.details["unit"]``) is never
    split; a unit any safe finding covers goes to the safe proposal. The evidence names
    the in-use sources the scan read (docs/in-use.md)."""
    images = scope.images
    run = scope.inventory.run
    in_use_checked = [s.name for s in run.in_use if s.state == "ok"] if run.in_use else None
    # (account, region, repository) → unit (tuple of digests) → [findings]
    units: dict[tuple[str, str, str], dict[tuple[str, ...], list[Finding]]] = defaultdict(dict)
    namespaces: dict[tuple[str, str, str], str | None] = {}
    for finding in findings:
        if finding.repository is None or finding.image_digest is None:
            continue
        repo_key = (finding.account, finding.region, finding.repository)
        namespaces[repo_key] = finding.namespace
        unit = tuple(finding.details.get("unit") or (finding.image_digest,))
        units[repo_key].setdefault(unit, []).append(finding)

    proposals = []
    for repo_key, by_unit in sorted(units.items()):
        account, region, repository = repo_key
        claimed: set[str] = set()
        split: dict[FixSafety, list[tuple[tuple[str, ...], list[Finding]]]] = defaultdict(list)
        # Safe units first, so a digest flagged by a safe and an unsafe rule goes the safe way.
        ordered = sorted(
            by_unit.items(),
            key=lambda item: (
                not any(finding_safety(f) is FixSafety.SAFE for f in item[1]),
                item[0],
            ),
        )
        for unit, unit_findings in ordered:
            fresh = tuple(d for d in unit if d not in claimed)
            if not fresh:
                continue
            claimed.update(fresh)
            safe = any(finding_safety(f) is FixSafety.SAFE for f in unit_findings)
            split[FixSafety.SAFE if safe else FixSafety.UNSAFE].append((fresh, unit_findings))
        for safety, chosen in split.items():
            evidence_images = []
            codes_by_digest: dict[str, set[str]] = defaultdict(set)
            for unit, unit_findings in chosen:
                for finding in unit_findings:
                    for digest in unit:
                        codes_by_digest[digest].add(finding.code)
                for digest in unit:
                    info = images.get((account, region, repository, digest))
                    evidence_images.append(info or {"digest": digest, "tags": [], "bytes": 0})
            # Indexes first (ECR refuses to delete a child an index still lists).
            digests = [i["digest"] for i in evidence_images if i.get("is_index")]
            digests += [i["digest"] for i in evidence_images if not i.get("is_index")]
            codes = sorted({c for cs in codes_by_digest.values() for c in cs})
            evidence = {
                "images": sorted(evidence_images, key=lambda i: i["digest"]),
                "units": sorted(sorted(u) for u, _ in chosen),
                "rule_codes": {d: sorted(c) for d, c in sorted(codes_by_digest.items())},
            }
            if in_use_checked is not None:
                # the in-use sources read by the scan that proposed it (docs/in-use.md)
                evidence["in_use_checked"] = in_use_checked
            target = {"digests": digests}
            total = sum(int(i.get("bytes") or 0) for i in evidence_images)
            proposals.append(
                Proposal(
                    id=proposal_id(Action.DELETE_IMAGES, repo_where(repo_key) | target, evidence),
                    action=Action.DELETE_IMAGES,
                    account=account,
                    region=region,
                    repository=repository,
                    namespace=namespaces[repo_key],
                    target=target,
                    evidence=evidence,
                    rule_codes=tuple(codes),
                    fix_safety=safety,
                    bytes=total,
                    summary=(
                        f"delete {len(digests)} image(s) in {len(chosen)} unit(s) from "
                        f"{repository}, {human_bytes(total)} ({', '.join(codes)})"
                    ),
                )
            )
    return proposals


def _columnar_image_proposals(
    found: ImageFindings,
    keep: np.ndarray,
    inventory: Inventory,
    in_use_checked: list[str] | None = None,
) -> list[Proposal] | None:
    """:func:`_image_proposals` of the image findings ``keep`` selects, read from the
    findings' columns and the inventory's (the same proposals, ids and evidence; tested
    against it on generated registries).

    Several rules may flag one image: each gives its own finding, with the same unit;
    the unit is proposed once, with every rule's code, and goes the safe way when any of
    them is safe (as in :func:`_image_proposals`).

    None when the shortcut's conditions do not hold, and the caller takes the general
    path: every unit is its own root's (the engine's units are disjoint), no digest is
    twice in a repository, and the unit rows point at this inventory's images.

    The orderings are computed on columns (the proposals' order, each proposal's units,
    evidence entries and target); what :func:`_image_proposals` sorts as Python strings
    is sorted here by Arrow, whose byte order of UTF-8 is Python's order of code points.
    """
    if len(found.rules) > 62:
        return None  # the codes of a unit are a bit mask of its rules below
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
    if member_digests.to_pylist() != digests.tolist():
        return None  # not the inventory the findings were made from
    sub = images[["account", "region", "repository", "is_index", "storage_bytes"]].iloc[members]
    where_columns = {}
    for column, values in (
        ("repository", found.repository),
        ("region", found.region),
        ("account", found.account),
    ):
        of_unit = _objects(values)[chosen]
        if not np.array_equal(sub[column].astype(object).to_numpy(), np.repeat(of_unit, lengths)):
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
    is_index = sub["is_index"].to_numpy(dtype=bool)

    # evidence entries (and rule codes), by group then digest
    order_by_digest = _sort_indices(("group", member_group), ("digest", member_digests))
    member_bounds = np.searchsorted(member_group[order_by_digest], np.arange(n_groups + 1))
    digests_by_digest = digests[order_by_digest].tolist()
    entries = _evidence_entries(
        images[ENTRY_COLUMNS].iloc[members[order_by_digest]], digests_by_digest
    )
    codes_of_member = codes_of.lists(unit_masks)[member_unit[order_by_digest]].tolist()
    stored = sub["storage_bytes"].to_numpy(dtype=np.int64)[order_by_digest]
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
    unit_lists = [sorted_members[bounds[k] : bounds[k + 1]] for k in range(n_units)]
    _, least = np.unique(member_unit[order_by_digest], return_index=True)
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
    :func:`_image_proposals` keeps the last)."""
    last = np.full(n_keys, -1, dtype=np.int64)
    np.maximum.at(last, combo, np.arange(len(chosen)))
    return [namespaces[i] for i in chosen[last].tolist()]


ENTRY_COLUMNS = ["tags", "pushed_at", "last_pull", "storage_bytes", "size_bytes"]
ENTRY_COLUMNS += ["manifest_media_type", "is_index"]


def _evidence_entries(frame: pd.DataFrame, digests: list[str]) -> list[dict[str, Any]]:
    """The evidence entry of each image row of ``frame`` (whose digests are ``digests``),
    as :func:`hygiene.planscope.evidence_entry` writes it."""
    tag_lists = frame["tags"].tolist()
    if all(type(tag) is str for tags in tag_lists for tag in tags):
        tags_of = [sorted(tags) if len(tags) > 1 else [*tags] for tags in tag_lists]
    else:
        tags_of = [sorted(map(str, tags)) for tags in tag_lists]
    media = frame["manifest_media_type"]
    if isinstance(media.dtype, pd.CategoricalDtype):
        names = _objects([str(c) for c in media.cat.categories] + [None])
        media_of = names[media.cat.codes.to_numpy()].tolist()  # code -1 (missing): None
    else:
        media_of = [None if k is None or k != k else str(k) for k in media.astype(object)]
    return [
        {
            "digest": digest,
            "tags": tags,
            "pushed_at": pushed,
            "last_pull": pulled,
            "bytes": stored,
            "size_bytes": size,
            "media_type": kind,
            "is_index": index,
        }
        for digest, tags, pushed, pulled, stored, size, kind, index in zip(
            digests,
            tags_of,
            offset_iso_strings(ns_ints(frame["pushed_at"])),
            offset_iso_strings(ns_ints(frame["last_pull"])),
            frame["storage_bytes"].to_numpy(dtype=np.int64).tolist(),
            frame["size_bytes"].to_numpy(dtype=np.int64).tolist(),
            media_of,
            frame["is_index"].to_numpy(dtype=bool).tolist(),
            strict=True,
        )
    ]


def _public_statements(policy_text: str | None, account: str) -> list[dict[str, Any]]:
    """Statements that allow ``*`` or a foreign account (used when SC004 gives none)."""
    if not policy_text:
        return []
    try:
        statements = json.loads(policy_text).get("Statement", [])
    except (ValueError, AttributeError):
        return []
    if isinstance(statements, dict):
        statements = [statements]
    found = []
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        values: list[str] = []
        if principal == "*":
            values = ["*"]
        elif isinstance(principal, dict):
            aws = principal.get("AWS", [])
            values = [aws] if isinstance(aws, str) else list(aws)
        if any(v == "*" or (account not in v) for v in values):
            found.append(statement)
    return found


def _statements_to_remove(
    details: dict[str, Any], policy_text: str | None, account: str
) -> list[dict[str, Any]]:
    """The full statement objects SC004 flagged.

    The rules engine describes each as ``{"index", "sid", "principals", "actions"}``;
    apply needs the statement itself (it removes statements equal to these), so they
    are looked up in the policy text by index, checked against the Sid. Without
    details, statements granting ``*`` or a foreign account are taken.
    """
    if not policy_text:
        return []
    try:
        document = json.loads(policy_text)
        listed = document.get("Statement", [])
    except (ValueError, AttributeError):
        return []
    listed = [listed] if isinstance(listed, dict) else list(listed)
    described = details.get("statements")
    if not described:
        return _public_statements(policy_text, account)
    found: list[dict[str, Any]] = []
    for entry in described:
        if "Effect" in entry:  # already a statement
            statement: dict[str, Any] | None = entry
        else:
            index, sid = entry.get("index"), entry.get("sid")
            statement = listed[index] if isinstance(index, int) and index < len(listed) else None
            if statement is not None and sid is not None and statement.get("Sid") != sid:
                statement = None
            if statement is None and sid is not None:
                statement = next((s for s in listed if s.get("Sid") == sid), None)
        if statement is not None and statement not in found:
            found.append(statement)
    return found


def _repository_proposal(finding: Finding, repo: dict[str, Any] | None) -> Proposal | None:
    rule = RULES[finding.code]
    action, safety = rule.action, rule.fix_safety
    repository = finding.repository or ""
    target: dict[str, Any]
    evidence: dict[str, Any] = {"rule_codes": [finding.code]}
    if action == Action.ENABLE_SCAN_ON_PUSH:
        target = {"scan_on_push": True}
        evidence["scan_on_push"] = bool(repo["scan_on_push"]) if repo else False
        summary = f"enable scan on push for {repository}"
    elif action == Action.SET_TAG_IMMUTABILITY:
        # SC002's option ``exclusion_filters`` (the floating tags) comes in the details.
        exclusions = list(
            finding.details.get("exclusion_filters")
            or finding.details.get("exclusions")
            or DEFAULT_MUTABLE_TAGS
        )
        wanted = str(finding.details.get("suggested") or "IMMUTABLE_WITH_EXCLUSION")
        target = {"tag_mutability": wanted, "exclusions": exclusions}
        evidence["tag_mutability"] = str(repo["tag_mutability"]) if repo else None
        evidence["exclusions"] = list(repo["tag_mutability_exclusions"]) if repo else []
        summary = f"make tags of {repository} immutable except {', '.join(exclusions)}"
    elif action == Action.REMOVE_POLICY_STATEMENT:
        policy_text = cell_text(repo["repository_policy"]) if repo else None
        if finding.details.get("invalid"):
            return None  # unreadable policy: a person has to look at it
        statements = _statements_to_remove(finding.details, policy_text, finding.account)
        if not statements or policy_text is None:
            return None
        target = {"statements": statements}
        evidence["policy"] = policy_text
        summary = f"remove {len(statements)} public/foreign statement(s) from {repository}'s policy"
    else:
        raise ValueError(f"{finding.code}: no repository-level proposer for {action}")
    return Proposal(
        id=proposal_id(
            action, repo_where((finding.account, finding.region, repository)) | target, evidence
        ),
        action=action,
        account=finding.account,
        region=finding.region,
        repository=repository,
        namespace=finding.namespace,
        target=target,
        evidence=evidence,
        rule_codes=(finding.code,),
        fix_safety=safety,
        summary=summary,
    )


def _repository_proposals(findings: list[Finding], scope: Scope) -> list[Proposal]:
    """One proposal per finding for the repository-level actions."""
    proposals = []
    for finding in findings:
        key = (finding.account, finding.region, finding.repository or "")
        proposal = _repository_proposal(finding, scope.repositories.get(key))
        if proposal is not None:
            proposals.append(proposal)
    return proposals


def _repository_deletions(findings: list[Finding], scope: Scope) -> list[Proposal]:
    """``delete-repository``: one proposal per repository (RP001 empty, RP003 abandoned).

    An abandoned repository still holds images: the evidence lists each one (digest,
    tags, push and pull times, bytes, index or not), so apply can refuse when anything
    changed and save every manifest before deleting it. An empty one keeps the short
    evidence it always had (image count and creation time), so its id does not change.
    """
    by_repository: dict[tuple[str, str, str], list[Finding]] = defaultdict(list)
    for finding in findings:
        by_repository[(finding.account, finding.region, finding.repository or "")].append(finding)
    proposals = []
    for key, group in sorted(by_repository.items()):
        account, region, repository = key
        repo = scope.repositories.get(key)
        codes = sorted({f.code for f in group})
        evidence: dict[str, Any] = {
            "rule_codes": codes,
            "image_count": int(repo["image_count"]) if repo else 0,
            "created_at": iso_utc(repo["created_at"]) if repo else None,
        }
        images = scope.images_of(key) if evidence["image_count"] else []
        total = sum(int(i["bytes"]) for i in images)
        if images:
            evidence["images"] = images
            summary = (
                f"delete abandoned repository {repository} and its {len(images)} image(s), "
                f"{human_bytes(total)} ({', '.join(codes)})"
            )
        else:
            summary = f"delete empty repository {repository}"
        target = {"repository": repository}
        proposals.append(
            Proposal(
                id=proposal_id(Action.DELETE_REPOSITORY, repo_where(key) | target, evidence),
                action=Action.DELETE_REPOSITORY,
                account=account,
                region=region,
                repository=repository,
                namespace=group[0].namespace,
                target=target,
                evidence=evidence,
                rule_codes=tuple(codes),
                fix_safety=min((finding_safety(f) for f in group), key=_SAFETY_ORDER.index),
                bytes=total,
                summary=summary,
            )
        )
    return proposals


# the least safe wins when findings of several rules share one proposal
_SAFETY_ORDER = [FixSafety.MANUAL, FixSafety.UNSAFE, FixSafety.SAFE]


def _lifecycle_proposals(findings: list[Finding], scope: Scope) -> list[Proposal]:
    """``put-lifecycle-policy`` for the repositories flagged (and only those: an ignored
    or muted RP002 proposes nothing), in one call over all of them (one call per
    repository would select among all repositories each time: quadratic)."""
    from hygiene.lifecycle import propose as propose_lifecycle

    flagged = {(f.account, f.region, f.repository) for f in findings if f.repository}
    inventory = scope.inventory
    images, repositories = inventory.images, inventory.repositories

    scoped = Inventory(
        images=images[_in_keys(images, "repository", flagged)],
        repositories=repositories[_in_keys(repositories, "name", flagged)],
        run=inventory.run,
    )
    return propose_lifecycle(scoped, scope.config, scope.now)


def _image_deletions(
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


def _in_keys(frame: pd.DataFrame, name: str, keys: set[tuple[str, str, str]]) -> np.ndarray:
    """Rows of ``frame`` whose (account, region, ``name``) is one of ``keys`` (matched on
    the columns' codes, not on a tuple per row)."""
    if not keys or frame.empty:
        return np.zeros(len(frame), dtype=bool)
    index = pd.MultiIndex.from_arrays([frame["account"], frame["region"], frame[name]])
    return np.asarray(index.isin(list(keys)), dtype=bool)


Proposer = Callable[[list[Finding], Scope], list[Proposal]]

PROPOSERS: dict[Action, Proposer] = {
    Action.DELETE_IMAGES: _image_proposals,
    Action.DELETE_REPOSITORY: _repository_deletions,
    Action.PUT_LIFECYCLE_POLICY: _lifecycle_proposals,
    Action.ENABLE_SCAN_ON_PUSH: _repository_proposals,
    Action.SET_TAG_IMMUTABILITY: _repository_proposals,
    Action.REMOVE_POLICY_STATEMENT: _repository_proposals,
}
"""The proposer of each action a rule may declare (a test checks every one is here)."""


def plan(
    evaluation: EvaluationLike, inventory: Inventory, config: Config, now: datetime
) -> list[Proposal]:
    """Proposals for every finding whose rule declares an action (pure; ``now`` dates the
    lifecycle previews).

    Findings in repositories the scan did not read completely are ignored, and so are
    the image deletions of a scan whose in-use sources were not all read, and its
    deletions of repositories holding images (the rules engine already keeps every image
    and every such repository then; this makes sure of it).
    """
    scope = Scope(inventory, config, now)
    broken = scope.repositories.broken
    in_use_unknown = bool(inventory.run.in_use_failed)

    def proposes(code: str, key: tuple[str, str, str]) -> Action | None:
        """The action a finding of ``code`` on repository ``key`` gets (None: none)."""
        rule = RULES.get(code)
        if rule is None or rule.action is None or key in broken:
            return None
        if in_use_unknown and rule.action is Action.DELETE_IMAGES:
            return None
        if in_use_unknown and rule.action is Action.DELETE_REPOSITORY:
            repo = scope.repositories.get(key)
            if repo is None or int(repo["image_count"]):
                return None
        return rule.action

    every: Sequence[Finding] = evaluation.findings
    columnar: list[Proposal] = []
    by_action: dict[Action, list[Finding]] = defaultdict(list)
    if isinstance(every, Findings) and every.image is not None:
        # the image findings stay columns (hygiene.findingtable): read them as such
        found = every.image
        keep = _image_deletions(found, proposes, broken)
        run = inventory.run
        checked = [s.name for s in run.in_use if s.state == "ok"] if run.in_use else None
        fast = _columnar_image_proposals(found, keep, inventory, checked)
        if fast is not None:
            columnar = fast
        else:  # the general path, on objects
            objects = found.findings(0, len(found))
            by_action[Action.DELETE_IMAGES] += [
                f for f, k in zip(objects, keep.tolist(), strict=True) if k
            ]
        every = every.other
    for finding in every:
        if finding.repository is None:
            continue
        action = proposes(finding.code, (finding.account, finding.region, finding.repository))
        if action is not None:
            by_action[action].append(finding)
    proposals: dict[str, Proposal] = {p.id: p for p in columnar}
    for action in Action:  # a fixed order, whatever order the findings came in
        if by_action.get(action):
            for proposal in PROPOSERS[action](by_action[action], scope):
                proposals.setdefault(proposal.id, proposal)
    return sorted(
        proposals.values(), key=lambda p: (p.account, p.region, p.repository, p.action, p.id)
    )
