"""The rules engine: run every selected rule over the inventory, apply protections,
the mutelist and per-namespace overrides, and build deletion units.

Pure: no I/O, except one case: an inventory built without in-use discovery (offline, in
tests) whose config names an in-use images file gets that file read here — a configured
protection must never be silently dropped.

Order of work:

1. derived columns and dependency edges (:func:`~hygiene.rules.protections.derive`),
   the tag table;
2. protections as columns (:func:`~hygiene.rules.protections.compute_protections`), once;
3. each enabled rule, once per group of namespaces sharing the same effective options
   (here), minus per-namespace ``ignore``;
4. findings (:mod:`hygiene.rules.findings`): the mutelist (:mod:`hygiene.rules.muting`;
   expired entries are reported, not honoured); image-deletion hits → kept (protected,
   mutelisted, rule-level keep: :mod:`hygiene.rules.kept`) or deletable; the deletable
   ones become *units* (:mod:`hygiene.rules.units`): the image, its index children
   (unless another surviving index lists them) and its referrers, deleted together.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hygiene.findingtable import Findings
from hygiene.gcpause import paused_gc
from hygiene.messages import Message
from hygiene.model import Finding, KeptImage, Severity
from hygiene.rules.base import RULES, Rule, RuleContext, Scope
from hygiene.rules.findings import RepositoryFindings, drop_superseded, image_findings
from hygiene.rules.kept import KeptImages
from hygiene.rules.muting import active_mutes
from hygiene.rules.protections import build_tag_table, compute_protections, derive
from hygiene.rules.settings import RuleSettings, resolve

if TYPE_CHECKING:
    from hygiene.config import Config
    from hygiene.inventory import Inventory


@dataclass
class Evaluation:
    """The result of :func:`evaluate`.

    ``findings`` is a :class:`~hygiene.findingtable.Findings` from :func:`evaluate` (a
    sequence whose image findings stay columns); any sequence of findings will do.
    """

    findings: Sequence[Finding]
    kept: list[KeptImage]
    mute_warnings: list[Message]  # expired mutelist entries
    # per image row: digest, repository … and every protection column (see protections)
    protections: pd.DataFrame = field(default_factory=pd.DataFrame)
    muted: list[Finding] = field(default_factory=list)  # suppressed by the mutelist
    rules_run: tuple[str, ...] = ()
    # CPU seconds per phase and per rule (process time: stable on a shared machine)
    timings: dict[str, float] = field(default_factory=dict)

    def deletable_digests(self) -> set[tuple[str, str, str, str]]:
        """(account, region, repository, digest) of every image in a deletion unit."""
        out = set()
        findings = self.findings
        if isinstance(findings, Findings):
            if findings.image is not None:
                out |= findings.image.unit_members()
            findings = findings.other
        for finding in findings:
            for digest in finding.details.get("unit", ()):
                out.add((finding.account, finding.region, finding.repository or "", digest))
        return out

    def counts(self) -> dict[str, int]:
        if isinstance(self.findings, Findings):
            return self.findings.counts()
        counts: dict[str, int] = defaultdict(int)
        for finding in self.findings:
            counts[finding.code] += 1
        return dict(sorted(counts.items()))


def evaluate(
    inventory: Inventory,
    config: Config,
    now: datetime,
    *,
    in_use: pd.DataFrame | None = None,
) -> Evaluation:
    """Evaluate every selected rule on ``inventory`` (pure; see module docstring).

    ``in_use`` (an ``inventory.in_use``-shaped frame) replaces what the inventory
    recorded; an in-use source recorded as failed in ``inventory.run.in_use`` keeps every
    image (no image deletion is proposed on that run).
    """
    with paused_gc():
        return _evaluate(inventory, config, now, in_use)


def _in_use_of(inventory: Inventory, config: Config) -> pd.DataFrame:
    """The inventory's in-use references, or (no discovery recorded) the configured file's."""
    path = config.policy.protections.in_use_images_file
    if inventory.run.in_use or path is None:
        return inventory.in_use
    from hygiene.collect.workloads.base import SourceError
    from hygiene.collect.workloads.file import read_file
    from hygiene.errors import ConfigError
    from hygiene.inventory import build_in_use

    try:
        uses = read_file(path).uses
    except SourceError as exc:
        raise ConfigError(f"protections.in_use_images_file: {exc.message}") from exc
    return build_in_use(u.to_json() for u in uses)


def _evaluate(
    inventory: Inventory,
    config: Config,
    now: datetime,
    in_use: pd.DataFrame | None,
) -> Evaluation:
    clock = _Clock()
    settings = resolve(config)
    now_ts = pd.Timestamp(now)
    now_ts = now_ts.tz_localize("UTC") if now_ts.tzinfo is None else now_ts.tz_convert("UTC")
    if in_use is None:
        in_use = _in_use_of(inventory, config)
    unknown = [status.name for status in inventory.run.in_use_failed]

    repositories = inventory.repositories.reset_index(drop=True)
    images, edges = derive(inventory.images, repositories)
    clock.lap("derive")
    tag_table = build_tag_table(images)
    clock.lap("tag-table")
    namespaces = _namespaces(images, repositories)
    protections = compute_protections(
        images,
        repositories,
        edges,
        tag_table,
        config.policy.protections,
        {None: settings.protected_tags}
        | {
            ns: settings.protected_tags_for(ns)
            for ns in namespaces
            if ns is not None and settings.protected_tags_for(ns) != settings.protected_tags
        },
        now_ts,
        in_use,
        in_use_unknown=unknown,
    )
    clock.lap("protections")
    mute_warnings, mutes = active_mutes(settings, now_ts)
    runner = _RuleRunner(config, settings, images, repositories, tag_table, now_ts)
    runner.in_use_reasons = protections.frame["in_use_reason"].astype(object).to_numpy()
    repository_findings = RepositoryFindings(
        images, repositories, protections, mutes, config.policy.protections.opt_out_tag_key
    )

    image_hits: list[tuple[Rule, pd.DataFrame]] = []
    rules_run = []
    for code in sorted(RULES):
        rule = RULES[code]
        hits = runner.run(rule, namespaces)
        if hits is None:
            continue
        rules_run.append(code)
        if rule.scope is Scope.IMAGE:
            image_hits.append((rule, hits))
        else:
            repository_findings.add(rule, hits)
        clock.lap(code)
    kept = KeptImages()
    image = image_findings(image_hits, images, protections, mutes, edges, kept, clock.lap)
    clock.lap("image-findings")
    # image rules (IM) sort before every other family: rules ran in code order, so
    # putting the image findings first keeps the whole list ordered by code; image rules
    # that delete nothing report plain findings, first among the others
    others = image.reported + repository_findings.findings
    muted = image.muted + repository_findings.muted
    everything = others + muted
    # one problem, one finding (supersedes name namespace and repository rules only)
    others, muted = drop_superseded(others, everything), drop_superseded(muted, everything)
    findings = Findings(image.columns, others)

    protection_frame = protections.frame  # owned here: add the identifying columns in place
    for position, column in enumerate(("account", "region", "repository", "digest")):
        protection_frame.insert(position, column, images[column])
    clock.lap("protection-frame")
    kept_images = kept.to_list(images)
    clock.lap("kept-images")
    return Evaluation(
        findings=findings,
        kept=kept_images,
        mute_warnings=mute_warnings,
        protections=protection_frame,
        muted=muted,
        rules_run=tuple(rules_run),
        timings=clock.laps,
    )


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.process_time()

    def lap(self, name: str) -> None:
        now = time.process_time()
        self.laps[name] = round(now - self._last, 4)
        self._last = now


def _namespaces(images: pd.DataFrame, repositories: pd.DataFrame) -> list[str | None]:
    values = {str(v) for v in repositories["namespace"].dropna().unique()}
    values |= {str(v) for v in images["namespace"].dropna().unique()}
    has_none = repositories["namespace"].isna().any() or images["namespace"].isna().any()
    return sorted(values) + ([None] if has_none else [])


class _RuleRunner:
    """Runs a rule once per group of namespaces that share its effective options."""

    def __init__(
        self,
        config: Config,
        settings: RuleSettings,
        images: pd.DataFrame,
        repositories: pd.DataFrame,
        tag_table: pd.DataFrame,
        now: pd.Timestamp,
    ) -> None:
        self.config = config
        self.settings = settings
        self.images = images
        self.repositories = repositories
        self.tag_table = tag_table
        self.now = now
        self.in_use_reasons: np.ndarray | None = None

    def run(self, rule: Rule, namespaces: list[str | None]) -> pd.DataFrame | None:
        settings = self.settings
        enabled = [ns for ns in namespaces if settings.enabled_for(rule.code, ns)]
        if not enabled and not (rule.code in settings.enabled and not namespaces):
            return None
        if rule.scope is Scope.NAMESPACE or not namespaces:
            # namespace rules compare namespaces with each other: global options only
            hits = rule.check(self._context(settings.options[rule.code]))
            if rule.scope is Scope.NAMESPACE and len(hits):
                allowed = [settings.enabled_for(rule.code, ns) for ns in hits["namespace"]]
                hits = hits[np.asarray(allowed, dtype=bool)]
            return hits
        groups: dict[str, list[str | None]] = defaultdict(list)
        for ns in enabled:
            groups[settings.options_key(rule.code, ns)].append(ns)
        parts = []
        for members in groups.values():
            options = settings.options_for(rule.code, members[0])
            if len(groups) == 1 and len(members) == len(namespaces):
                parts.append(rule.check(self._context(options)))
                continue
            image_mask = _namespace_mask(self.images["namespace"], members)
            repo_mask = _namespace_mask(self.repositories["namespace"], members)
            parts.append(
                rule.check(
                    self._context(
                        options,
                        self.images[image_mask],
                        self.repositories[repo_mask],
                        self.tag_table[image_mask[self.tag_table["row"].to_numpy()]],
                    )
                )
            )
        parts = [p for p in parts if len(p)]
        return pd.concat(parts) if parts else _no_hits(rule)

    def _context(
        self,
        options: dict[str, Any],
        images: pd.DataFrame | None = None,
        repositories: pd.DataFrame | None = None,
        tag_table: pd.DataFrame | None = None,
    ) -> RuleContext:
        return RuleContext(
            images=self.images if images is None else images,
            repositories=self.repositories if repositories is None else repositories,
            options=options,
            now=self.now,
            config=self.config,
            tag_table=self.tag_table if tag_table is None else tag_table,
            in_use_reasons=self.in_use_reasons,
        )


def _namespace_mask(column: pd.Series, members: list[str | None]) -> np.ndarray:
    named = [m for m in members if m is not None]
    mask = column.astype(object).isin(named).to_numpy(dtype=bool)
    if None in members:
        # a new array: pandas (copy-on-write) may hand out read-only views
        mask = mask | column.isna().to_numpy(dtype=bool)
    return mask


def _no_hits(rule: Rule) -> pd.DataFrame:
    if rule.scope is Scope.NAMESPACE:
        columns = ["account", "region", "namespace", "message", "details"]
    else:
        columns = ["message"]
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})


def filter_exit(findings: Sequence[Finding], fail_on: Severity | str | None) -> int:
    """Linter-like exit status: 1 if any finding is at or above ``fail_on``, else 0.

    ``fail_on`` is a severity (``error`` | ``warning`` | ``info``) or ``never``/None.
    """
    if fail_on is None or str(fail_on) in ("never", "none"):
        return 0
    threshold = Severity(str(fail_on)).rank
    if isinstance(findings, Findings):
        return int(any(s.rank >= threshold for s in findings.severities()))
    return int(any(f.severity.rank >= threshold for f in findings))
