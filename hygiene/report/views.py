"""Pure views: :class:`ReportData` + config → the values each report template shows.

Nothing here formats or translates; templates do (``fmt`` and ``_()``). Labels that the
code chooses (actions, states, keep reasons, age buckets) are marked with ``N_`` and
translated where they are shown.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hygiene.config import Config
from hygiene.inventory import namespace_of
from hygiene.report.data import AGE_BUCKET_KEYS, NO_NAMESPACE, HistoryRun, ReportData
from hygiene.report.format import to_datetime
from hygiene.report.i18n import N_

APPROVE_COMMAND = "hygiene approve {id}"
REJECT_COMMAND = 'hygiene reject {id} --reason "…"'

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
# Compliance score: 100 minus a penalty per distinct rule a repository breaks.
SEVERITY_PENALTY = {"error": 30, "warning": 15, "info": 5}
IMAGE_ACTIONS = frozenset({"delete-images", "delete-repository"})
WAITING_STATES = frozenset({"proposed", "approved"})
DONE_STATES = frozenset({"applied", "skipped", "failed"})

AGE_LABELS: dict[str, str] = {
    "lt7": N_("under 7 days"),
    "lt30": N_("7–30 days"),
    "lt90": N_("30–90 days"),
    "lt180": N_("90–180 days"),
    "lt365": N_("180–365 days"),
    "ge365": N_("over a year"),
}
ACTION_LABELS: dict[str, str] = {
    "delete-images": N_("delete images"),
    "delete-repository": N_("delete repository"),
    "put-lifecycle-policy": N_("set lifecycle policy"),
    "enable-scan-on-push": N_("enable scan on push"),
    "set-tag-immutability": N_("make tags immutable"),
    "remove-policy-statement": N_("remove policy statement"),
}
STATE_LABELS: dict[str, str] = {
    "proposed": N_("awaiting approval"),
    "approved": N_("approved"),
    "rejected": N_("rejected"),
    "expired": N_("expired"),
    "applied": N_("applied"),
    "failed": N_("failed"),
    "skipped": N_("skipped"),
}
SEVERITY_LABELS: dict[str, str] = {
    "error": N_("error"),
    "warning": N_("warning"),
    "info": N_("info"),
}
# Keep reasons recorded by the protections, by prefix (text after ":" is the detail).
KEEP_REASON_LABELS: dict[str, str] = {
    "protected-tag": N_("protected tag %(detail)s"),
    "child-of-kept-index": N_("part of a kept multi-platform image"),
    "referrer-of-kept-image": N_("signature or attestation of a kept image"),
    "signature-of-kept-image": N_("signature or attestation of a kept image"),
    "newest": N_("among the newest images of the repository"),
    "pulled-within": N_("pulled recently"),
    "recently-pulled": N_("pulled recently"),
    "in-use": N_("runs in %(detail)s"),
    "in-use-unknown": N_("in use unknown: %(detail)s could not be read, nothing is deleted"),
    "opt-out": N_("the repository opts out (hygiene:keep)"),
    "muted": N_("accepted exception (mutelist)"),
    "mutelist": N_("accepted exception (mutelist)"),
}


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: ``pct`` is its length relative to the largest (0–100)."""

    label: str
    value: float
    pct: float
    detail: str = ""


def bars(items: Iterable[tuple[str, float]], *, keep_order: bool = False) -> list[Bar]:
    rows = list(items)
    if not keep_order:
        rows.sort(key=lambda item: (-item[1], item[0]))
    top = max((value for _, value in rows), default=0) or 1
    return [
        Bar(label=label, value=value, pct=round(max(value, 0) / top * 100, 1))
        for label, value in rows
    ]


def keep_reason(reason: str) -> dict[str, Any]:
    """``protected-tag:prod*`` → msgid + params for the template to translate."""
    prefix, _, detail = reason.partition(":")
    label = KEEP_REASON_LABELS.get(prefix)
    if label is None:
        return {"msgid": None, "text": reason, "params": {}}
    return {"msgid": label, "text": reason, "params": {"detail": detail or prefix}}


# --------------------------------------------------------------------------- findings


def finding_namespace(finding: Mapping[str, Any]) -> str | None:
    return finding.get("namespace") or (
        namespace_of(finding["repository"]) if finding.get("repository") else None
    )


def belongs_to(finding: Mapping[str, Any], namespace: str) -> bool:
    """A finding concerns ``namespace`` if it is in it or names it as its project
    (fragmentation findings sit in ``suporte-cloud`` but belong to ``suporte``)."""
    if finding_namespace(finding) == namespace:
        return True
    details = finding.get("details") or {}
    return details.get("project") == namespace or namespace in (details.get("namespaces") or [])


