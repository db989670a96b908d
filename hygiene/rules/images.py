"""Image rules (IM): images that can be deleted.

Every IM rule proposes *candidates*; the engine keeps the protected ones (and says why)
and turns the rest into deletion units (the image, its index children, its referrers).
Only top-level images are candidates: an index child or a referrer whose subject is
present goes with, or stays with, the image that owns it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hygiene.messages import N_, message
from hygiene.model import Action, FixSafety, Severity
from hygiene.rules.base import Deletes, Option, RuleContext, Scope, image_hits, labels, rule

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

UNTAGGED_IMAGE = N_(
    "untagged image pushed %(age)s days ago (threshold %(threshold)s days), listed by no index"
)
UNTAGGED_INDEX = N_(
    "untagged index with %(children)s manifests pushed %(age)s days ago (threshold "
    "%(threshold)s days), listed by no index"
)
NEVER_PULLED = N_("never pulled; pushed %(pushed)s days ago (threshold %(threshold)s days)")
LAST_PULLED = N_("last pulled %(date)s (%(days)s days ago, threshold %(threshold)s days)")
EXCESS = N_(
    "repository holds %(total)s images (limit %(limit)s); this is number %(rank)s by push time"
)
ORPHAN_LEGACY = N_("legacy cosign artifact for %(subject)s, which is not in the repository")
ORPHAN_LISTING = N_(
    "referrers index (tag sha256-<digest>) for %(subject)s, which is not in the repository"
)
ORPHAN_TYPED = N_("referrer of type %(media_type)s for %(subject)s, which is not in the repository")
ORPHAN_REFERRER = N_("referrer for %(subject)s, which is not in the repository")


def _days(now: pd.Timestamp, when: pd.Series) -> np.ndarray:
    import numpy as np
    import pandas as pd

    return (
        ((now - when) / pd.Timedelta(days=1)).fillna(-1).to_numpy(dtype=np.float64).astype(np.int64)
    )


def _dates(values: pd.Series) -> list[str]:
    from hygiene.rules.columns import day_strings, utc_ns

    return day_strings(utc_ns(values))


@rule(
    code="IM001",
    name="untagged-image",
    severity=Severity.WARNING,
    fix_safety=FixSafety.SAFE,
    scope=Scope.IMAGE,
    deletes=Deletes.IMAGES,
    action=Action.DELETE_IMAGES,
    fix="Delete the image by digest (with its index children and referrers).",
    options=[
        Option(
            "min_age_days",
            7,
            "Only flag untagged images pushed more than this many days ago.",
            min=0,
            max=3650,
        ),
    ],
)
def untagged_image(ctx: RuleContext) -> pd.DataFrame:
    """Untagged image that nothing references.

    What it flags:
        A top-level image with no tag, pushed more than ``min_age_days`` ago, that no index
        in the repository lists and that is not a referrer (signature, SBOM) of a present
        image. Platform manifests of a multi-arch image are *not* flagged: they go with
        their index. A referrer is known by its manifest's ``subject`` (read for every
        untagged image, whether or not ECR reports ``subjectManifestDigest``); one whose
        subject is present is kept with it (``referrer-of:<digest>``) and deleted only
        together with it, one whose subject is gone is IM004's.

    Why it matters:
        Untagged images are left behind when a tag moves to a new push. Nobody can pull
        them by tag, they still cost storage, and they hide the real size of a repository.

    Example:
        ``suporte/api`` had ``v1.4`` moved to a new build; the previous manifest
        ``sha256:3f…`` has no tag, no index lists it, and it was pushed 40 days ago.

    Fix:
        Delete it by digest (a safe fix: it is unreachable by tag, and protections keep it
        if it was pulled recently or a workload references it by digest). An untagged
        index is deleted together with its platform manifests and referrers.
    """
    images = ctx.images
    cutoff = ctx.days_ago(ctx.options["min_age_days"])
    mask = (
        (images["top_level"] | images["is_referrer"])
        & ~images["is_child"]
        & (images["tag_count"] == 0)
        & ~images["orphaned_referrer"]
        & (images["pushed_at"] < cutoff)
    )
    sub = images.loc[mask, ["pushed_at", "child_digests", "is_referrer", "subject_digest"]]
    ages = _days(ctx.now, sub["pushed_at"])
    children = sub["child_digests"].map(len).to_numpy()
    threshold = ctx.options["min_age_days"]
    messages = [
        message(UNTAGGED_INDEX, children=c, age=a, threshold=threshold)
        if c
        else message(UNTAGGED_IMAGE, age=a, threshold=threshold)
        for a, c in zip(ages.tolist(), children.tolist(), strict=True)
    ]
    # a referrer of a present image stays with it: kept, and deleted only with it
    import numpy as np

    referrer = sub["is_referrer"].to_numpy(dtype=bool)
    keep_reason = np.full(len(sub), None, dtype=object)
    keep_reason[referrer] = [
        f"referrer-of:{s}" for s in sub["subject_digest"].astype(str).to_numpy()[referrer]
    ]
    return image_hits(sub.index, messages, keep_reason=keep_reason)


@rule(
    code="IM002",
    name="stale-image",
    severity=Severity.INFO,
    fix_safety=FixSafety.UNSAFE,
    scope=Scope.IMAGE,
    deletes=Deletes.IMAGES,
    action=Action.DELETE_IMAGES,
    fix="Delete the image after the owner's grace period (an admin approves).",
    options=[
        Option(
            "days",
            90,
            "Not pulled for this many days (or never pulled and pushed this long ago).",
            min=1,
            max=3650,
        ),
        Option(
            "keep_newest",
            3,
            "Never flag the newest N tagged images of a repository.",
            min=0,
            max=1000,
        ),
    ],
)
def stale_image(ctx: RuleContext) -> pd.DataFrame:
    """Tagged image nobody has pulled for a long time.

    What it flags:
        A tagged top-level image whose last recorded pull (of the image, its platform
        manifests or its signatures) is older than ``days``, or that was never pulled and
        was pushed more than ``days`` ago, and that is not among the ``keep_newest``
        newest tagged images of its repository.

    Why it matters:
        Old releases pile up: most repositories only ever run their last few builds.
        Each stale image is storage paid every month. ECR refreshes the pull time at
        least once a day, so "never pulled in 90 days" is reliable evidence.

    Example:
        ``ml/trainer:2024-03-01`` was last pulled 200 days ago and five newer tagged
        images exist in ``ml/trainer``.

    Fix:
        Delete it after the owner has been told (an unsafe fix: someone may still need
        an old release; an admin approves). Protected tags (``prod*``, ``release*``…),
        recent pulls and images in use are kept automatically.
    """
    images = ctx.images
    days, keep = ctx.options["days"], ctx.options["keep_newest"]
    cutoff = ctx.days_ago(days)
    last_pull = images["unit_last_pull"]
    stale = (last_pull < cutoff).fillna(False) | (last_pull.isna() & (images["pushed_at"] < cutoff))
    mask = (
        images["top_level"]
        & (images["tag_count"] > 0)
        & ~images["is_signature_tag"]
        & ~images["orphaned_referrer"]
        & stale
    )
    sub = images.loc[mask, ["unit_last_pull", "pushed_at", "tagged_rank"]]
    pulled = sub["unit_last_pull"]
    pull_days = _days(ctx.now, pulled).tolist()
    push_days = _days(ctx.now, sub["pushed_at"]).tolist()
    pull_dates = _dates(pulled)
    never = pulled.isna().to_numpy().tolist()
    messages = [
        (
            message(NEVER_PULLED, pushed=pushed, threshold=days)
            if is_never
            else message(LAST_PULLED, date=date, days=pulls, threshold=days)
        )
        for is_never, date, pulls, pushed in zip(
            never, pull_dates, pull_days, push_days, strict=True
        )
    ]
    rank = sub["tagged_rank"].to_numpy()
    keep_reason = labels((rank > 0) & (rank <= keep), f"newest-{keep}")
    return image_hits(sub.index, messages, keep_reason=keep_reason)


@rule(
    code="IM003",
    name="excess-images",
    severity=Severity.INFO,
    fix_safety=FixSafety.UNSAFE,
    scope=Scope.IMAGE,
    deletes=Deletes.IMAGES,
    action=Action.DELETE_IMAGES,
    fix="Delete the oldest images beyond the limit, or add a lifecycle policy (RP002).",
    options=[
        Option(
            "max_images",
            100,
            "Most images a repository should hold (top-level images; "
            "platform manifests and signatures are not counted).",
            min=1,
            max=100000,
        ),
    ],
)
def excess_images(ctx: RuleContext) -> pd.DataFrame:
    """Repository holding more images than the limit.

    What it flags:
        In a repository with more than ``max_images`` top-level images, every image
        beyond the newest ``max_images`` (by push time). Platform manifests and
        signatures are not counted: they belong to the image that owns them.

    Why it matters:
        A repository that only grows is a repository without a lifecycle policy. Past
        a few dozen builds, old images are almost never pulled again, and listing and
        scanning get slower and dearer.

    Example:
        ``eureca/web`` has 340 images; the 240 oldest are flagged when the limit is 100.

    Fix:
        Delete the oldest surplus images (an unsafe fix, approved by an admin), and
        put a lifecycle policy with an ``imageCountMoreThan`` rule on the repository so
        it stays within the limit by itself.
    """
    import numpy as np

    from hygiene.rules.columns import utc_ns
    from hygiene.rules.protections import rank_newest

    images = ctx.images
    limit = ctx.options["max_images"]
    countable = images.loc[
        images["top_level"] & ~images["orphaned_referrer"], ["repo_id", "pushed_at"]
    ]
    group = countable["repo_id"].to_numpy()
    rank = rank_newest(group, utc_ns(countable["pushed_at"]))
    over = rank > limit
    sizes = np.bincount(group)[group]
    totals = sizes[over].tolist()
    over_index = countable.index[over]
    over_rank = rank[over]
    messages = [
        message(EXCESS, total=t, limit=limit, rank=r)
        for t, r in zip(totals, over_rank.tolist(), strict=True)
    ]
    return image_hits(over_index, messages)


@rule(
    code="IM004",
    name="orphaned-referrer",
    severity=Severity.WARNING,
    fix_safety=FixSafety.SAFE,
    scope=Scope.IMAGE,
    deletes=Deletes.IMAGES,
    action=Action.DELETE_IMAGES,
    fix="Delete the referrer by digest: the image it describes is gone.",
    options=[
        Option(
            "min_age_days",
            1,
            "Only flag referrers pushed more than this many days ago "
            "(a signature can arrive before its subject in a push race).",
            min=0,
            max=3650,
        ),
    ],
)
def orphaned_referrer(ctx: RuleContext) -> pd.DataFrame:
    """Signature, SBOM or attestation whose image is gone.

    What it flags:
        An OCI referrer (a manifest whose ``subject`` names another image, whether or
        not ECR reports it as ``subjectManifestDigest``), a legacy cosign artifact tagged
        ``sha256-<digest>.sig|.att|.sbom``, or an image index tagged ``sha256-<digest>``
        (the OCI referrers tag schema: it lists the referrers of ``<digest>``) whose
        subject image is no longer in the repository. The index goes with the referrers
        it lists.

    Why it matters:
        ECR lifecycle policies delete referrers together with their subject, but manual
        deletes and other tools do not. Orphaned signatures cost storage and confuse
        verification tooling (a signature for an image nobody can pull).

    Example:
        ``suporte/api:sha256-9a3c….sig`` signs ``sha256:9a3c…``, which was deleted last
        month.

    Fix:
        Delete the referrer by digest (a safe fix: nothing can use a signature of an
        image that does not exist).
    """

    images = ctx.images
    cutoff = ctx.days_ago(ctx.options["min_age_days"])
    mask = images["orphaned_referrer"] & ~images["is_child"] & (images["pushed_at"] < cutoff)
    columns = ["is_signature_tag", "is_index", "artifact_media_type", "subject_digest"]
    sub = images.loc[mask, columns]
    legacy = sub["is_signature_tag"].to_numpy(dtype=bool).tolist()
    listing = (sub["is_signature_tag"] & sub["is_index"]).to_numpy(dtype=bool).tolist()
    media = sub["artifact_media_type"].astype(object).where(sub["artifact_media_type"].notna())
    messages = [
        message(ORPHAN_LISTING, subject=subject)
        if is_listing
        else message(ORPHAN_LEGACY, subject=subject)
        if is_legacy
        else message(ORPHAN_TYPED, media_type=kind, subject=subject)
        if kind
        else message(ORPHAN_REFERRER, subject=subject)
        for is_listing, is_legacy, kind, subject in zip(
            listing,
            legacy,
            media.tolist(),
            sub["subject_digest"].astype(str).tolist(),
            strict=True,
        )
    ]
    return image_hits(sub.index, messages)
