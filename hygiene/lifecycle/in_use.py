"""Which images a lifecycle policy would expire or archive while a workload runs them (pure).

A lifecycle policy, once put, is carried out by ECR itself, daily, past every re-check
apply makes for image deletions. So the images a policy's preview acts on are matched
with the in-use references the scan recorded (``inventory.in_use``, docs/in-use.md), the
way :func:`hygiene.rules.in_use.in_use` matches them for deletions:

* by digest: the reference names the image's digest;
* by tag: the image carries the tag the reference names now;

only in the registry (account, region) the reference names, or in any when it names none.
The preview's actions already hold every member of a deletion unit (an index's platform
manifests, an image's referrers), so a platform manifest a task runs is found when its
index goes.

An image a workload names by a tag it carries can be *shielded*: a rule selecting exactly
that tag, ahead of every other rule, keeps it
(:func:`hygiene.lifecycle.generate.with_in_use_shields`).
An image named only by digest (untagged, or a tag that moved off it) cannot: ECR's
selection knows tags, not digests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hygiene.lifecycle.preview import PreviewResult


@dataclass(frozen=True)
class InUseHit:
    """One image a policy would act on while a workload names it."""

    digest: str
    action: str  # expire | transition
    tags: tuple[str, ...]  # the image's tags
    reasons: tuple[str, ...]  # in-use:<source>:<where>, sorted, each once
    shield_tags: tuple[str, ...]  # tags a workload names that the image carries now

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "action": self.action,
            "tags": list(self.tags),
            "in_use": list(self.reasons),
            "shield_tags": list(self.shield_tags),
        }

    def describe(self) -> str:
        """``sha256:0123456789ab (untagged; in-use:ecs:prod/service/web)``"""
        tags = ", ".join(self.tags) if self.tags else "untagged"
        more = f" (+{len(self.reasons) - 1} more)" if len(self.reasons) > 1 else ""
        return f"{self.digest[:19]} ({tags}; {self.reasons[0]}{more})"


@dataclass(frozen=True)
class Use:
    """One reference of the in-use frame, reduced to what matching needs."""

    label: str  # in-use:<source>:<where>
    tag: str | None
    digest: str | None


def _cell(value: Any) -> str | None:
    return None if value is None or value is pd.NA or (value != value) else str(value)


def uses_of(uses: pd.DataFrame | None, account: str, region: str, repository: str) -> list[Use]:
    """The references of ``uses`` (an ``inventory.in_use`` frame) to ``repository`` in
    the registry ``account``/``region`` (a reference naming no account or region counts
    in every registry, as for deletions)."""
    if uses is None or not len(uses):
        return []
    sub = uses[uses["repository"].astype(object) == repository]
    out = []
    for row in sub.itertuples(index=False):
        ref_account, ref_region = _cell(row.account), _cell(row.region)
        if ref_account is not None and ref_account != account:
            continue
        if ref_region is not None and ref_region != region:
            continue
        out.append(Use(f"in-use:{row.source}:{row.where}", _cell(row.tag), _cell(row.digest)))
    return out


def uses_by_repository(
    uses: pd.DataFrame | None, keys: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], list[Use]]:
    """:func:`uses_of` for each (account, region, repository) of ``keys`` that has any."""
    if uses is None or not len(uses):
        return {}
    named = set(uses["repository"].dropna().astype(str))
    out = {}
    for account, region, repository in keys:
        if repository in named:
            found = uses_of(uses, account, region, repository)
            if found:
                out[(account, region, repository)] = found
    return out


def in_use_hits(preview: PreviewResult, uses: list[Use]) -> list[InUseHit]:
    """The images ``preview`` expires or transitions that one of ``uses`` names, by
    digest."""
    if not uses or not (preview.images or preview.transitioned_images):
        return []
    by_digest: dict[str, list[Use]] = {}
    by_tag: dict[str, list[Use]] = {}
    for use in uses:
        if use.digest:
            by_digest.setdefault(use.digest, []).append(use)
        if use.tag:
            by_tag.setdefault(use.tag, []).append(use)
    hits = []
    for row in preview.actions.itertuples(index=False):
        digest = str(row.digest)
        tags = tuple(str(t) for t in row.tags)
        found = list(by_digest.get(digest, []))
        shield = sorted({t for t in tags if t in by_tag})
        for tag in shield:
            found += by_tag[tag]
        if found:
            hits.append(
                InUseHit(
                    digest=digest,
                    action=str(row.action),
                    tags=tags,
                    reasons=tuple(sorted({u.label for u in found})),
                    shield_tags=tuple(shield),
                )
            )
    return sorted(hits, key=lambda h: h.digest)


def hits_text(hits: list[InUseHit], limit: int = 3) -> str:
    """``sha256:… (v1; in-use:ecs:prod/service/api), … (+2 more)``"""
    shown = ", ".join(h.describe() for h in hits[:limit])
    return shown + (f" (+{len(hits) - limit} more)" if len(hits) > limit else "")


def checked_sources(statuses: Iterable[Any]) -> list[str]:
    """Names of the in-use sources a run read (state ``ok``)."""
    return [s.name for s in statuses if s.state == "ok"]
