"""Turn generated policies into ``put-lifecycle-policy`` proposals (pure).

One proposal per repository whose current policy differs from the generated one (rule
descriptions, order and formatting ignored). The proposal is an *unsafe* fix: it carries
the policy text as its target and the local preview as evidence, so an admin approves
knowing what ECR would expire ("this policy would expire 312 images, 38.2 GiB").
Repositories that were not read completely (``scan_error``) or that opt out (resource
tag ``protections.opt_out_tag_key`` = ``true``) get no proposal.

ECR carries a policy out by itself, past every re-check apply makes for image deletions,
so the preview is matched with the images workloads run (``inventory.in_use``,
:mod:`hygiene.lifecycle.in_use`). An image in use that the policy would expire or archive
is shielded by an exact-tag rule when a workload names it by a tag it carries; when one
cannot be (named only by digest), or the shields do not fit ECR's limits, or an in-use
source could not be read, the repository gets no proposal and ``skipped`` says why,
naming the images and the workloads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

import numpy as np
import pandas as pd

from hygiene.config import Config
from hygiene.errors import LifecycleError
from hygiene.inventory import Inventory, cell_text, namespace_of
from hygiene.lifecycle.batch import preview_repositories
from hygiene.lifecycle.diff import equivalent
from hygiene.lifecycle.generate import (
    GeneratedPolicy,
    effective_settings,
    generate_policy,
    in_use_shield_tags,
    with_in_use_shields,
)
from hygiene.lifecycle.in_use import InUseHit, Use, hits_text, in_use_hits, uses_by_repository
from hygiene.lifecycle.preview import NeverPulled, PreviewResult, preview_policy
from hygiene.model import Action, FixSafety, Proposal, proposal_id
from hygiene.units import human_bytes

log = logging.getLogger(__name__)

MISSING_POLICY_RULE = "RP002"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary_text(
    preview: PreviewResult, current: str | None, shielded: list[InUseHit] | None = None
) -> str:
    text = (
        f"this policy would expire {_plural(preview.images, 'image')}, {human_bytes(preview.bytes)}"
    )
    if preview.transitioned_images:
        text += (
            f", and archive {_plural(preview.transitioned_images, 'image')}, "
            f"{human_bytes(preview.transitioned_bytes)}"
        )
    text += " (replaces the current policy)" if current is not None else " (no policy yet)"
    if shielded:
        tags = sorted({t for h in shielded for t in h.shield_tags})
        text += (
            f"; {_plural(len(shielded), 'image')} in use kept by tag shield(s) "
            f"{', '.join(tags)} ({shielded[0].reasons[0]}"
            f"{' …' if len(shielded) > 1 or len(shielded[0].reasons) > 1 else ''})"
        )
    return text


def build_proposal(
    *,
    account: str,
    region: str,
    repository: str,
    namespace: str | None,
    generated: GeneratedPolicy,
    current: str | None,
    preview: PreviewResult,
    rule_codes: tuple[str, ...] | None = None,
    in_use_checked: list[str] | None = None,
    shielded: list[InUseHit] | None = None,
) -> Proposal:
    """The proposal value; its id is stable for the same policy, current text and preview.

    ``in_use_checked`` names the in-use sources the scan read (None: no discovery was
    recorded); ``shielded`` the images in use the generated policy would have expired or
    archived, which its exact-tag shields keep: both are evidence (and so part of the id)."""
    target = {"policy": generated.text}
    summary_preview: dict[str, Any] = {
        "images": preview.images,
        "bytes": preview.bytes,
        "digests": preview.expired_digests,
    }
    if preview.transitioned_images:
        summary_preview["transitioned_images"] = preview.transitioned_images
        summary_preview["transitioned_bytes"] = preview.transitioned_bytes
        summary_preview["transitioned_digests"] = preview.transitioned_digests
    evidence: dict[str, Any] = {"current_policy": current, "preview": summary_preview}
    if in_use_checked is not None:
        evidence["in_use_checked"] = list(in_use_checked)
    if shielded:
        evidence["in_use_shielded"] = [h.to_json() for h in shielded]
    if rule_codes is None:
        rule_codes = (MISSING_POLICY_RULE,) if current is None else ()
    return Proposal(
        # the repository is part of the identity: two empty repositories with the same
        # generated policy are two proposals, not one
        # plain: strings, integers, None and lists (orjson writes the canonical text)
        id=proposal_id(
            Action.PUT_LIFECYCLE_POLICY,
            {"account": account, "region": region, "repository": repository, **target},
            evidence,
            plain=True,
        ),
        action=Action.PUT_LIFECYCLE_POLICY,
        account=account,
        region=region,
        repository=repository,
        namespace=namespace,
        target=target,
        evidence=evidence,
        rule_codes=rule_codes,
        fix_safety=FixSafety.UNSAFE,
        bytes=preview.bytes,
        summary=summary_text(preview, current, shielded),
    )


@dataclass
class LifecyclePlan:
    proposals: list[Proposal] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # current policy already equivalent
    kept_existing: list[str] = field(default_factory=list)  # differs, but not replacing
    skipped: list[str] = field(default_factory=list)  # "repo: reason"
    previews: dict[str, PreviewResult] = field(default_factory=dict)
    # repository → the images in use its policy would act on (no proposal: no shield keeps them)
    in_use_refused: dict[str, list[InUseHit]] = field(default_factory=dict)


def select_repositories(
    inventory: Inventory, *, repository: str | None = None, namespace: str | None = None
) -> pd.DataFrame:
    repos = inventory.repositories
    names = repos["name"].astype(str)
    if repository is not None:
        return repos[names.map(lambda n: fnmatchcase(n, repository))]
    if namespace is not None:
        return repos[repos["namespace"].astype(object) == namespace]
    return repos


def plan_lifecycle(
    inventory: Inventory,
    config: Config,
    now: datetime,
    *,
    repository: str | None = None,
    namespace: str | None = None,
    replace_existing: bool | None = None,
) -> LifecyclePlan:
    """Proposals for the selected repositories (all, one, a glob, or one namespace).

    A repository with a different policy of its own gets a proposal only when
    ``replace_existing`` (default: ``lifecycle.replace_existing``) is true.

    The repositories sharing one generated policy are previewed together
    (:func:`~hygiene.lifecycle.batch.preview_repositories`, the same result as one
    :func:`~hygiene.lifecycle.preview.preview_policy` per repository).
    """
    plan = LifecyclePlan()
    settings = config.policy.lifecycle
    if replace_existing is None:
        replace_existing = settings.replace_existing
    opt_out = config.policy.protections.opt_out_tag_key
    statuses = inventory.run.in_use
    unknown = [s.name for s in statuses if s.state == "failed"]
    checked = [s.name for s in statuses if s.state == "ok"] if statuses else None
    repos = select_repositories(inventory, repository=repository, namespace=namespace)
    generated_by_settings: dict[str, GeneratedPolicy] = {}
    settings_keys: dict[tuple[str | None, tuple[int, ...]], str] = {}
    pending: list[tuple[Any, str, str | None, GeneratedPolicy, str | None]] = []
    for row in repos.itertuples(index=False):
        name = str(row.name)
        error = cell_text(row.scan_error)
        if error is not None:
            plan.skipped.append(f"{name}: not read completely ({error}); no proposal")
            continue
        tags = row.resource_tags if isinstance(row.resource_tags, dict) else {}
        if str(tags.get(opt_out, "")).lower() == "true":
            plan.skipped.append(f"{name}: opted out by resource tag {opt_out}=true")
            continue
        ns = cell_text(row.namespace)
        generated = _generated(config, ns, name, generated_by_settings, settings_keys)
        current = cell_text(row.lifecycle_policy)
        if equivalent(current, generated.text) or _shielded_equivalent(current, generated):
            plan.unchanged.append(name)
            continue
        if current is not None and not replace_existing:
            plan.kept_existing.append(name)
            continue
        if unknown:
            plan.skipped.append(
                f"{name}: in-use source(s) could not be read ({', '.join(unknown)}): the "
                "policy could expire an image in use; no proposal"
            )
            continue
        pending.append((row, name, ns, generated, current))

    previews = _previews(inventory.images, pending, now, settings.preview_never_pulled)
    uses = uses_by_repository(
        inventory.in_use, [(str(r.account), str(r.region), name) for r, name, *_ in pending]
    )
    for (row, name, ns, generated, current), preview in zip(pending, previews, strict=True):
        key = (str(row.account), str(row.region), name)
        shielded = in_use_hits(preview, uses.get(key, []))
        if shielded:
            made = _shield(inventory.images, key, generated, shielded, uses[key], now, settings)
            if isinstance(made, str):
                plan.skipped.append(f"{name}: {made}; no proposal")
                plan.in_use_refused[name] = shielded
                continue
            generated, preview = made
        plan.previews[name] = preview
        plan.proposals.append(
            build_proposal(
                account=key[0],
                region=key[1],
                repository=name,
                namespace=ns,
                generated=generated,
                current=current,
                preview=preview,
                in_use_checked=checked,
                shielded=shielded,
            )
        )
    for line in plan.skipped:
        log.info("lifecycle: %s", line)
    return plan


def _shielded_equivalent(current: str | None, generated: GeneratedPolicy) -> bool:
    """``current`` is ``generated`` with in-use tag shields (the tool's own policy, put
    with the shields its scan added)."""
    if current is None:
        return False
    tags = in_use_shield_tags(current, generated)
    if not tags:
        return False
    try:
        return equivalent(current, with_in_use_shields(generated, tags).text)
    except LifecycleError:
        return False


def _shield(
    images: pd.DataFrame,
    key: tuple[str, str, str],
    generated: GeneratedPolicy,
    hits: list[InUseHit],
    uses: list[Use],
    now: datetime,
    settings: Any,
) -> tuple[GeneratedPolicy, PreviewResult] | str:
    """``generated`` with exact-tag shields for the images in use it acts on, and its
    preview; or why no policy can be proposed (the images a shield cannot keep)."""
    bare = [h for h in hits if not h.shield_tags]
    if bare:
        return (
            f"the policy would {_verbs(bare)} {_plural(len(bare), 'image')} in use that no "
            f"tag shield can keep (named by digest only): {hits_text(bare)}"
        )
    try:
        shielded = with_in_use_shields(generated, {t for h in hits for t in h.shield_tags})
    except LifecycleError as exc:
        return (
            f"the policy would {_verbs(hits)} {_plural(len(hits), 'image')} in use, and "
            f"their tag shields do not fit ECR's limits ({exc}): {hits_text(hits)}"
        )
    account, region, repository = key
    frame = images[
        (images["account"].astype(object) == account).to_numpy(dtype=bool)
        & (images["region"].astype(object) == region).to_numpy(dtype=bool)
        & (images["repository"].astype(object) == repository).to_numpy(dtype=bool)
    ]
    preview = preview_policy(
        shielded.policy, frame, now=now, never_pulled=settings.preview_never_pulled
    )
    left = in_use_hits(preview, uses)
    if left:  # a shield that did not keep its image: never propose it
        return (
            f"the policy would {_verbs(left)} {_plural(len(left), 'image')} in use even "
            f"with tag shields: {hits_text(left)}"
        )
    return shielded, preview


def _verbs(hits: list[InUseHit]) -> str:
    actions = {h.action for h in hits}
    if actions == {"transition"}:
        return "archive"
    return "expire or archive" if len(actions) > 1 else "expire"


def _generated(
    config: Config,
    namespace: str | None,
    name: str,
    cache: dict[str, GeneratedPolicy],
    keys: dict[tuple[str | None, tuple[int, ...]], str] | None = None,
) -> GeneratedPolicy:
    """:func:`generate_policy` for repository ``name``; repositories with the same
    effective settings share the policy (it depends on nothing else).

    ``keys`` remembers the effective settings' text by what they are made from: the
    namespace (``name``'s own when ``namespace`` is None, as :func:`effective_settings`
    takes it) and the ``lifecycle.overrides`` entries whose ``repositories`` match
    ``name``; the namespace decides the rest (its overrides and protected tags)."""
    if keys is None:
        key = effective_settings(config, namespace=namespace, repository=name).model_dump_json()
    else:
        overrides = config.policy.lifecycle.overrides
        which = (
            namespace if namespace is not None else namespace_of(name),
            tuple(
                i
                for i, o in enumerate(overrides)
                if any(fnmatchcase(name, p) for p in o.repositories)
            ),
        )
        known = keys.get(which)
        if known is None:
            known = keys[which] = effective_settings(
                config, namespace=namespace, repository=name
            ).model_dump_json()
        key = known
    cached = cache.get(key)
    if cached is not None:
        return replace(cached, scope=f"repository {name}")
    generated = generate_policy(config, namespace=namespace, repository=name)
    cache[key] = generated
    return generated


def _previews(
    images: pd.DataFrame,
    pending: list[tuple[Any, str, str | None, GeneratedPolicy, str | None]],
    now: datetime,
    never_pulled: NeverPulled,
) -> list[PreviewResult]:
    """The preview of each pending repository, one batch per distinct policy."""
    if not pending:
        return []
    keys = [(str(row.account), str(row.region), name) for row, name, *_ in pending]
    first: dict[tuple[str, str, str], int] = {}  # a repository listed twice: its first row
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    position = _repository_positions(images, list(first))
    position = np.where(position >= 0, np.array(list(first.values()))[np.maximum(position, 0)], -1)
    out: list[PreviewResult | None] = [None] * len(pending)
    by_text: dict[str, list[int]] = {}
    for i, (*_, generated, _current) in enumerate(pending):
        if first[keys[i]] == i:
            by_text.setdefault(generated.text, []).append(i)
    for members in by_text.values():
        local = np.full(len(pending), -1, dtype=np.int64)
        local[members] = np.arange(len(members))
        of_image = np.where(position >= 0, local[np.maximum(position, 0)], -1)
        results = preview_repositories(
            pending[members[0]][3].policy,
            images,
            of_image,
            [pending[i][1] for i in members],
            now=now,
            never_pulled=never_pulled,
        )
        for i, result in zip(members, results, strict=True):
            out[i] = result
    return [out[first[key]] for key in keys]  # type: ignore[misc]


def _repository_positions(images: pd.DataFrame, keys: list[tuple[str, str, str]]) -> np.ndarray:
    """For each image row, the position in ``keys`` (distinct) of its (account, region,
    repository), or -1."""
    if not len(images):
        return np.empty(0, dtype=np.int64)
    codes = []
    lookups = []
    for column in ("account", "region", "repository"):
        values = images[column]
        if not isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype("category")
        codes.append(values.cat.codes.to_numpy().astype(np.int64))
        lookups.append({str(c): i for i, c in enumerate(values.cat.categories)})
    sizes = [len(lookup) + 1 for lookup in lookups]

    def combine(a: Any, r: Any, n: Any) -> Any:
        return (a * sizes[1] + r) * sizes[2] + n

    image_key = combine(codes[0], codes[1], codes[2])
    wanted = np.array(
        [
            combine(lookups[0].get(a, -1), lookups[1].get(r, -1), lookups[2].get(n, -1))
            if a in lookups[0] and r in lookups[1] and n in lookups[2]
            else -1
            for a, r, n in keys
        ],
        dtype=np.int64,
    )
    present = wanted >= 0
    found = pd.Index(wanted[present]).get_indexer(image_key)
    positions = np.flatnonzero(present)
    return np.where(found >= 0, positions[np.maximum(found, 0)], -1).astype(np.int64)


def propose(
    inventory: Inventory,
    config: Config,
    now: datetime,
    *,
    repository: str | None = None,
    namespace: str | None = None,
    replace_existing: bool | None = None,
) -> list[Proposal]:
    """``put-lifecycle-policy`` proposals (unsafe) for the selected repositories."""
    plan = plan_lifecycle(
        inventory,
        config,
        now,
        repository=repository,
        namespace=namespace,
        replace_existing=replace_existing,
    )
    return plan.proposals
