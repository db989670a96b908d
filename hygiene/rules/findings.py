"""Rule hits → findings.

Repository and namespace rules give one finding per hit. A repository rule that would
delete the repository skips repositories that opted out or hold an image in use, and a
rule that needs the whole repository skips those not read completely; a muted finding
goes to ``muted``.

Image rules: a hit on a protected, mutelisted or rule-kept image is kept
(:mod:`hygiene.rules.kept`); every other becomes the root of a deletion unit
(:mod:`hygiene.rules.units`). Each image gets one finding, from the first rule in code
order that hit it; the others are named in ``details["also"]`` so the plan proposes
each deletion once. Image findings stay columns (:class:`hygiene.findingtable.ImageFindings`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hygiene.findingtable import ImageFindings, RuleInfo, message_parts
from hygiene.model import Finding
from hygiene.rules.base import Deletes, Rule, Scope
from hygiene.rules.columns import pylist, utc_ns
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
            text, template, params = message_parts(message)
            finding = Finding(
                code=rule.code,
                rule=rule.name,
                severity=rule.severity,
                account=account,
                region=region,
                repository=name,
                namespace=namespace,
                message=text,
                fix=rule.fix,
                fix_safety=rule.fix_safety,
                details=dict(detail) if isinstance(detail, dict) else {},
                message_template=template,
                message_params=params,
            )
            if is_muted(self.mutes, rule.code, name, namespace):
                self.muted.append(finding)
            else:
                self.findings.append(finding)


def image_findings(
    rule_hits: Sequence[tuple[Rule, pd.DataFrame]],
    images: pd.DataFrame,
    protections: Protections,
    mutes: Sequence[MuteRule],
    edges: Edges,
    kept: KeptImages,
    lap: Callable[[str], None],
) -> ImageFindings | None:
    """Findings of the image rules' hits; the images kept instead go to ``kept``.

    ``rule_hits``: each image rule with its hits, in code order. ``lap`` marks the end of
    the phases ``kept``, ``units`` and ``image-findings-prep`` (timings).
    """
    protected = protections.protected
    deletable_by_rule: list[tuple[Rule, pd.DataFrame]] = []
    for rule, hits in rule_hits:
        if not len(hits):
            continue
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

    hit_frames = [(i, h) for i, (_, h) in enumerate(deletable_by_rule) if len(h)]
    if not hit_frames:
        return None
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
    # one finding per image: the first rule in code order; the others are named in
    # details["also"] so the plan proposes each deletion once
    order = np.lexsort((rule_of, rows))
    sorted_rows = rows[order]
    duplicated = np.zeros(len(order), dtype=bool)
    duplicated[1:] = sorted_rows[1:] == sorted_rows[:-1]
    also: dict[int, list[str]] = defaultdict(list)
    for row, index in zip(
        sorted_rows[duplicated].tolist(), rule_of[order][duplicated].tolist(), strict=True
    ):
        also[row].append(deletable_by_rule[index][0].code)
    first = order[~duplicated]
    primary = _Hits(rows[first], rule_of[first], messages[first], details[first])
    lap("kept")
    units = build_units(images, protections, primary.rows, edges, kept)
    lap("units")
    found = _unit_findings(images, [r for r, _ in deletable_by_rule], primary, units, also, lap)
    found.unique_digests = edges.unique_digests
    return found


def _unit_findings(
    images: pd.DataFrame,
    rules: list[Rule],
    primary: _Hits,
    units: Units,
    also: dict[int, list[str]],
    lap: Callable[[str], None],
) -> ImageFindings:
    """One finding per deletion unit, ordered by rule, repository and push time, as
    columns (:class:`~hygiene.findingtable.ImageFindings`): ``Finding`` objects are made
    only when something asks for one."""
    rows = primary.rows
    order = np.lexsort(
        (
            utc_ns(images["pushed_at"])[rows],
            images["repo_id"].to_numpy()[rows],
            primary.rules,
        )
    )
    rows = rows[order]
    columns = ["account", "region", "repository", "namespace", "tags"]
    sub = images[columns].iloc[rows]
    offsets, member_rows, member_digests, unit_bytes = units.gather(rows)
    namespaces = sub["namespace"].astype(object).where(sub["namespace"].notna(), None)
    also_of = np.full(len(rows), None, dtype=object)
    if also:
        positions = pd.Index(rows).get_indexer(np.fromiter(also, dtype=np.int64))
        for position, codes in zip(positions.tolist(), also.values(), strict=True):
            also_of[position] = codes
    found = ImageFindings(
        rules=[RuleInfo(r.code, r.name, r.severity, r.fix, r.fix_safety) for r in rules],
        rule=primary.rules[order],
        rows=rows,
        account=pylist(sub["account"]),
        region=pylist(sub["region"]),
        repository=pylist(sub["repository"]),
        namespace=namespaces.tolist(),
        tags=sub["tags"].tolist(),
        message=primary.messages[order].tolist(),
        unit_offsets=offsets,
        unit_digests=member_digests.tolist(),
        unit_rows=member_rows,
        bytes=unit_bytes,
        pushed_at=_ns(images["pushed_at"], rows),
        last_pull=_ns(images["unit_last_pull"], rows),
        details=primary.details[order].tolist(),
        also=also_of.tolist(),
    )
    lap("image-findings-prep")
    return found


def _ns(values: pd.Series, rows: np.ndarray) -> np.ndarray:
    """Aware UTC times of ``rows`` as int64 nanoseconds (NaT: the int64 minimum)."""
    return utc_ns(values)[rows].view(np.int64)


@dataclass
class _Hits:
    """Image hits that became deletions: parallel arrays, one entry per image."""

    rows: np.ndarray
    rules: np.ndarray  # index into the list of image rules
    messages: np.ndarray  # object
    details: np.ndarray  # object: dict or None
