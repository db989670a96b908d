"""Generate an ECR lifecycle policy for a namespace or repository from the config.

Layout of a generated policy (priorities are spaced so a reader sees the blocks):

====== ============================================================================
1–99   shield rules, one per protected tag pattern: ``tagged`` + ``tagPatternList
       [pattern]`` + ``imageCountMoreThan <protected_count_number>``
100    expire untagged images pushed more than ``expire_untagged_days`` ago
200    transition ``archive.patterns`` to the archive storage class (optional)
300–   keep the newest N images matching each ``keep_tagged`` entry
400–   shield rules for archived images (only when archived images are expired)
500    expire archived images after ``expire_archived_after_days`` (``any``: last)
====== ============================================================================

Why shields: ECR's tag selection is an AND of patterns with no negation, so "expire
everything except prod*" cannot be written as one selection. But ECR never lets a
lower-priority rule expire an image that a higher-priority rule's *selection* matched.
A first rule selecting ``prod*`` with a count no repository reaches therefore claims
every protected image without expiring any, and no later rule can touch them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase

from hygiene.config import Config
from hygiene.configlifecycle import LifecyclePolicySettings
from hygiene.errors import LifecycleError
from hygiene.inventory import namespace_of
from hygiene.lifecycle.policy import (
    LifecyclePolicy,
    LifecycleRule,
    pattern_covers,
    tag_matches_pattern,
)
from hygiene.lifecycle.validate import validate_policy

SHIELD_BASE = 1
UNTAGGED_PRIORITY = 100
ARCHIVE_PRIORITY = 200
KEEP_BASE = 300
ARCHIVED_SHIELD_BASE = 400
ARCHIVED_EXPIRE_PRIORITY = 500
DESCRIPTION_PREFIX = "hygiene: "


class EffectiveLifecycle(LifecyclePolicySettings):
    """The lifecycle settings that apply to one namespace/repository after overrides."""

    protected_count_number: int
    allow_since_image_pulled_expire: bool
    protected_tags: tuple[str, ...]


@dataclass(frozen=True)
class GeneratedPolicy:
    scope: str  # "repository suporte/api", "namespace suporte" or "registry default"
    policy: LifecyclePolicy
    text: str
    settings: EffectiveLifecycle
    notes: tuple[str, ...] = field(default=())


def _matches(name: str | None, patterns: list[str]) -> bool:
    return name is not None and any(fnmatchcase(name, p) for p in patterns)


def ecr_pattern(pattern: str) -> tuple[str, str | None]:
    """A protected-tag pattern (fnmatch) as an ECR pattern covering at least the same tags.

    ECR knows only ``*``; ``?`` and ``[...]`` are widened to ``*`` (a shield that covers
    more tags is still safe), with a note saying so.
    """
    out: list[str] = []
    i = 0
    widened = False
    while i < len(pattern):
        char = pattern[i]
        if char == "?":
            out.append("*")
            widened = True
        elif char == "[" and "]" in pattern[i + 1 :]:
            out.append("*")
            i = pattern.index("]", i + 1)
            widened = True
        else:
            out.append(char)
        i += 1
    text = "".join(out)
    while "**" in text:
        text = text.replace("**", "*")
    note = (
        f"protected tag pattern {pattern!r} shielded as {text!r} (ECR supports only '*')"
        if widened
        else None
    )
    return text, note


def protected_tags_for(config: Config, namespace: str | None) -> list[str]:
    """Global protected tags plus those of every namespace override matching ``namespace``.

    The union is taken (never fewer protections than the global list).
    """
    tags = list(config.policy.protections.protected_tags)
    for override in config.policy.overrides:
        if override.protected_tags and _matches(namespace, override.namespaces):
            tags.extend(t for t in override.protected_tags if t not in tags)
    return tags


def effective_settings(
    config: Config, *, namespace: str | None = None, repository: str | None = None
) -> EffectiveLifecycle:
    """The ``lifecycle:`` settings updated with every matching ``lifecycle.overrides`` entry:
    namespace matches in order, then repository matches; each entry changes the keys it
    sets (see :class:`~hygiene.configlifecycle.LifecycleOverride`)."""
    base = config.policy.lifecycle
    if repository is not None and namespace is None:
        namespace = namespace_of(repository)
    values = base.policy_settings()
    ordered = [o for o in base.overrides if _matches(namespace, o.namespaces)]
    ordered += [o for o in base.overrides if _matches(repository, o.repositories)]
    for override in ordered:
        values.update(override.policy_settings())
    return EffectiveLifecycle(
        **values,
        protected_count_number=base.protected_count_number,
        allow_since_image_pulled_expire=base.allow_since_image_pulled_expire,
        protected_tags=tuple(protected_tags_for(config, namespace)),
    )


def claims(outer: tuple[str, ...], inner: tuple[str, ...]) -> bool:
    """True when every image selected by pattern list ``inner`` is selected by ``outer``.

    Lists are ANDed, so ``outer`` claims ``inner`` when each outer pattern covers some
    inner pattern (conservatively, see :func:`pattern_covers`).
    """
    return all(any(pattern_covers(o, i) for i in inner) for o in outer)


def build_rules(settings: EffectiveLifecycle) -> tuple[list[LifecycleRule], list[str]]:
    """The rules for ``settings`` and notes about what was widened or dropped."""
    notes: list[str] = []
    rules: list[LifecycleRule] = []
    shields: list[str] = []
    for tag in settings.protected_tags:
        pattern, note = ecr_pattern(tag)
        if note:
            notes.append(note)
        if pattern not in shields:
            shields.append(pattern)
    for i, pattern in enumerate(shields):
        rules.append(
            LifecycleRule(
                rule_priority=SHIELD_BASE + i,
                description=f"{DESCRIPTION_PREFIX}protected tag {pattern!r}: never expired",
                tag_status="tagged",
                tag_pattern_list=(pattern,),
                count_type="imageCountMoreThan",
                count_number=settings.protected_count_number,
            )
        )
    claimed: list[tuple[str, tuple[str, ...]]] = [(f"protected tag {p!r}", (p,)) for p in shields]

    if settings.expire_untagged_days is not None:
        days = settings.expire_untagged_days
        rules.append(
            LifecycleRule(
                rule_priority=UNTAGGED_PRIORITY,
                description=f"{DESCRIPTION_PREFIX}expire untagged images after {days} days",
                tag_status="untagged",
                count_type="sinceImagePushed",
                count_unit="days",
                count_number=days,
            )
        )

    if settings.archive is not None:
        archive = settings.archive
        patterns = tuple(archive.patterns)
        owner = next((name for name, sel in claimed if claims(sel, patterns)), None)
        if owner:
            notes.append(f"archive rule for {list(patterns)} dropped: all its images are {owner}")
        else:
            basis = "last pull" if archive.count_type == "sinceImagePulled" else "push"
            rules.append(
                LifecycleRule(
                    rule_priority=ARCHIVE_PRIORITY,
                    description=(
                        f"{DESCRIPTION_PREFIX}archive {list(patterns)} "
                        f"{archive.after_days} days after {basis}"
                    ),
                    tag_status="tagged",
                    tag_pattern_list=patterns,
                    count_type=archive.count_type,
                    count_unit="days",
                    count_number=archive.after_days,
                    action="transition",
                    target_storage_class="archive",
                )
            )
            claimed.append((f"archived by the rule for {list(patterns)}", patterns))

    for i, keep in enumerate(settings.keep_tagged):
        patterns = tuple(keep.patterns)
        owner = next((name for name, sel in claimed if claims(sel, patterns)), None)
        if owner:
            notes.append(
                f"keep_tagged {list(patterns)} (keep {keep.keep}) dropped: "
                f"every image it selects is {owner} first"
            )
            continue
        rules.append(
            LifecycleRule(
                rule_priority=KEEP_BASE + i,
                description=f"{DESCRIPTION_PREFIX}keep the newest {keep.keep} {list(patterns)}",
                tag_status="tagged",
                tag_pattern_list=patterns,
                count_type="imageCountMoreThan",
                count_number=keep.keep,
            )
        )
        claimed.append((f"kept by the rule for {list(patterns)}", patterns))

    if settings.expire_archived_after_days is not None:
        for i, pattern in enumerate(shields):
            rules.append(
                LifecycleRule(
                    rule_priority=ARCHIVED_SHIELD_BASE + i,
                    description=(
                        f"{DESCRIPTION_PREFIX}protected tag {pattern!r}: "
                        "archived copy never expired"
                    ),
                    tag_status="tagged",
                    tag_pattern_list=(pattern,),
                    storage_class="archive",
                    count_type="sinceImageTransitioned",
                    count_unit="days",
                    count_number=settings.protected_count_number,
                )
            )
        days = settings.expire_archived_after_days
        rules.append(
            LifecycleRule(
                rule_priority=ARCHIVED_EXPIRE_PRIORITY,
                description=f"{DESCRIPTION_PREFIX}expire images archived for {days} days",
                tag_status="any",
                storage_class="archive",
                count_type="sinceImageTransitioned",
                count_unit="days",
                count_number=days,
            )
        )
    return rules, notes


def generate_policy(
    config: Config, *, namespace: str | None = None, repository: str | None = None
) -> GeneratedPolicy:
    """The policy for ``repository`` (or every repository of ``namespace``), validated.

    Raises :class:`LifecycleError` when the settings give no rule at all or a policy ECR
    would refuse (more than 50 rules, too long …).
    """
    if repository is not None:
        scope = f"repository {repository}"
    elif namespace is not None:
        scope = f"namespace {namespace}"
    else:
        scope = "registry default"
    settings = effective_settings(config, namespace=namespace, repository=repository)
    rules, notes = build_rules(settings)
    if not rules:
        raise LifecycleError(
            f"{scope}: lifecycle settings give no rule (no protected tags, "
            "expire_untagged_days, keep_tagged or archive)"
        )
    policy = LifecyclePolicy(tuple(rules))
    text = policy.to_text()
    validate_policy(
        text,
        allow_since_image_pulled_expire=settings.allow_since_image_pulled_expire,
        source=f"generated policy for {scope}",
    )
    return GeneratedPolicy(scope, policy, text, settings, tuple(notes))


IN_USE_SHIELD_PREFIX = f"{DESCRIPTION_PREFIX}in use at scan time: tag "


def is_exact_tag_shield(rule: LifecycleRule, count_number: int) -> str | None:
    """The tag of an exact-tag shield (``tagged``, one pattern without ``*``, standard
    storage, ``imageCountMoreThan`` ``count_number``, expire), else None. Such a rule
    selects at most one image (a tag names one image) and keeps it: it can only protect."""
    if (
        rule.tag_status == "tagged"
        and len(rule.tag_pattern_list) == 1
        and not rule.tag_prefix_list
        and "*" not in rule.tag_pattern_list[0]
        and rule.storage_class == "standard"
        and rule.count_type == "imageCountMoreThan"
        and rule.count_number == count_number
        and rule.action == "expire"
        and rule.target_storage_class is None
        and not rule.extra
    ):
        return rule.tag_pattern_list[0]
    return None


def with_in_use_shields(generated: GeneratedPolicy, tags: Iterable[str]) -> GeneratedPolicy:
    """``generated`` with one exact-tag shield per tag of ``tags`` (images a workload runs
    by that tag), after the protected-tag shields and before every rule that acts.

    A tag a protected shield already covers needs none. Raises :class:`LifecycleError`
    when the shields do not fit: priorities run out before the untagged rule (100), or
    the policy breaks an ECR limit (50 rules, 30,720 characters)."""
    rules = list(generated.policy.rules)
    patterns = [
        p for r in rules if r.rule_priority < UNTAGGED_PRIORITY for p in r.tag_pattern_list[:1]
    ]
    wanted = sorted({t for t in tags if not any(tag_matches_pattern(t, p) for p in patterns)})
    if not wanted:
        return generated
    start = max((r.rule_priority for r in rules if r.rule_priority < UNTAGGED_PRIORITY), default=0)
    if start + len(wanted) >= UNTAGGED_PRIORITY:
        raise LifecycleError(
            f"{generated.scope}: {len(wanted)} in-use tag shields do not fit before "
            f"rulePriority {UNTAGGED_PRIORITY}"
        )
    count = generated.settings.protected_count_number
    for offset, tag in enumerate(wanted, start=1):
        rules.append(
            LifecycleRule(
                rule_priority=start + offset,
                description=f"{IN_USE_SHIELD_PREFIX}{tag!r}: never expired",
                tag_status="tagged",
                tag_pattern_list=(tag,),
                count_type="imageCountMoreThan",
                count_number=count,
            )
        )
    policy = LifecyclePolicy(tuple(sorted(rules, key=lambda r: r.rule_priority)))
    text = policy.to_text()
    validate_policy(
        text,
        allow_since_image_pulled_expire=generated.settings.allow_since_image_pulled_expire,
        source=f"generated policy for {generated.scope} with {len(wanted)} in-use tag shield(s)",
    )
    note = f"{len(wanted)} tag(s) in use shielded: {', '.join(wanted)}"
    return replace(generated, policy=policy, text=text, notes=(*generated.notes, note))


def in_use_shield_tags(text: str, generated: GeneratedPolicy) -> list[str] | None:
    """The tags of the exact-tag shields ``text`` adds to ``generated`` (None when ``text``
    cannot be read as a policy)."""
    from hygiene.lifecycle.policy import parse_policy

    try:
        policy = parse_policy(text)
    except LifecycleError:
        return None
    own = {r.tag_pattern_list for r in generated.policy.rules}
    count = generated.settings.protected_count_number
    return [
        tag
        for rule in policy.rules
        if rule.rule_priority < UNTAGGED_PRIORITY
        and rule.tag_pattern_list not in own
        and (tag := is_exact_tag_shield(rule, count)) is not None
    ]
