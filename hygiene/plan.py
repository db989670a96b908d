"""Plan: turn findings into proposals (pure: no I/O, no clock).

- Image findings (IM001–IM004) → one ``delete-images`` proposal per repository and fix
  safety: IM001/IM004 are safe, IM002/IM003 unsafe. A unit (an index and its children,
  an image and its referrers: ``Finding.details["unit"]``) is never split; a unit any
  safe finding covers goes to the safe proposal.
- RP001 → ``delete-repository``; SC001 → ``enable-scan-on-push`` (safe);
  SC002 → ``set-tag-immutability`` to IMMUTABLE_WITH_EXCLUSION (unsafe);
  SC004 → ``remove-policy-statement`` (unsafe).
- ``put-lifecycle-policy`` proposals come from :mod:`hygiene.lifecycle`.

Evidence holds what the proposal was decided on (digests, tags, push/pull times, bytes,
rule codes, current settings); apply compares it with the live registry before any
write. It holds nothing that changes by itself from night to night, so proposal ids are
stable while the registry is.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from hygiene.config import Config
from hygiene.findingtable import Findings, ImageFindings, offset_iso_strings
from hygiene.inventory import Inventory, cell_text
from hygiene.model import Action, Finding, FixSafety, Proposal, iso_utc, proposal_id
from hygiene.units import human_bytes

IMAGE_RULES = {"IM001": FixSafety.SAFE, "IM004": FixSafety.SAFE}
IMAGE_RULES.update({"IM002": FixSafety.UNSAFE, "IM003": FixSafety.UNSAFE})
DEFAULT_MUTABLE_TAGS = ("latest",)
REPOSITORY_ACTIONS = {
    "RP001": (Action.DELETE_REPOSITORY, FixSafety.UNSAFE),
    "SC001": (Action.ENABLE_SCAN_ON_PUSH, FixSafety.SAFE),
    "SC002": (Action.SET_TAG_IMMUTABILITY, FixSafety.UNSAFE),
    "SC004": (Action.REMOVE_POLICY_STATEMENT, FixSafety.UNSAFE),
}


class EvaluationLike(Protocol):
    """What plan reads from :class:`hygiene.rules.Evaluation`."""

    @property
    def findings(self) -> Sequence[Finding]: ...


def _where(repo_key: tuple[str, str, str]) -> dict[str, Any]:
    """Account, region and repository go into every id: replicated registries hold the
    same digests in several regions, and each deletion there is a separate proposal."""
    account, region, repository = repo_key
    return {"account": account, "region": region, "repository": repository}


def _image_index(inventory: Inventory) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    images = inventory.images
    index: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    columns = ["account", "region", "repository", "digest", "tags", "pushed_at", "last_pull"]
    columns += ["size_bytes", "storage_bytes", "manifest_media_type", "is_index"]
    for row in images[columns].itertuples(index=False):
        key = (str(row.account), str(row.region), str(row.repository), str(row.digest))
        index[key] = {
            "digest": str(row.digest),
            "tags": sorted(str(t) for t in row.tags),
            "pushed_at": iso_utc(row.pushed_at),
            "last_pull": iso_utc(row.last_pull),
            "bytes": int(row.storage_bytes),
            "size_bytes": int(row.size_bytes),
            "media_type": None
            if pd.isna(row.manifest_media_type)
            else str(row.manifest_media_type),
            "is_index": bool(row.is_index),
        }
    return index


class _Repositories:
    """The repositories frame by (account, region, name): each row as a dict when asked
    (a plan reads few), the last one when a key is there twice (as a dict built from
    every row would hold)."""

    def __init__(self, inventory: Inventory) -> None:
        frame = inventory.repositories
        self.frame = frame
        keys = zip(
            frame["account"].astype(str),
            frame["region"].astype(str),
            frame["name"].astype(str),
            strict=True,
        )
        self.rows = {key: position for position, key in enumerate(keys)}
        errors = frame["scan_error"].astype(object).tolist()
        self.broken = {key for key, p in self.rows.items() if cell_text(errors[p]) is not None}
        self._columns: dict[str, list[Any]] | None = None

    def get(self, key: tuple[str, str, str]) -> dict[str, Any] | None:
        position = self.rows.get(key)
        if position is None:
            return None
        if self._columns is None:
            self._columns = {c: self.frame[c].tolist() for c in self.frame.columns}
        return {column: values[position] for column, values in self._columns.items()}


def _image_proposals(
    findings: list[Finding],
    images: dict[tuple[str, str, str, str], dict[str, Any]],
    in_use_checked: list[str] | None = None,
) -> list[Proposal]:
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
                not any(IMAGE_RULES.get(f.code) == FixSafety.SAFE for f in item[1]),
                item[0],
            ),
        )
        for unit, unit_findings in ordered:
            fresh = tuple(d for d in unit if d not in claimed)
            if not fresh:
                continue
            claimed.update(fresh)
            safe = any(IMAGE_RULES.get(f.code) == FixSafety.SAFE for f in unit_findings)
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
                    id=proposal_id(Action.DELETE_IMAGES, _where(repo_key) | target, evidence),
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

    None when the shortcut's conditions do not hold, and the caller takes the general
    path: every unit is its own finding's (the engine's units are disjoint), no digest
    is twice in a repository, and the unit rows point at this inventory's images.
    """
    chosen = np.flatnonzero(keep)
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
    if len(members) and int(members.max()) >= len(images):
        return None
    digests = [found.unit_digests[i] for i in take.tolist()]
    if pylist_strings(images["digest"], members) != digests:
        return None  # not the inventory the findings were made from

    sub = images.iloc[members]
    for column, values in (
        ("repository", found.repository),
        ("region", found.region),
        ("account", found.account),
    ):
        expected = np.repeat(np.array(values, dtype=object)[chosen], lengths)
        if not np.array_equal(sub[column].astype(object).to_numpy(), expected):
            return None  # not the inventory the findings were made from

    # the members' evidence entries, as _image_index writes them
    media = sub["manifest_media_type"].astype(object)
    infos = [
        {
            "digest": digest,
            "tags": [*tags] if len(tags) < 2 and _texts(tags) else sorted(map(str, tags)),
            "pushed_at": pushed,
            "last_pull": pulled,
            "bytes": stored,
            "size_bytes": size,
            "media_type": None if kind is None or kind != kind else str(kind),
            "is_index": index,
        }
        for digest, tags, pushed, pulled, stored, size, kind, index in zip(
            digests,
            sub["tags"].tolist(),
            offset_iso_strings(_ns(sub["pushed_at"])),
            offset_iso_strings(_ns(sub["last_pull"])),
            sub["storage_bytes"].to_numpy(dtype=np.int64).tolist(),
            sub["size_bytes"].to_numpy(dtype=np.int64).tolist(),
            media.tolist(),
            sub["is_index"].to_numpy(dtype=bool).tolist(),
            strict=True,
        )
    ]
    positions = np.concatenate([[0], np.cumsum(lengths)]).tolist()

    # group by repository (in key order), safe units first, then by root digest
    codes = [found.rules[r].code for r in found.rule[chosen].tolist()]
    where = [(found.account[i], found.region[i], found.repository[i]) for i in chosen.tolist()]
    keys = sorted(set(where))
    rank = {key: n for n, key in enumerate(keys)}
    unsafe = [IMAGE_RULES[code] != FixSafety.SAFE for code in codes]
    roots = [digests[p] for p in positions[:-1]]
    order = sorted(range(len(chosen)), key=lambda k: (rank[where[k]], unsafe[k], roots[k]))
    namespaces: dict[tuple[str, str, str], str | None] = {}
    for k, i in enumerate(chosen.tolist()):
        namespaces[where[k]] = found.namespace[i]  # the last finding's, as in the loop

    proposals = []
    start = 0
    while start < len(order):
        first = order[start]
        stop = start
        while (
            stop < len(order)
            and where[order[stop]] == where[first]
            and unsafe[order[stop]] == unsafe[first]
        ):
            stop += 1
        group = order[start:stop]
        start = stop
        account, region, repository = where[first]
        evidence_images: list[dict[str, Any]] = []
        units: list[list[str]] = []
        rule_codes: dict[str, list[str]] = {}
        for k in group:
            unit = digests[positions[k] : positions[k + 1]]
            evidence_images += infos[positions[k] : positions[k + 1]]
            units.append(unit if len(unit) < 2 else sorted(unit))
            for digest in unit:
                rule_codes[digest] = [codes[k]]
        target = {
            "digests": [i["digest"] for i in evidence_images if i["is_index"]]
            + [i["digest"] for i in evidence_images if not i["is_index"]]
        }
        group_codes = sorted({codes[k] for k in group})
        evidence = {
            "images": sorted(evidence_images, key=_by_digest),
            "units": sorted(units),
            "rule_codes": dict(sorted(rule_codes.items())),
        }
        if in_use_checked is not None:
            # the in-use sources read by the scan that proposed it (docs/in-use.md)
            evidence["in_use_checked"] = in_use_checked
        total = sum(i["bytes"] for i in evidence_images)
        where_target = _where((account, region, repository)) | target
        proposals.append(
            Proposal(
                id=proposal_id(Action.DELETE_IMAGES, where_target, evidence, plain=True),
                action=Action.DELETE_IMAGES,
                account=account,
                region=region,
                repository=repository,
                namespace=namespaces[(account, region, repository)],
                target=target,
                evidence=evidence,
                rule_codes=tuple(group_codes),
                fix_safety=FixSafety.UNSAFE if unsafe[first] else FixSafety.SAFE,
                bytes=total,
                summary=(
                    f"delete {len(target['digests'])} image(s) in {len(group)} unit(s) from "
                    f"{repository}, {human_bytes(total)} ({', '.join(group_codes)})"
                ),
            )
        )
    return proposals