def reclaimable_bytes(findings: Iterable[Mapping[str, Any]]) -> int:
    """Bytes freed by deleting every flagged image once (an image may break two rules)."""
    seen: dict[tuple[str, str, str, str], int] = {}
    for finding in findings:
        digest = finding.get("image_digest")
        if digest:
            key = (
                str(finding.get("account")),
                str(finding.get("region")),
                str(finding.get("repository")),
                str(digest),
            )
            seen[key] = max(seen.get(key, 0), int(finding.get("bytes") or 0))
    return sum(seen.values())


def findings_by_rule(findings: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for finding in findings:
        group = groups.setdefault(
            finding["code"],
            {
                "code": finding["code"],
                "rule": finding.get("rule", ""),
                "severity": finding.get("severity", "info"),
                "fix_safety": finding.get("fix_safety", "manual"),
                "count": 0,
                "findings": [],
            },
        )
        group["count"] += 1
        group["findings"].append(finding)
    for group in groups.values():
        group["bytes"] = reclaimable_bytes(group["findings"])
    return sorted(
        groups.values(),
        key=lambda g: (SEVERITY_ORDER.get(g["severity"], 3), -g["count"], g["code"]),
    )


def findings_by_namespace(findings: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for finding in findings:
        key = finding_namespace(finding) or NO_NAMESPACE
        counts[key][finding.get("severity", "info")] += 1
    rows = [
        {
            "namespace": namespace,
            "error": c["error"],
            "warning": c["warning"],
            "info": c["info"],
            "total": sum(c.values()),
        }
        for namespace, c in counts.items()
    ]
    return sorted(rows, key=lambda r: (-r["error"], -r["total"], r["namespace"]))


def compliance_scores(data: ReportData, namespace: str | None = None) -> list[dict[str, Any]]:
    """Score per repository: 100 minus a penalty for each distinct rule it breaks
    (error 30, warning 15, info 5), at least 0. Unread repositories get no score."""
    # keyed by account and region too: one name may be a repository in several accounts
    broken: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
    for finding in data.findings:
        if finding.get("repository"):
            key = (str(finding.get("account", "")), str(finding.get("region", "")),
                   finding["repository"])  # fmt: skip
            broken[key][finding["code"]] = finding.get("severity", "info")
    rows = []
    for repo in data.repositories:
        if namespace is not None and repo.namespace != namespace:
            continue
        codes = broken.get((repo.account, repo.region, repo.name), {})
        if not repo.account:  # a report from a summary without accounts
            codes = {
                c: v for (_, _, name), found in broken.items() if name == repo.name
                for c, v in found.items()
            }  # fmt: skip
        penalty = sum(SEVERITY_PENALTY.get(sev, 5) for sev in codes.values())
        score = None if repo.scan_error else max(0, 100 - penalty)
        rows.append(
            {
                "repository": repo.name,
                "account": repo.account,
                "region": repo.region,
                "score": score,
                "grade": _grade(score),
                "codes": sorted(codes),
                "images": repo.image_count,
                "bytes": repo.bytes,
                "scan_error": repo.scan_error,
            }
        )
    return sorted(rows, key=lambda r: (r["score"] is None, r["score"] or 0, r["repository"]))


def _grade(score: int | None) -> str:
    if score is None:
        return "unknown"
    if score >= 90:
        return "good"
    if score >= 60:
        return "fair"
    return "poor"


# --------------------------------------------------------------------------- proposals


def proposal_view(proposal: Mapping[str, Any]) -> dict[str, Any]:
    target = proposal.get("target") or {}
    evidence = proposal.get("evidence") or {}
    digests = target.get("digests") or evidence.get("digests") or []
    tags = evidence.get("tags") or []
    if tags and isinstance(tags[0], list):
        tags = [t for group in tags for t in group]
    return {
        **proposal,
        "action_label": ACTION_LABELS.get(proposal.get("action", ""), proposal.get("action")),
        "state_label": STATE_LABELS.get(proposal.get("state", ""), proposal.get("state")),
        "image_count": len(digests),
        "tag_list": [str(t) for t in tags][:10],
        "approve_command": APPROVE_COMMAND.format(id=proposal["id"]),
        "reject_command": REJECT_COMMAND.format(id=proposal["id"]),
    }


def outcomes(data: ReportData) -> list[dict[str, Any]]:
    """What apply did: recorded outcomes, else proposals already in a final state."""
    rows: list[dict[str, Any]]
    if data.outcomes:
        rows = [
            {
                "id": o.proposal_id,
                "state": o.state,
                "action": o.action,
                "repository": o.repository,
                "reason": o.reason,
                "bytes": o.bytes,
            }
            for o in data.outcomes
        ]
    else:
        rows = [
            {
                "id": p["id"],
                "state": p["state"],
                "action": p.get("action", ""),
                "repository": p.get("repository", ""),
                "reason": (p.get("evidence") or {}).get("reason", ""),
                "bytes": int(p.get("bytes") or 0),
            }
            for p in data.proposals
            if p.get("state") in DONE_STATES
        ]
    for row in rows:
        row["state_label"] = STATE_LABELS.get(row["state"], row["state"])
        row["action_label"] = ACTION_LABELS.get(row["action"], row["action"])
    order = {"failed": 0, "skipped": 1, "applied": 2}
    return sorted(rows, key=lambda r: (order.get(r["state"], 3), r["repository"], r["id"]))


# --------------------------------------------------------------------------- history


def previous_run(data: ReportData) -> HistoryRun | None:
    return data.history[-1] if data.history else None


def trend(
    data: ReportData, runs: int, namespace: str | None = None
) -> list[tuple[datetime | None, int, str]]:
    """(finished_at, bytes, status) for the last ``runs`` runs, the current one last."""
    points: list[tuple[datetime | None, int, str]] = []
    for run in data.history[-(runs - 1) :] if runs > 1 else []:
        value = run.bytes if namespace is None else run.namespace_bytes.get(namespace, 0)
        points.append((run.finished_at, value, run.status))
    current = (
        data.totals["bytes"] if namespace is None else data.namespace_bytes().get(namespace, 0)
    )
    finished = to_datetime(data.run.get("finished_at")) or data.generated_at
    points.append((finished, current, "complete" if data.complete else "incomplete"))
    return points


def changes(data: ReportData) -> dict[str, Any] | None:
    """What changed since the previous run (None on the first run)."""
    previous = previous_run(data)
    if previous is None:
        return None
    now_ns = data.namespace_bytes()
    namespaces = set(now_ns) | set(previous.namespace_bytes)
    ns_deltas = [(ns, now_ns.get(ns, 0) - previous.namespace_bytes.get(ns, 0)) for ns in namespaces]
    ns_deltas = sorted((d for d in ns_deltas if d[1]), key=lambda d: (-abs(d[1]), d[0]))[:10]
    code_deltas: list[tuple[str, int, int]] = []
    if previous.findings_by_code:
        current = Counter(f["code"] for f in data.findings)
        for code in sorted(set(current) | set(previous.findings_by_code)):
            before, after = previous.findings_by_code.get(code, 0), current.get(code, 0)
            if before != after:
                code_deltas.append((code, before, after))
    since = previous.finished_at
    new_proposals = [
        p
        for p in data.proposals
        if since is not None
        and (seen := to_datetime(p.get("first_seen"))) is not None
        and seen > since
    ]
    return {
        "previous": previous,
        "repositories": data.totals["repositories"] - previous.repositories,
        "images": data.totals["images"] - previous.images,
        "bytes": data.totals["bytes"] - previous.bytes,
        "namespaces": ns_deltas,
        "codes": code_deltas,
        "new_proposals": len(new_proposals),
    }


SOURCE_STATE_LABELS: dict[str, str] = {
    "ok": N_("read"),
    "failed": N_("could not be read: no image is deleted on this run"),
    "not-configured": N_("not configured, not consulted"),
}


def in_use_sources(data: ReportData) -> list[dict[str, Any]]:
    """Every in-use source of the run and how it went (docs/in-use.md)."""
    return [
        {**source, "state_label": SOURCE_STATE_LABELS.get(str(source.get("state")), "")}
        for source in data.run.get("in_use", [])
    ]


def running_kept(data: ReportData) -> list[dict[str, Any]]:
    """Kept images a workload runs, with where (the ``in-use:`` reasons only)."""
    rows = []
    for kept in data.kept:
        reasons = [r for r in kept.get("reasons", []) if str(r).startswith("in-use:")]
        if reasons:
            rows.append({**kept, "reason_views": [keep_reason(r) for r in reasons]})
    rows.sort(key=lambda k: (k.get("repository", ""), k.get("image_digest", "")))
    return rows


def incomplete_runs(data: ReportData, runs: int) -> list[dict[str, Any]]:
    """This run (if incomplete) and the earlier incomplete or failed ones, newest first."""
    rows = []
    if not data.complete:
        rows.append(
            {
                "id": data.run.get("id"),
                "finished_at": data.run.get("finished_at"),
                "status": "incomplete",
                "errors": [_error_text(e) for e in data.run.get("errors", [])],
            }
        )
    for run in reversed(data.history[-runs:]):
        if run.status != "complete":
            rows.append(
                {
                    "id": run.id,
                    "finished_at": run.finished_at,
                    "status": run.status,
                    "errors": list(run.errors),
                }
            )
    return rows


def _error_text(error: Any) -> str:
    if isinstance(error, Mapping):
        where = error.get("repository") or error.get("region") or ""
        operation = error.get("operation") or ""
        return " ".join(p for p in (where, operation, "—", str(error.get("message", ""))) if p)
    return str(error)


def age_distribution(data: ReportData, namespace: str | None = None) -> list[Bar]:
    totals = dict.fromkeys(AGE_BUCKET_KEYS, 0)
    for ns, buckets in data.age_buckets.items():
        if namespace is not None and ns != namespace:
            continue
        for key, count in buckets.items():
            totals[key] = totals.get(key, 0) + count
    if not any(totals.values()):
        return []
    return bars(((key, totals[key]) for key in AGE_BUCKET_KEYS), keep_order=True)


# --------------------------------------------------------------------------- contexts


def nightly_context(data: ReportData, config: Config) -> dict[str, Any]:
    settings = config.policy.report
    findings = data.findings
    waiting = [proposal_view(p) for p in data.proposals if p.get("state") in WAITING_STATES]
    waiting.sort(key=lambda p: (p.get("state") != "proposed", -int(p.get("bytes") or 0), p["id"]))
    ns_sizes = data.namespace_bytes()
    return {
        "kind": "nightly",
        "data": data,
        "totals": data.totals,
        "complete": data.complete,
        "changes": changes(data),
        "by_rule": findings_by_rule(findings),
        "by_namespace": findings_by_namespace(findings),
        "finding_count": len(findings),
        "waiting": waiting,
        "awaiting_approval": [p for p in waiting if p.get("state") == "proposed"],
        "waiting_bytes": sum(int(p.get("bytes") or 0) for p in waiting),
        "outcomes": outcomes(data),
        "reclaimable": reclaimable_bytes(findings),
        "largest": sorted(data.repositories, key=lambda r: (-r.bytes, r.name))[
            : settings.largest_repositories
        ],
        "incomplete": incomplete_runs(data, settings.trend_runs),
        "in_use_sources": in_use_sources(data),
        "running_kept": running_kept(data),
        "namespace_bars": bars((ns or NO_NAMESPACE, size) for ns, size in ns_sizes.items()),
        "trend": trend(data, settings.trend_runs),
        "ages": age_distribution(data),
        "age_labels": AGE_LABELS,
        "severity_labels": SEVERITY_LABELS,
        "mute_warnings": data.mute_warnings,
        "delivery_failures": data.delivery_failures,
        "unregistered": sorted(
            ns for ns in data.namespaces() if ns not in config.projects.projects
        ),
    }


def weekly_context(data: ReportData, config: Config, namespace: str) -> dict[str, Any]:
    settings = config.policy.report
    project = config.projects.projects.get(namespace)
    findings = [f for f in data.findings if belongs_to(f, namespace)]
    proposals = [
        proposal_view(p)
        for p in data.proposals
        if p.get("namespace") == namespace
        or (not p.get("namespace") and namespace_of(p.get("repository", "")) == namespace)
    ]
    deletions = [
        p for p in proposals if p.get("action") in IMAGE_ACTIONS and p["state"] in WAITING_STATES
    ]
    deletions.sort(key=lambda p: (p.get("grace_until") or "", p.get("repository", ""), p["id"]))
    deleting = {p["id"] for p in deletions}
    other = [p for p in proposals if p["id"] not in deleting and p["state"] in WAITING_STATES]
    kept = [
        {**k, "reason_views": [keep_reason(r) for r in k.get("reasons", [])]}
        for k in data.kept
        if namespace_of(k.get("repository", "")) == namespace
    ]
    repos = [r for r in data.repositories if r.namespace == namespace]
    ns_bytes = sum(r.bytes for r in repos)
    return {
        "kind": "weekly",
        "data": data,
        "namespace": namespace,
        "project": project,
        "complete": data.complete,
        "repositories": sorted(repos, key=lambda r: (-r.bytes, r.name)),
        "images": sum(r.image_count for r in repos),
        "bytes": ns_bytes,
        "share": ns_bytes / data.totals["bytes"] if data.totals.get("bytes") else 0.0,
        "trend": trend(data, settings.trend_runs, namespace),
        "by_rule": findings_by_rule(findings),
        "finding_count": len(findings),
        "deletions": deletions,
        "deletion_bytes": sum(int(p.get("bytes") or 0) for p in deletions),
        "other_proposals": other,
        "kept": kept,
        "scores": compliance_scores(data, namespace),
        "ages": age_distribution(data, namespace),
        "age_labels": AGE_LABELS,
        "severity_labels": SEVERITY_LABELS,
        "reclaimable": reclaimable_bytes(findings),
        "admins_contact": config.policy.notify.admin_emails,
    }
