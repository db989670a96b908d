"""The rules engine: run every selected rule over the inventory, apply protections,
the mutelist and per-namespace overrides, and build deletion units.

Pure: no I/O (except reading the optional in-use images file named in the config when
the caller passes no references — a protection must never be silently dropped).

Order of work:

1. derived columns and dependency edges (:func:`protections.derive`), the tag table;
2. protections as columns (:func:`protections.compute_protections`), once;
3. each enabled rule, once per group of namespaces sharing the same effective options;
4. per-namespace ``ignore`` and the mutelist (expired entries are reported, not honoured);
5. image-deletion hits → kept (protected, mutelisted, rule-level keep) or deletable; the
   deletable ones become *units*: the image, its index children (unless another
   surviving index lists them) and its referrers, to be deleted together.
"""

from __future__ import annotations

import fnmatch
import functools
import gc
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from hygiene.model import Finding, KeptImage, Severity
from hygiene.rules import protections as prot
from hygiene.rules.base import RULES, Deletes, Rule, RuleContext, Scope
from hygiene.rules.settings import MuteRule, RuleSettings, resolve

if TYPE_CHECKING:
    from hygiene.config import Config
    from hygiene.inventory import Inventory


@dataclass
class Evaluation:
    """The result of :func:`evaluate`."""

    findings: list[Finding]
    kept: list[KeptImage]
    mute_warnings: list[str]
    # per image row: digest, repository … and every protection column (see protections)
    protections: pd.DataFrame = field(default_factory=pd.DataFrame)
    muted: list[Finding] = field(default_factory=list)  # suppressed by the mutelist
    rules_run: tuple[str, ...] = ()
    # CPU seconds per phase and per rule (process time: stable on a shared machine)
    timings: dict[str, float] = field(default_factory=dict)

    def deletable_digests(self) -> set[tuple[str, str, str, str]]:
        """(account, region, repository, digest) of every image in a deletion unit."""
        out = set()
        for finding in self.findings:
            for digest in finding.details.get("unit", ()):
                out.add((finding.account, finding.region, finding.repository or "", digest))
        return out

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for finding in self.findings:
            counts[finding.code] += 1
        return dict(sorted(counts.items()))


def evaluate(
    inventory: Inventory,
    config: Config,
    now: datetime,
    *,
    in_use: Sequence[prot.ImageReference] | None = None,
) -> Evaluation:
    """Evaluate every selected rule on ``inventory`` (pure; see module docstring)."""
    with _no_gc():
        return _evaluate(inventory, config, now, in_use)


def _evaluate(
    inventory: Inventory,
    config: Config,
    now: datetime,
    in_use: Sequence[prot.ImageReference] | None,
) -> Evaluation:
    clock = _Clock()
    settings = resolve(config)
    now_ts = pd.Timestamp(now)
    now_ts = now_ts.tz_localize("UTC") if now_ts.tzinfo is None else now_ts.tz_convert("UTC")
    if in_use is None:
        path = config.policy.protections.in_use_images_file
        in_use = prot.read_in_use_file(path) if path is not None else []

    repositories = inventory.repositories.reset_index(drop=True)
    images, edges = prot.derive(inventory.images, repositories)
    clock.lap("derive")
    tag_table = prot.build_tag_table(images)
    clock.lap("tag-table")
    namespaces = _namespaces(images, repositories)
    protections = prot.compute_protections(
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
    )
    clock.lap("protections")
    mute_warnings, mutes = _active_mutes(settings, now_ts)
    run = _Run(config, settings, images, repositories, tag_table, now_ts, protections, mutes)
    run.clock = clock  # the deletion-unit phase reports its own laps

    image_hits: list[tuple[Rule, pd.DataFrame]] = []
    rules_run = []
    for code in sorted(RULES):
        rule = RULES[code]
        hits = run.run_rule(rule, namespaces)
        if hits is None:
            continue
        rules_run.append(code)
        if rule.scope is Scope.IMAGE:
            image_hits.append((rule, hits))
        else:
            run.add_non_image(rule, hits)
        clock.lap(code)
    run.add_image_hits(image_hits, edges)
    clock.lap("image-findings")
    # image rules (IM) sort before every other family: rules ran in code order, so
    # putting the image findings first keeps the whole list ordered by code
    run.findings = run.image_findings + run.findings

    protection_frame = protections.frame  # owned here: add the identifying columns in place
    for position, column in enumerate(("account", "region", "repository", "digest")):
        protection_frame.insert(position, column, images[column])
    clock.lap("protection-frame")
    kept = run.kept_images()
    clock.lap("kept-images")
    return Evaluation(
        findings=run.findings,
        kept=kept,
        mute_warnings=mute_warnings,
        protections=protection_frame,
        muted=run.muted,
        rules_run=tuple(rules_run),
        timings=clock.laps,
    )


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector during an evaluation.

    An inventory holds millions of container objects (tag lists) and an evaluation
    builds hundreds of thousands more (findings); every generation-2 collection walks
    all of them, which made the collector the largest single cost. Nothing here builds
    reference cycles worth collecting, and reference counting still frees memory.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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


