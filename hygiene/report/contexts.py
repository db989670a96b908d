"""The template contexts of the two reports: everything the nightly admin report and a
project's weekly report show, built from :class:`ReportData` with the pure views of
:mod:`hygiene.report.views` and the grouped actions of :mod:`hygiene.report.actions`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hygiene.config import Config
from hygiene.inventory import namespace_of
from hygiene.report.actions import (
    OPEN_STATES,
    REJECT_COMMAND,
    ImageRow,
    ProposalImages,
    approval_groups,
    daily_trend,
    deletion_groups,
    finding_groups,
    images_by_proposal,
)
from hygiene.report.data import NO_NAMESPACE, ReportData
from hygiene.report.findingrows import belongs_mask
from hygiene.report.places import places_of
from hygiene.report.views import (
    ACTION_LABELS,
    AGE_LABELS,
    IMAGE_RULE_PREFIX,
    SAFETY_LABELS,
    SEVERITY_LABELS,
    SEVERITY_ORDER,
    STATE_LABELS,
    age_distribution,
    bars,
    changes,
    compliance_scores,
    findings_by_namespace,
    findings_by_rule,
    in_use_sources,
    incomplete_runs,
    keep_reason,
    lifecycle_changes,
    other_changes,
    outcome_totals,
    outcomes,
    proposal_view,
    reasons_by_kind,
    reclaimable_bytes,
    rule_fixes,
    rule_names,
    running_kept,
    trend,
)


def _labels() -> dict[str, Any]:
    return {
        "age_labels": AGE_LABELS,
        "severity_labels": SEVERITY_LABELS,
        "action_labels": ACTION_LABELS,
        "state_labels": STATE_LABELS,
        "safety_labels": SAFETY_LABELS,
        "reject_command": REJECT_COMMAND,
    }


def nightly_context(
    data: ReportData,
    config: Config,
    zone: str,
    rows: Mapping[str, list[ImageRow]] | None = None,
) -> dict[str, Any]:
    settings = config.policy.report
    findings = data.findings
    now = data.generated_at
    rows = rows if rows is not None else images_by_proposal(data.proposals, now)
    views = [proposal_view(p) for p in data.proposals]
    awaiting = [p for p in views if p.get("state") == "proposed"]
    approvals = approval_groups(awaiting)
    for group in approvals:
        if isinstance(rows, ProposalImages):  # made when the report reads them
            group.image_rows = rows.rows_of([str(p["id"]) for p in group.proposals])
        else:
            group.image_rows = [row for p in group.proposals for row in rows.get(p["id"], [])]
    approved = [p for p in views if p.get("state") == "approved"]
    approved.sort(key=lambda p: (p.get("grace_until") or "9999", p.get("repository", ""), p["id"]))
    done = outcomes(data)
    ns_sizes = data.namespace_bytes()
    places = places_of(data)
    return {
        "kind": "nightly",
        "where": places.of,
        "data": data,
        "totals": data.totals,
        "complete": data.complete,
        # no channel: nobody is ever told, so no grace period starts (docs/approvals.md)
        "no_channel": not config.policy.notify.enabled_channels,
        "changes": changes(data),
        "by_rule": findings_by_rule(findings),
        "by_namespace": findings_by_namespace(findings),
        "finding_count": len(findings),
        "rule_names": rule_names(findings),
        "approvals": approvals,
        "awaiting_count": len(awaiting),
        "awaiting_bytes": sum(int(p.get("bytes") or 0) for p in awaiting),
        "approved_waiting": approved,
        "outcomes": done,
        "outcome_totals": outcome_totals(done),
        "reclaimable": reclaimable_bytes(findings),
        "largest": sorted(data.repositories, key=lambda r: (-r.bytes, r.name))[
            : settings.largest_repositories
        ],
        "incomplete": incomplete_runs(data, settings.trend_runs),
        "in_use_sources": in_use_sources(data),
        "running_kept": running_kept(data),
        "namespace_bars": bars((ns or NO_NAMESPACE, size) for ns, size in ns_sizes.items()),
        "trend_days": daily_trend(trend(data, settings.trend_runs), zone, settings.trend_runs),
        "ages": age_distribution(data),
        "mute_warnings": data.mute_warnings,
        "delivery_failures": data.delivery_failures,
        "unregistered": sorted(
            ns for ns in data.namespaces() if ns not in config.projects.projects
        ),
        **_labels(),
    }


def namespace_proposals(data: ReportData, namespace: str) -> list[dict[str, Any]]:
    """The proposals of one namespace's repositories: by the repository (what an
    approval's fingerprint covers), not by a ``namespace`` field that could say another."""
    return [
        p
        for p in data.proposals
        if (
            namespace_of(p["repository"]) == namespace
            if p.get("repository")
            else p.get("namespace") == namespace
        )
    ]