def _texts(values: list[Any]) -> bool:
    return all(type(v) is str for v in values)


def _by_digest(info: dict[str, Any]) -> str:
    return str(info["digest"])


def _ns(values: pd.Series) -> np.ndarray:
    return values.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").view(np.int64)


def pylist_strings(values: pd.Series, rows: np.ndarray) -> list[str | None]:
    """``values`` at ``rows`` as Python strings (a string column; no per-row pandas)."""
    import pyarrow as pa

    array = pa.array(values.array, type=pa.string()) if len(values) else pa.array([], pa.string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.take(pa.array(rows, type=pa.int64())).to_pylist()


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
    action, safety = REPOSITORY_ACTIONS[finding.code]
    repository = finding.repository or ""
    target: dict[str, Any]
    evidence: dict[str, Any] = {"rule_codes": [finding.code]}
    if action == Action.DELETE_REPOSITORY:
        target = {"repository": repository}
        evidence["image_count"] = int(repo["image_count"]) if repo else 0
        evidence["created_at"] = iso_utc(repo["created_at"]) if repo else None
        summary = f"delete empty repository {repository}"
    elif action == Action.ENABLE_SCAN_ON_PUSH:
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
    else:
        policy_text = cell_text(repo["repository_policy"]) if repo else None
        if finding.details.get("invalid"):
            return None  # unreadable policy: a person has to look at it
        statements = _statements_to_remove(finding.details, policy_text, finding.account)
        if not statements or policy_text is None:
            return None
        target = {"statements": statements}
        evidence["policy"] = policy_text
        summary = f"remove {len(statements)} public/foreign statement(s) from {repository}'s policy"
    return Proposal(
        id=proposal_id(
            action, _where((finding.account, finding.region, repository)) | target, evidence
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


def plan(
    evaluation: EvaluationLike, inventory: Inventory, config: Config, now: datetime
) -> list[Proposal]:
    """Proposals for every finding with a fix (pure; ``now`` is unused but kept for
    symmetry with the other stages and future time-dependent evidence).

    Findings in repositories the scan did not read completely are ignored, and so are
    image findings of a scan whose in-use sources were not all read (the rules engine
    already keeps every image then; this makes sure of it).
    """
    del now
    repos = _Repositories(inventory)
    broken = repos.broken

    def readable(f: Finding) -> bool:
        return f.repository is not None and (f.account, f.region, f.repository) not in broken

    every = evaluation.findings
    # a scan whose in-use sources were not all read proposes no image deletion
    in_use_failed = inventory.run.in_use_failed
    checked = (
        [s.name for s in inventory.run.in_use if s.state == "ok"] if inventory.run.in_use else None
    )
    proposals: list[Proposal] | None = None
    if isinstance(every, Findings) and every.image is not None:
        found = every.image
        readable_rows = [
            not in_use_failed and (a, r, repo) not in broken and code in IMAGE_RULES
            for a, r, repo, code in zip(
                found.account, found.region, found.repository, found.codes(), strict=True
            )
        ]
        proposals = _columnar_image_proposals(
            found, np.array(readable_rows, dtype=bool), inventory, checked
        )
    if proposals is not None:
        findings = [f for f in every.other if readable(f)]  # type: ignore[attr-defined]
    else:
        findings = [f for f in every if readable(f)]
        image_findings = [f for f in findings if f.code in IMAGE_RULES]
        if in_use_failed:
            image_findings = []
        proposals = _image_proposals(image_findings, _image_index(inventory), checked)
    seen: set[str] = {p.id for p in proposals}
    for finding in findings:
        if finding.code not in REPOSITORY_ACTIONS:
            continue
        key = (finding.account, finding.region, finding.repository or "")
        proposal = _repository_proposal(finding, repos.get(key))
        if proposal is not None and proposal.id not in seen:
            seen.add(proposal.id)
            proposals.append(proposal)
    return sorted(proposals, key=lambda p: (p.account, p.region, p.repository, p.action, p.id))
