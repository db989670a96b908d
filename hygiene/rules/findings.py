"""Rule hits → findings.

Repository and namespace rules give one finding per hit. A repository rule that would
delete the repository skips repositories that opted out or hold an image in use, and a
rule that needs the whole repository skips those not read completely; a muted finding
goes to ``muted``.

Image rules that delete: a hit on a protected, mutelisted or rule-kept image is kept
(:mod:`hygiene.rules.kept`); every other becomes the root of a deletion unit
(:mod:`hygiene.rules.units`). Every rule that hit an image gives its own finding and
names the others in ``details["also"]``; the plan proposes each unit once. Image
findings stay columns (:class:`hygiene.findingtable.ImageFindings`). Image rules that
delete nothing only report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hygiene.findingtable import ImageFindings, RuleInfo, message_parts
from hygiene.model import Finding
from hygiene.rules.base import Deletes, Rule, Scope
from hygiene.rules.columns import (
    pylist,
    rows_list,
    rows_list_or_none,
    stable_lexsort,
    unique_rows,
    utc_ns,
)
from hygiene.rules.kept import KeptImages
from hygiene.rules.muting import is_muted, muted_images
from hygiene.rules.protections import Edges, Protections
from hygiene.rules.settings import MuteRule
from hygiene.rules.units import Units, build_units


class RepositoryFindings:
    """Findings of the repository and namespace rules, in the order the rules run."""

    def __init__(
        self,
        images: pd.DataFrame,
        repositories: pd.DataFrame,
        protections: Protections,
        mutes: Sequence[MuteRule],
        opt_out_tag_key: str,
    ) -> None:
        self.repositories = repositories
        self.mutes = mutes
        self.findings: list[Finding] = []
        self.muted: list[Finding] = []
        # per repository row
        self._incomplete = repositories["scan_error"].notna().to_numpy(dtype=bool)
        self._opt_out = np.array(
            [
                str((t or {}).get(opt_out_tag_key, "")).lower() == "true"
                for t in repositories["resource_tags"]
            ],
            dtype=bool,
        )
        # a repository holding an image in use (or whose use is unknown) is never deleted
        frame = protections.frame
        used = frame["in_use"].to_numpy(dtype=bool) | frame["in_use_unknown"].to_numpy(dtype=bool)
        used_repos = np.unique(images["repo_row"].to_numpy()[used])
        self._in_use = np.isin(np.arange(len(repositories)), used_repos)

    def add(self, rule: Rule, hits: pd.DataFrame) -> None:
        """One finding per hit of repository or namespace rule ``rule``."""
        if not len(hits):
            return
        if rule.scope is Scope.REPOSITORY:
            rows = hits.index.to_numpy(dtype=np.int64)
            keep = np.ones(len(rows), dtype=bool)
            if rule.needs_complete_repository:
                keep &= ~self._incomplete[rows]
            if rule.deletes is Deletes.REPOSITORY:
                keep &= ~self._opt_out[rows] & ~self._in_use[rows]
            hits = hits[keep]
            repos = self.repositories.loc[hits.index]
            order = np.lexsort((repos["name"].astype(str).to_numpy(),))
            hits, repos = hits.iloc[order], repos.iloc[order]
            accounts = repos["account"].astype(str).tolist()
            regions = repos["region"].astype(str).tolist()
            names = repos["name"].astype(str).tolist()
            spaces = repos["namespace"].astype(object).where(repos["namespace"].notna(), None)
            namespaces = spaces.tolist()
        else:
            hits = hits.sort_values(["account", "region", "namespace"], kind="stable")
            accounts = hits["account"].astype(str).tolist()
            regions = hits["region"].astype(str).tolist()
            namespaces = hits["namespace"].tolist()
            names = [None] * len(hits)
        details = hits["details"].tolist() if "details" in hits else [None] * len(hits)
        for account, region, name, namespace, message, detail in zip(
            accounts, regions, names, namespaces, hits["message"].tolist(), details, strict=True
        ):
            finding = rule_finding(
                rule,
                message,
                detail,
                account=account,
                region=region,
                repository=name,
                namespace=namespace,
            )
            if is_muted(self.mutes, rule.code, name, namespace):
                self.muted.append(finding)
            else:
                self.findings.append(finding)


def rule_finding(rule: Rule, message: Any, detail: Any, **where: Any) -> Finding:
    """A finding of ``rule`` at ``where`` (account, region, repository, namespace and, for
    an image, its digest and tags): the rule's name, severity and fix, the message as
    text, template and parameters, and ``detail`` when it is a mapping."""
    text, template, params = message_parts(message)
    return Finding(
        code=rule.code,
        rule=rule.name,
        severity=rule.severity,
        message=text,
        fix=rule.fix,
        fix_safety=rule.fix_safety,
        details=dict(detail) if isinstance(detail, dict) else {},
        message_template=template,
        message_params=params,
        **where,
    )


def drop_superseded(findings: list[Finding], source: Sequence[Finding]) -> list[Finding]:
    """``findings`` without those another finding of ``source`` supersedes.

    One problem, one finding: a finding whose ``details["supersedes"]`` names rule codes
    (NS003 attributing ``suporte-cloud`` to the registered project ``suporte`` names
    NS002) replaces the findings of those codes on the same account, region, namespace
    and repository. A muted superseding finding still supersedes: the problem is known.
    """
    superseded = {
        (code, f.account, f.region, f.namespace, f.repository)
        for f in source
        if f.image_digest is None
        for code in f.details.get("supersedes", ())
    }
    if not superseded:
        return findings
    return [
        f
        for f in findings
        if (f.code, f.account, f.region, f.namespace, f.repository) not in superseded
    ]


@dataclass
class ImageResult:
    """What :func:`image_findings` returns: the findings of the rules that delete, as
    columns (None: none), and the findings of the rules that delete nothing, with their
    muted ones (a muted deletion is a kept image instead, with reason ``mutelisted``)."""

    columns: ImageFindings | None
    reported: list[Finding]
    muted: list[Finding]


def image_findings(
    rule_hits: Sequence[tuple[Rule, pd.DataFrame]],
    images: pd.DataFrame,
    protections: Protections,
    mutes: Sequence[MuteRule],
    edges: Edges,
    kept: KeptImages,
    lap: Callable[[str], None],
) -> ImageResult:
    """Findings of the image rules' hits; the images kept instead go to ``kept``.

    ``rule_hits``: each image rule with its hits, in code order. ``lap`` marks the end of
    the phases ``kept``, ``units`` and ``image-findings-prep`` (timings).

    A rule that deletes images: a hit on a protected, mutelisted or rule-kept image is
    kept; every other hit is a finding whose ``details["unit"]`` is the image's deletion
    unit. Every rule that hit an image gives its own finding (an owner looking for "too
    many images" finds IM003 even when IM002 flagged the same image); each names the
    others in ``details["also"]``, and the plan proposes the unit's deletion once.

    A rule that deletes nothing (``deletes=NOTHING``) only reports: its hits are findings
    on their images, with no unit, untouched by protections, and never kept.
    """
    deleting = [(r, h) for r, h in rule_hits if r.deletes is Deletes.IMAGES and len(h)]
    reporting = [(r, h) for r, h in rule_hits if r.deletes is not Deletes.IMAGES and len(h)]
    protected = protections.protected
    deletable_by_rule: list[tuple[Rule, pd.DataFrame]] = []
    for rule, hits in deleting:
        rows = hits.index.to_numpy(dtype=np.int64)
        rule_keep = (
            hits["keep_reason"].notna().to_numpy(dtype=bool)
            if "keep_reason" in hits
            else np.zeros(len(rows), dtype=bool)
        )
        muted = muted_images(mutes, rule.code, images, rows)
        keep = protected[rows] | rule_keep | muted
        if keep.any():
            kept_rows = rows[keep]
            reasons = protections.reasons(kept_rows)
            extra = (
                hits["keep_reason"].to_numpy(dtype=object)[keep]
                if "keep_reason" in hits
                else [None] * len(kept_rows)
            )
            for row, why, rule_reason, was_muted in zip(
                kept_rows.tolist(), reasons, extra, muted[keep].tolist(), strict=True
            ):
                kept.add(
                    row,
                    (
                        *why,
                        rule_reason if isinstance(rule_reason, str) else None,
                        "mutelisted" if was_muted else None,
                    ),
                )
        deletable_by_rule.append((rule, hits[~keep]))

    reported, reported_muted = _reported(reporting, images, mutes)
    hit_frames = [(i, h) for i, (_, h) in enumerate(deletable_by_rule) if len(h)]
    if not hit_frames:
        lap("kept")
        return ImageResult(None, reported, reported_muted)
    rows = np.concatenate([h.index.to_numpy(dtype=np.int64) for _, h in hit_frames])
    rule_of = np.concatenate([np.full(len(h), i, dtype=np.int64) for i, h in hit_frames])
    messages = np.concatenate([h["message"].to_numpy(dtype=object) for _, h in hit_frames])
    details = np.concatenate(
        [
            h["details"].to_numpy(dtype=object)
            if "details" in h
            else np.full(len(h), None, dtype=object)
            for _, h in hit_frames
        ]
    )
    lap("kept")
    units = build_units(images, protections, unique_rows(rows, len(images)), edges, kept)
    kept.discard(units.members)  # a dependent that goes with its owner is not kept
    lap("units")
    hits = _Hits(rows, rule_of, messages, details)
    found = _unit_findings(images, [r for r, _ in deletable_by_rule], hits, units, lap)
    found.unique_digests = edges.unique_digests
    return ImageResult(found, reported, reported_muted)


def also_of(rows: np.ndarray, rule_of: np.ndarray, codes: list[str]) -> list[list[str] | None]:
    """For each hit (``rows[i]`` hit by rule ``rule_of[i]``): the codes of the other
    deleting rules that hit the same row, in rule order (each hit its own list), or None
    when no other hit names that row.

    Each row's rules as bits: a handful of passes over numpy arrays and one list per
    hit, instead of a dict of lists and a loop over the rows hit more than once (0.6 s
    at a million images). A rule that hit the same row twice (no rule does) takes
    :func:`also_of_each`, the plain loop."""
    if not len(rows):
        return []
    size = int(rows.max()) + 1
    if len(codes) > 62 or int(rows.min()) < 0:
        return also_of_each(rows, rule_of, codes)
    bits = np.zeros(size, dtype=np.int64)
    for index in range(len(codes)):
        own = rows[rule_of == index]
        bits[own] |= np.int64(1) << index
        if np.count_nonzero(bits & (np.int64(1) << index)) != len(own):  # a repeated hit
            return also_of_each(rows, rule_of, codes)
    others = bits[rows] & ~(np.int64(1) << rule_of.astype(np.int64))
    masks = others.tolist()
    lists = {
        mask: [code for index, code in enumerate(codes) if mask >> index & 1] for mask in set(masks)
    }
    return [lists[mask].copy() if mask else None for mask in masks]


def also_of_each(rows: np.ndarray, rule_of: np.ndarray, codes: list[str]) -> list[list[str] | None]:
    """:func:`also_of`, one row at a time: the rules that hit each row (a rule as often
    as it hit it), for each hit without its own rule's code."""
    hit_by: dict[int, list[str]] = defaultdict(list)
    for row, index in sorted(zip(rows.tolist(), rule_of.tolist(), strict=True)):
        hit_by[row].append(codes[index])
    return [
        [code for code in hit_by[row] if code != codes[index]] if len(hit_by[row]) > 1 else None
        for row, index in zip(rows.tolist(), rule_of.tolist(), strict=True)
    ]


def _reported(
    rule_hits: Sequence[tuple[Rule, pd.DataFrame]],
    images: pd.DataFrame,
    mutes: Sequence[MuteRule],
) -> tuple[list[Finding], list[Finding]]:
    """Findings of image rules that delete nothing, and the muted ones: one per hit, on
    the image alone."""
    findings: list[Finding] = []
    muted_findings: list[Finding] = []
    for rule, hits in rule_hits:
        rows = hits.index.to_numpy(dtype=np.int64)
        sub = images[["account", "region", "repository", "namespace", "digest", "tags"]].iloc[rows]
        muted = muted_images(mutes, rule.code, images, rows).tolist()
        spaces = sub["namespace"].astype(object).where(sub["namespace"].notna(), None)
        detail_values = hits["details"].tolist() if "details" in hits else [None] * len(rows)
        for account, region, repository, namespace, digest, tags, message, detail, mute in zip(
            pylist(sub["account"]),
            pylist(sub["region"]),
            pylist(sub["repository"]),
            spaces.tolist(),
            pylist(sub["digest"]),
            sub["tags"].tolist(),
            hits["message"].tolist(),
            detail_values,
            muted,
            strict=True,
        ):
            finding = rule_finding(
                rule,
                message,
                detail,
                account=account,
                region=region,
                repository=repository,
                namespace=namespace,
                image_digest=digest,
                tags=tuple(tags),
            )
            (muted_findings if mute else findings).append(finding)
    return findings, muted_findings


def _unit_findings(
    images: pd.DataFrame,
    rules: list[Rule],
    hits: _Hits,
    units: Units,
    lap: Callable[[str], None],
) -> ImageFindings:
    """One finding per rule hit, ordered by rule, repository and push time, as columns
    (:class:`~hygiene.findingtable.ImageFindings`): ``Finding`` objects are made only
    when something asks for one."""
    order = stable_lexsort(
        (
            utc_ns(images["pushed_at"])[hits.rows],
            images["repo_id"].to_numpy()[hits.rows],
            hits.rules,
        )
    )
    rows = hits.rows[order]
    rule_of = hits.rules[order]
    offsets, member_rows, member_digests, unit_bytes = units.gather(rows)
    found = ImageFindings(
        rules=[RuleInfo(r.code, r.name, r.severity, r.fix, r.fix_safety) for r in rules],
        rule=rule_of,
        rows=rows,
        account=rows_list(images["account"], rows),
        region=rows_list(images["region"], rows),
        repository=rows_list(images["repository"], rows),
        namespace=rows_list_or_none(images["namespace"], rows),
        tags=images["tags"].to_numpy(dtype=object)[rows].tolist(),
        message=hits.messages[order].tolist(),
        unit_offsets=offsets,
        unit_digests=member_digests.tolist(),
        unit_rows=member_rows,
        bytes=unit_bytes,
        pushed_at=_ns(images["pushed_at"], rows),
        last_pull=_ns(images["unit_last_pull"], rows),
        details=hits.details[order].tolist(),
        also=also_of(rows, rule_of, [r.code for r in rules]),
        repo_ids=images["repo_id"].to_numpy(dtype=np.int64)[rows],
    )
    lap("image-findings-prep")
    return found


def _ns(values: pd.Series, rows: np.ndarray) -> np.ndarray:
    """Aware UTC times of ``rows`` as int64 nanoseconds (NaT: the int64 minimum)."""
    return utc_ns(values)[rows].view(np.int64)


@dataclass
class _Hits:
    """Image hits that became deletions: parallel arrays, one entry per (rule, image)."""

    rows: np.ndarray
    rules: np.ndarray  # index into the list of deleting image rules
    messages: np.ndarray  # object
    details: np.ndarray  # object: dict or None
