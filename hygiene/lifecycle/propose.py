"""Turn generated policies into ``put-lifecycle-policy`` proposals (pure).

One proposal per repository whose current policy differs from the generated one (rule
descriptions, order and formatting ignored). The proposal is an *unsafe* fix: it carries
the policy text as its target and the local preview as evidence, so an admin approves
knowing what ECR would expire ("this policy would expire 312 images, 38.2 GiB").
Repositories that were not read completely (``scan_error``) or that opt out (resource
tag ``protections.opt_out_tag_key`` = ``true``) get no proposal.
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
from hygiene.inventory import Inventory, cell_text, namespace_of
from hygiene.lifecycle.batch import preview_repositories
from hygiene.lifecycle.diff import equivalent
from hygiene.lifecycle.generate import GeneratedPolicy, effective_settings, generate_policy
from hygiene.lifecycle.preview import NeverPulled, PreviewResult
from hygiene.model import Action, FixSafety, Proposal, proposal_id
from hygiene.units import human_bytes

log = logging.getLogger(__name__)

MISSING_POLICY_RULE = "RP002"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary_text(preview: PreviewResult, current: str | None) -> str:
    text = (
        f"this policy would expire {_plural(preview.images, 'image')}, {human_bytes(preview.bytes)}"
    )
    if preview.transitioned_images:
        text += (
            f", and archive {_plural(preview.transitioned_images, 'image')}, "
            f"{human_bytes(preview.transitioned_bytes)}"
        )
    text += " (replaces the current policy)" if current is not None else " (no policy yet)"
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
) -> Proposal:
    """The proposal value; its id is stable for the same policy, current text and preview."""
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
    evidence = {"current_policy": current, "preview": summary_preview}
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
        summary=summary_text(preview, current),
    )


@dataclass
class LifecyclePlan:
    proposals: list[Proposal] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # current policy already equivalent
    kept_existing: list[str] = field(default_factory=list)  # differs, but not replacing
    skipped: list[str] = field(default_factory=list)  # "repo: reason"
    previews: dict[str, PreviewResult] = field(default_factory=dict)


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
        if equivalent(current, generated.text):
            plan.unchanged.append(name)
            continue
        if current is not None and not replace_existing:
            plan.kept_existing.append(name)
            continue
        pending.append((row, name, ns, generated, current))

    previews = _previews(inventory.images, pending, now, settings.preview_never_pulled)
    for (row, name, ns, generated, current), preview in zip(pending, previews, strict=True):
        plan.previews[name] = preview
        plan.proposals.append(
            build_proposal(
                account=str(row.account),
                region=str(row.region),
                repository=name,
                namespace=ns,
                generated=generated,
                current=current,
                preview=preview,
            )
        )
    for line in plan.skipped:
        log.info("lifecycle: %s", line)
    return plan


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