def _active_mutes(settings: RuleSettings, now: pd.Timestamp) -> tuple[list[str], list[MuteRule]]:
    today = now.date()
    warnings, active = [], []
    for mute in settings.mutelist:
        if mute.expired(today):
            warnings.append(
                f"{settings.source}: {mute.describe()} expired on {mute.expires}; "
                f"not honoured (reason was: {mute.reason})"
            )
        else:
            active.append(mute)
    return warnings, active


def _iso(values: pd.Series) -> list[str | None]:
    """ISO 8601 UTC strings (``2026-11-28T03:00:00Z``), None for NaT.

    Formats each distinct day once and each second of the day from a table, then joins
    them with numpy's object add: several times faster than ``np.datetime_as_string``.
    """
    array = prot.utc_ns(values)
    nat = np.isnat(array)
    seconds = array.astype("datetime64[s]").astype(np.int64)
    seconds[nat] = 0
    days, second_of_day = np.divmod(seconds, 86400)
    unique_days, inverse = np.unique(days, return_inverse=True)
    day_text = np.datetime_as_string(unique_days.astype("datetime64[D]")).astype(object)
    text = day_text[inverse] + _time_of_day_table()[second_of_day]
    text[nat] = None
    return list(text.tolist())


@functools.cache
def _time_of_day_table() -> np.ndarray:
    table = np.empty(86400, dtype=object)
    table[:] = [
        f"T{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)
    ]
    return table