def weekly_context(
    data: ReportData,
    config: Config,
    namespace: str,
    zone: str,
    rows: Mapping[str, list[ImageRow]] | None = None,
) -> dict[str, Any]:
    settings = config.policy.report
    project = config.projects.projects.get(namespace)
    now = data.generated_at
    everything = data.finding_rows
    findings = everything.select(belongs_mask(everything.columns(), namespace))
    proposals = [proposal_view(p) for p in namespace_proposals(data, namespace)]
    names, fixes = rule_names(data.findings), rule_fixes(data.findings)
    places = places_of(data)
    deletions = deletion_groups(proposals, names, now, rows, places.of)
    for group in deletions:
        group.fix = fixes.get(group.code, "")
    proposed_digests = {
        digest
        for p in proposals
        if p.get("action") == "delete-images" and p.get("state") in OPEN_STATES
        for digest in (p.get("target") or {}).get("digests") or []
    }
    # image findings the deletions already show are not listed again as violations
    violations = finding_groups(
        (
            f
            for f in findings
            if not (
                str(f.get("code", "")).startswith(IMAGE_RULE_PREFIX)
                and f.get("image_digest") in proposed_digests
            )
        ),
        SEVERITY_ORDER,
        places.of,
    )
    kept = [
        {**k, "reason_views": [keep_reason(r) for r in k.get("reasons", [])]}
        for k in data.kept
        if namespace_of(k.get("repository", "")) == namespace
    ]
    repos = [r for r in data.repositories if r.namespace == namespace]
    ns_bytes = sum(r.bytes for r in repos)
    earliest = [g.earliest for g in deletions if g.earliest is not None]
    return {
        "kind": "weekly",
        "data": data,
        "namespace": namespace,
        "project": project,
        "where": places.of,
        "complete": data.complete,
        "repositories": sorted(repos, key=lambda r: (-r.bytes, r.name)),
        "images": sum(r.image_count for r in repos),
        "bytes": ns_bytes,
        "share": ns_bytes / data.totals["bytes"] if data.totals.get("bytes") else 0.0,
        "trend_days": daily_trend(
            trend(data, settings.trend_runs, namespace), zone, settings.trend_runs
        ),
        "by_rule": findings_by_rule(findings),
        "violations": violations,
        "finding_count": len(findings),
        "deletions": deletions,
        "deletion_images": sum(len(g.images) for g in deletions),
        "deletion_repositories": len({p.get("repository") for g in deletions for p in g.proposals}),
        "deletion_bytes": sum(g.bytes for g in deletions),
        "earliest_grace": min(earliest) if earliest else None,
        "grace_days": config.policy.apply.grace_days,
        "other_proposals": other_changes(proposals, places.of),
        "lifecycle_changes": lifecycle_changes(proposals, places.of),
        "open_proposals": [p for p in proposals if p.get("state") in OPEN_STATES],
        "kept": kept,
        "kept_by_reason": reasons_by_kind(kept),
        "scores": compliance_scores(data, namespace),
        "ages": age_distribution(data, namespace),
        "reclaimable": reclaimable_bytes(findings),
        "admins_contact": config.policy.notify.admin_emails,
        **_labels(),
    }
