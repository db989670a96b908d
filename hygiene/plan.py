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
from typing import Any, Protocol

from hygiene.config import Config
from hygiene.findingtable import Findings
from hygiene.inventory import Inventory, cell_text
from hygiene.model import Action, Finding, FixSafety, Proposal, iso_utc, proposal_id
from hygiene.plancolumns import columnar_image_proposals, image_deletions, in_keys
from hygiene.planscope import (
    Scope,
    finding_safety,
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
    repos = {key: scope.repositories.get(key) for key in by_repository}
    # the entries of every abandoned repository, made at once
    entries = scope.images_of_many(k for k, r in repos.items() if r and int(r["image_count"]))
    for key, group in sorted(by_repository.items()):
        account, region, repository = key
        repo = repos[key]
        codes = sorted({f.code for f in group})
        evidence: dict[str, Any] = {
            "rule_codes": codes,
            "image_count": int(repo["image_count"]) if repo else 0,
            "created_at": iso_utc(repo["created_at"]) if repo else None,
        }
        images = entries[key] if evidence["image_count"] else []
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
    repositories = inventory.repositories
    # the repositories are scoped; the images need not be: the preview reads only the
    # images of the repositories it proposes for (no copy of a million rows' columns)
    scoped = Inventory(
        images=inventory.images,
        repositories=repositories[in_keys(repositories, "name", flagged)],
        run=inventory.run,
        # the images workloads run: a policy that would expire one is shielded or not
        # proposed (hygiene.lifecycle.propose)
        in_use=inventory.in_use,
    )
    return propose_lifecycle(scoped, scope.config, scope.now)


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
        keep = image_deletions(found, proposes, broken)
        run = inventory.run
        checked = [s.name for s in run.in_use if s.state == "ok"] if run.in_use else None
        fast = columnar_image_proposals(found, keep, inventory, checked)
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