class _Run:
    """State of one evaluation: shared frames and the findings built so far."""

    def __init__(
        self,
        config: Config,
        settings: RuleSettings,
        images: pd.DataFrame,
        repositories: pd.DataFrame,
        tag_table: pd.DataFrame,
        now: pd.Timestamp,
        protections: prot.Protections,
        mutes: list[MuteRule],
    ) -> None:
        self.config = config
        self.settings = settings
        self.images = images
        self.repositories = repositories
        self.tag_table = tag_table
        self.now = now
        self.protections = protections
        self.mutes = mutes
        self.clock = _Clock()
        self.digest_array = prot.arrow_strings(images["digest"])
        self.findings: list[Finding] = []
        self.image_findings: list[Finding] = []
        self.muted: list[Finding] = []
        self.kept: dict[int, list[str]] = {}
        self.repo_incomplete = repositories["scan_error"].notna().to_numpy(dtype=bool)
        key = config.policy.protections.opt_out_tag_key
        self.repo_opt_out = np.array(
            [str((t or {}).get(key, "")).lower() == "true" for t in repositories["resource_tags"]],
            dtype=bool,
        )

    # ------------------------------------------------------------------ running rules

    def run_rule(self, rule: Rule, namespaces: list[str | None]) -> pd.DataFrame | None:
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
        return pd.concat(parts) if parts else parts_empty(rule)

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
        )

    # ------------------------------------------------------------------ repository rules

    def add_non_image(self, rule: Rule, hits: pd.DataFrame) -> None:
        if not len(hits):
            return
        if rule.scope is Scope.REPOSITORY:
            rows = hits.index.to_numpy(dtype=np.int64)
            keep = np.ones(len(rows), dtype=bool)
            if rule.needs_complete_repository:
                keep &= ~self.repo_incomplete[rows]
            if rule.deletes is Deletes.REPOSITORY:
                keep &= ~self.repo_opt_out[rows] & ~self._repos_in_use(rows)
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
            finding = Finding(
                code=rule.code,
                rule=rule.name,
                severity=rule.severity,
                account=account,
                region=region,
                repository=name,
                namespace=namespace,
                message=message,
                fix=rule.fix,
                fix_safety=rule.fix_safety,
                details=dict(detail) if isinstance(detail, dict) else {},
            )
            if self._muted_non_image(rule.code, name, namespace):
                self.muted.append(finding)
            else:
                self.findings.append(finding)

    def _repos_in_use(self, repo_rows: np.ndarray) -> np.ndarray:
        used = self.protections.frame["in_use"].to_numpy(dtype=bool)
        used_repos = np.unique(self.images["repo_row"].to_numpy()[used])
        return np.isin(repo_rows, used_repos)

    def _muted_non_image(self, code: str, repository: str | None, namespace: str | None) -> bool:
        for mute in self.mutes:
            if code not in mute.codes or mute.digest is not None:
                continue
            if repository is not None and fnmatch.fnmatchcase(repository, mute.repository):
                return True
            if (
                repository is None
                and namespace is not None
                and (
                    fnmatch.fnmatchcase(namespace, mute.repository)
                    or fnmatch.fnmatchcase(namespace + "/", mute.repository)
                )
            ):
                return True
        return False

    def _muted_images(self, code: str, rows: np.ndarray) -> np.ndarray:
        muted = np.zeros(len(rows), dtype=bool)
        mutes = [m for m in self.mutes if code in m.codes]
        if not mutes or not len(rows):
            return muted
        repository = self.images["repository"].to_numpy()[rows]
        digest = self.images["digest"].to_numpy(dtype=object)[rows]
        for mute in mutes:
            names = pd.Series(pd.unique(repository)).astype(str)
            hit_names = set(names[prot.match_globs(names, [mute.repository])])
            mask = np.isin(repository.astype(str), list(hit_names))
            if mute.digest is not None:
                mask &= prot.match_globs(pd.Series(digest, dtype=str), [mute.digest])
            muted |= mask
        return muted

    # ------------------------------------------------------------------ image rules

    def add_image_hits(self, rule_hits: list[tuple[Rule, pd.DataFrame]], edges: prot.Edges) -> None:
        protected = self.protections.protected
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
            muted = self._muted_images(rule.code, rows)
            kept = protected[rows] | rule_keep | muted
            if kept.any():
                kept_rows = rows[kept]
                reasons = self.protections.reasons(kept_rows)
                extra = (
                    hits["keep_reason"].to_numpy(dtype=object)[kept]
                    if "keep_reason" in hits
                    else [None] * len(kept_rows)
                )
                for row, why, rule_reason, is_muted in zip(
                    kept_rows.tolist(), reasons, extra, muted[kept].tolist(), strict=True
                ):
                    bucket = self.kept.setdefault(row, [])
                    for reason in (
                        *why,
                        rule_reason if isinstance(rule_reason, str) else None,
                        "mutelisted" if is_muted else None,
                    ):
                        if reason and reason not in bucket:
                            bucket.append(reason)
            deletable_by_rule.append((rule, hits[~kept]))

        hit_frames = [(i, h) for i, (_, h) in enumerate(deletable_by_rule) if len(h)]
        if not hit_frames:
            return
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
        self.clock.lap("kept")
        units = self._build_units(primary.rows, edges)
        self.clock.lap("units")
        self._image_findings([r for r, _ in deletable_by_rule], primary, units, also)

    def _build_units(self, roots: np.ndarray, edges: prot.Edges) -> _Units:
        """Members of each deletion unit: columns root, member, level (root level 0)."""
        n = len(self.images)
        protected = self.protections.protected
        unit_of = np.full(n, -1, dtype=np.int64)
        unit_of[roots] = roots
        level_of = np.full(n, -1, dtype=np.int64)
        level_of[roots] = 0
        frontier = roots
        excluded: dict[int, str] = {}
        for level in range(1, prot.MAX_DEPTH + 2):
            if not len(frontier):
                break
            in_frontier = np.zeros(n, dtype=bool)
            in_frontier[frontier] = True
            # index children of the frontier
            take = in_frontier[edges.parent]
            children, parents = edges.child[take], edges.parent[take]
            root_of_child = unit_of[parents]
            # a child joins only if every index listing it is in the same unit
            all_parent_units = pd.DataFrame(
                {"child": edges.child, "unit": unit_of[edges.parent]}
            ).loc[np.isin(edges.child, children)]
            same = all_parent_units.groupby("child")["unit"].agg(["min", "max"])
            ok_child = (
                (same["min"] == same["max"]).reindex(children).to_numpy(dtype=bool)
                & (same["min"].reindex(children).to_numpy() == root_of_child)
                & ~protected[children]
                & (unit_of[children] < 0)
            )
            for child in children[~ok_child].tolist():
                if unit_of[child] < 0:
                    excluded[child] = "protected" if protected[child] else "child"
            # referrers of the frontier
            take = in_frontier[edges.subject]
            referrers, subjects = edges.referrer[take], edges.subject[take]
            ok_ref = ~protected[referrers] & (unit_of[referrers] < 0)
            for referrer in referrers[~ok_ref].tolist():
                if unit_of[referrer] < 0:
                    excluded[referrer] = "protected"
            new_members = np.concatenate([children[ok_child], referrers[ok_ref]])
            new_roots = np.concatenate([root_of_child[ok_child], unit_of[subjects[ok_ref]]])
            new_members, first = np.unique(new_members, return_index=True)
            unit_of[new_members] = new_roots[first]
            level_of[new_members] = level
            frontier = new_members
        # why an excluded dependent stays: its own protection, or another index that
        # lists it survives, or the indexes listing it go in different units
        kept_parent = (
            np.bincount(edges.child, weights=unit_of[edges.parent] < 0, minlength=n) > 0
            if n
            else np.zeros(0, dtype=bool)
        )
        for row, why in excluded.items():
            if unit_of[row] >= 0:
                continue
            if why == "protected":
                reasons = list(self.protections.reasons(np.array([row]))[0])
            elif kept_parent[row]:
                reasons = ["child-of-kept-index"]
            else:
                reasons = ["child-of-several-indexes"]
            bucket = self.kept.setdefault(row, [])
            bucket.extend(r for r in reasons if r not in bucket)
        members = np.flatnonzero(unit_of >= 0)
        # root first (level 0), then children and referrers level by level, by row
        order = np.lexsort((members, level_of[members], unit_of[members]))
        members = members[order]
        return _Units.build(
            unit_of[members],
            self.digest_objects(members),
            self.images["storage_bytes"].to_numpy()[members],
        )

    def digest_objects(self, rows: np.ndarray) -> np.ndarray:
        """Digests of ``rows`` as an object array of str (made only for these rows)."""
        out = np.empty(len(rows), dtype=object)
        out[:] = self.digest_array.take(pa.array(rows)).to_pylist()
        return out

    def _image_findings(
        self,
        rules: list[Rule],
        primary: _Hits,
        units: _Units,
        also: dict[int, list[str]],
    ) -> None:
        rows = primary.rows
        order = np.lexsort(
            (
                prot.utc_ns(self.images["pushed_at"])[rows],
                self.images["repo_id"].to_numpy()[rows],
                primary.rules,
            )
        )
        rows = rows[order]
        columns = ["account", "region", "repository", "namespace", "tags", "pushed_at"]
        sub = self.images[[*columns, "unit_last_pull"]].iloc[rows]
        digests_of, bytes_of = units.lookup(rows)
        namespaces = sub["namespace"].astype(object).where(sub["namespace"].notna(), None)
        constants = [(r.code, r.name, r.severity, r.fix, r.fix_safety) for r in rules]
        also_of = np.full(len(rows), None, dtype=object)
        if also:
            positions = pd.Index(rows).get_indexer(np.fromiter(also, dtype=np.int64))
            for position, codes in zip(positions.tolist(), also.values(), strict=True):
                also_of[position] = codes
        columns_as_lists = (
            primary.rules[order].tolist(),
            pylist(sub["account"]),
            pylist(sub["region"]),
            pylist(sub["repository"]),
            namespaces.tolist(),
            sub["tags"].tolist(),
            primary.messages[order].tolist(),
            digests_of,
            bytes_of,
            _iso(sub["pushed_at"]),
            _iso(sub["unit_last_pull"]),
            primary.details[order].tolist(),
            also_of.tolist(),
        )
        self.clock.lap("image-findings-prep")
        append = self.image_findings.append
        for (
            rule_index,
            account,
            region,
            repository,
            namespace,
            tags,
            message,
            unit,
            size,
            pushed_at,
            last_pull,
            detail,
            other_rules,
        ) in zip(*columns_as_lists, strict=True):
            code, name, severity, fix, fix_safety = constants[rule_index]
            details: dict[str, Any] = {"unit": unit, "pushed_at": pushed_at, "last_pull": last_pull}
            if other_rules is not None:
                details["also"] = other_rules
            if isinstance(detail, dict):
                details.update(detail)
            finding = Finding(
                code=code,
                rule=name,
                severity=severity,
                account=account,
                region=region,
                repository=repository,
                namespace=namespace,
                message=message,
                fix=fix,
                fix_safety=fix_safety,
                image_digest=unit[0],
                tags=tuple(tags),
                bytes=size,
                details=details,
            )
            append(finding)

    def kept_images(self) -> list[KeptImage]:
        if not self.kept:
            return []
        rows = np.array(sorted(self.kept), dtype=np.int64)
        sub = self.images.iloc[rows]
        out = [
            KeptImage(
                account=account,
                region=region,
                repository=repository,
                image_digest=digest,
                tags=tuple(tags),
                reasons=tuple(self.kept[row]),
            )
            for row, account, region, repository, digest, tags in zip(
                rows.tolist(),
                pylist(sub["account"]),
                pylist(sub["region"]),
                pylist(sub["repository"]),
                pylist(sub["digest"]),
                sub["tags"].tolist(),
                strict=True,
            )
        ]
        out.sort(key=lambda k: (k.account, k.region, k.repository, k.image_digest))
        return out


