"""Pure views: :class:`ReportData` + config → the values each report template shows.

Nothing here formats or translates; templates do (``fmt``, ``_()`` and ``msg()``). Labels
that the code chooses (actions, states, keep reasons, age buckets) are marked with ``N_``
and translated where they are shown. What a reader acts on is grouped by
:mod:`hygiene.report.actions`, so each distinct action appears once.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from hygiene.config import Config
from hygiene.inventory import namespace_of
from hygiene.messages import N_
from hygiene.report import findingrows as rows_of
from hygiene.report.actions import (
    DELETE_ACTIONS,
    OPEN_STATES,
)
from hygiene.report.data import AGE_BUCKET_KEYS, NO_NAMESPACE, HistoryRun, ReportData
from hygiene.report.findingrows import FindingRows
from hygiene.report.format import to_datetime
from hygiene.report.places import PLAIN

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
# Compliance score: 100 minus a penalty per distinct rule a repository breaks.
SEVERITY_PENALTY = {"error": 30, "warning": 15, "info": 5}
IMAGE_ACTIONS = DELETE_ACTIONS
WAITING_STATES = OPEN_STATES
DONE_STATES = frozenset({"applied", "skipped", "failed"})
IMAGE_RULE_PREFIX = "IM"

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
SAFETY_LABELS: dict[str, str] = {
    "safe": N_("safe fix"),
    "unsafe": N_("unsafe fix"),
    "manual": N_("manual fix"),
}
# Keep reasons recorded by the protections (hygiene.rules.protections, .kept, .muting):
# the name, and after ":" a detail (a tag pattern, where an image is in use).
KEEP_REASON_LABELS: dict[str, str] = {
    "protected-tag": N_("protected tag %(detail)s"),
    "child-of-kept-index": N_("part of a kept multi-platform image"),
    "referrer-of-kept-image": N_("signature or attestation of a kept image"),
    "signature-of-kept-image": N_("signature or attestation of a kept image"),
    # the subject's digest is in the JSON; a report groups these under one label
    "referrer-of": N_("signature or attestation of an image that stays"),
    "newest": N_("among the %(detail)s newest images of the repository"),
    "pulled-recently": N_("pulled recently"),
    "in-use": N_("in use"),
    "in-use-at": N_("runs in %(detail)s"),
    "in-use-unknown": N_("in use unknown: %(detail)s could not be read, nothing is deleted"),
    "repository-opt-out": N_("the repository opts out (hygiene:keep)"),
    "repository-incomplete": N_("the repository could not be read completely"),
    "mutelisted": N_("accepted exception (mutelist)"),
    "unknown": N_("kept (%(detail)s)"),
}
_NEWEST = re.compile(r"^newest-(\d+)$")


@dataclass(frozen=True)
class Limits:
    """How many rows a report shows per table, images per group and places per line."""

    rows: int
    images: int
    places: int

    def halved(self) -> Limits:
        return Limits(self.rows // 2, self.images // 2, self.places // 2)

    @property
    def minimal(self) -> bool:
        return self.rows == 0 and self.images == 0 and self.places == 0


def full_limits(config: Config) -> Limits:
    rows = config.policy.report.max_rows
    return Limits(rows=rows, images=min(rows, 50), places=rows)


MAIL_LIMITS = Limits(rows=10, images=5, places=12)


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
    name, _, detail = reason.partition(":")
    newest = _NEWEST.match(name)
    if newest:
        return {"key": "newest", "msgid": KEEP_REASON_LABELS["newest"],
                "params": {"detail": newest.group(1)}}  # fmt: skip
    if name == "in-use" and detail:
        return {"key": "in-use", "msgid": KEEP_REASON_LABELS["in-use-at"],
                "params": {"detail": detail}}  # fmt: skip
    if name in KEEP_REASON_LABELS:
        return {"key": name, "msgid": KEEP_REASON_LABELS[name], "params": {"detail": detail}}
    return {"key": reason, "msgid": KEEP_REASON_LABELS["unknown"], "params": {"detail": reason}}


def reasons_by_kind(kept: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """How many kept images each kind of reason kept (most first)."""
    counts: Counter[str] = Counter()
    views: dict[str, dict[str, Any]] = {}
    for item in kept:
        for reason in item.get("reasons", []):
            view = keep_reason(reason)
            key = view["key"] if view["key"] not in ("protected-tag", "in-use") else reason
            counts[key] += 1
            views.setdefault(key, view)
    return [
        {**views[k], "count": n} for k, n in sorted(counts.items(), key=lambda i: (-i[1], i[0]))
    ]


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
    if isinstance(findings, FindingRows):
        return int(findings.cached("reclaimable", rows_of.reclaimable)[None])
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
    if isinstance(findings, FindingRows):  # from the columns; each group's rows are lazy
        # each code a number once: comparing numbers per group, not ~900,000 strings
        numbered = rows_of.code_numbers(findings.columns())
        if numbered is not None:  # from the image findings' rule index
            numbers, names = numbered
        else:
            import pandas as pd

            codes = np.empty(len(findings), dtype=object)
            codes[:] = findings.columns().code
            numbers, distinct = pd.factorize(codes, use_na_sentinel=False)
            names = distinct.tolist()
        number_of = {name: k for k, name in enumerate(names)}
        sizes = findings.cached("reclaimable", rows_of.reclaimable)
        groups_of = findings.cached("by_rule", lambda c: rows_of.rule_groups(c, sizes))
        lazy = [
            {**group, "findings": findings.select(numbers == number_of[group["code"]])}
            for group in groups_of
        ]
        return sorted(
            lazy, key=lambda g: (SEVERITY_ORDER.get(g["severity"], 3), -g["count"], g["code"])
        )
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
    if isinstance(findings, FindingRows):
        for key, per in findings.cached("by_namespace", rows_of.by_namespace).items():
            counts[key or NO_NAMESPACE].update(per)
    else:
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


def rule_names(findings: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    if isinstance(findings, FindingRows):
        return rows_of.last_by_code(findings.columns(), "rule")
    return {str(f["code"]): str(f.get("rule", "")) for f in findings}


def rule_fixes(findings: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    if isinstance(findings, FindingRows):
        return rows_of.last_by_code(findings.columns(), "fix")
    return {str(f["code"]): str(f.get("fix", "")) for f in findings}


def compliance_scores(data: ReportData, namespace: str | None = None) -> list[dict[str, Any]]:
    """Score per repository: 100 minus a penalty for each distinct rule it breaks
    (error 30, warning 15, info 5), at least 0. Unread repositories get no score."""
    # keyed by account and region too: one name may be a repository in several accounts
    broken = data.finding_rows.cached("broken", rows_of.broken_rules)
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
    return {
        **proposal,
        "action_label": ACTION_LABELS.get(proposal.get("action", ""), proposal.get("action")),
        "state_label": STATE_LABELS.get(proposal.get("state", ""), proposal.get("state")),
        "image_count": len(target.get("digests") or []),
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
                "account": o.account,
                "region": o.region,
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
                "account": p.get("account", ""),
                "region": p.get("region", ""),
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


def outcome_totals(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    rows = list(rows)
    return {
        "applied": sum(1 for r in rows if r["state"] == "applied"),
        "skipped": sum(1 for r in rows if r["state"] == "skipped"),
        "failed": sum(1 for r in rows if r["state"] == "failed"),
        "bytes": sum(int(r.get("bytes") or 0) for r in rows if r["state"] == "applied"),
    }


LIFECYCLE_ACTION = "put-lifecycle-policy"


def other_changes(
    proposals: Iterable[Mapping[str, Any]], label: Callable[[Any], str] = PLAIN.of
) -> list[dict[str, Any]]:
    """Open proposals that delete nothing, one row per kind of change listing its
    repositories (named by ``label``, :mod:`hygiene.report.places`). A lifecycle policy
    is not one of them: ECR expires the images it selects (:func:`lifecycle_changes`)."""
    by_action: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for proposal in proposals:
        action = proposal.get("action")
        if action in DELETE_ACTIONS or action == LIFECYCLE_ACTION:
            continue
        if proposal.get("state") not in OPEN_STATES:
            continue
        by_action[str(proposal.get("action"))].append(proposal)
    rows = []
    for action in sorted(by_action):
        members = by_action[action]
        states = Counter(str(p.get("state")) for p in members)
        rows.append(
            {
                "action": action,
                "action_label": ACTION_LABELS.get(action, action),
                "repositories": sorted({label(p) for p in members}),
                "states": [(STATE_LABELS.get(s, s), n) for s, n in sorted(states.items())],
                "count": len(members),
            }
        )
    return rows


def lifecycle_changes(
    proposals: Iterable[Mapping[str, Any]], label: Callable[[Any], str] = PLAIN.of
) -> list[dict[str, Any]]:
    """Open ``put-lifecycle-policy`` proposals, one row each: what its preview says the
    policy would expire (images, bytes) once ECR runs it, and its grace date. A report
    that announces one is the notice its grace period starts from (docs/approvals.md
    §5a), so it says what the policy deletes."""
    rows = []
    for proposal in proposals:
        if proposal.get("action") != LIFECYCLE_ACTION:
            continue
        if proposal.get("state") not in OPEN_STATES:
            continue
        preview = (proposal.get("evidence") or {}).get("preview") or {}
        rows.append(
            {
                "id": str(proposal.get("id")),
                "repository": label(proposal),
                "images": int(preview.get("images") or 0),
                "bytes": int(preview.get("bytes") or proposal.get("bytes") or 0),
                "grace_until": to_datetime(proposal.get("grace_until")),
            }
        )
    return sorted(rows, key=lambda r: (r["repository"], r["id"]))


# --------------------------------------------------------------------------- history


def previous_run(data: ReportData) -> HistoryRun | None:
    return data.history[-1] if data.history else None


def trend(
    data: ReportData, runs: int, namespace: str | None = None
) -> list[tuple[datetime | None, int, str]]:
    """(finished_at, bytes, status) for the recorded runs and the current one (last)."""
    points: list[tuple[datetime | None, int, str]] = []
    for run in data.history:
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
        current = rows_of.codes_in_order(data.finding_rows.columns())
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