@dataclass
class _Hits:
    """Image hits that became deletions: parallel arrays, one entry per image."""

    rows: np.ndarray
    rules: np.ndarray  # index into the list of image rules
    messages: np.ndarray  # object
    details: np.ndarray  # object: dict or None


@dataclass
class _Units:
    """Deletion units: for each root row, its member digests (root first) and bytes."""

    roots: np.ndarray  # sorted unique root rows
    digests: list[list[str]]
    bytes: np.ndarray

    @classmethod
    def build(cls, roots: np.ndarray, digests: np.ndarray, sizes: np.ndarray) -> _Units:
        """From parallel arrays sorted by root (digests: object array of str)."""
        unique, starts, counts = np.unique(roots, return_index=True, return_counts=True)
        flat = digests.tolist()  # the same str objects, not copies
        ends = starts + counts
        lists = [flat[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
        total = np.add.reduceat(sizes, starts) if len(starts) else starts
        return cls(roots=unique, digests=lists, bytes=np.asarray(total, dtype=np.int64))

    def lookup(self, rows: np.ndarray) -> tuple[list[list[str]], list[int]]:
        position = np.searchsorted(self.roots, rows)
        if len(rows) and not np.array_equal(self.roots[position], rows):
            raise AssertionError("an image finding without a deletion unit")
        return [self.digests[p] for p in position.tolist()], self.bytes[position].tolist()


def pylist(values: pd.Series) -> list[Any]:
    """A column as a list of Python objects, without pandas' per-element iteration of
    pyarrow-backed strings (categoricals convert fast on their own)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.tolist()
    return values.to_numpy(dtype=object, na_value=None).tolist()


def _namespace_mask(column: pd.Series, members: list[str | None]) -> np.ndarray:
    named = [m for m in members if m is not None]
    mask = column.astype(object).isin(named).to_numpy(dtype=bool)
    if None in members:
        # a new array: pandas (copy-on-write) may hand out read-only views
        mask = mask | column.isna().to_numpy(dtype=bool)
    return mask


def parts_empty(rule: Rule) -> pd.DataFrame:
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
    return int(any(f.severity.rank >= threshold for f in findings))
