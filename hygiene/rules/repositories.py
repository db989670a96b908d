"""Repository rules (RP): repositories that are empty, unmanaged or abandoned."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hygiene.messages import N_, message
from hygiene.model import Action, FixSafety, Severity
from hygiene.rules.base import Deletes, Option, RuleContext, Scope, rule

EMPTY = N_("repository has no images; created %(age)s days ago (threshold %(threshold)s days)")
NO_LIFECYCLE = N_("no lifecycle policy (%(images)s images); Security Hub ECR.3")
IDLE = N_(
    "no push since %(pushed)s and last pull %(pulled)s (%(images)s images; threshold "
    "%(threshold)s days)"
)
IDLE_NEVER_PULLED = N_(
    "no push since %(pushed)s and never pulled (%(images)s images; threshold %(threshold)s days)"
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from hygiene.lifecycle.preview import PreviewResult


@rule(
    code="RP001",
    name="empty-repository",
    severity=Severity.INFO,
    fix_safety=FixSafety.UNSAFE,
    scope=Scope.REPOSITORY,
    deletes=Deletes.REPOSITORY,
    action=Action.DELETE_REPOSITORY,
    fix="Delete the repository (an admin approves; the owner is told first).",
    options=[
        Option(
            "days",
            30,
            "Only flag repositories created more than this many days ago.",
            min=0,
            max=3650,
        ),
    ],
)
def empty_repository(ctx: RuleContext) -> pd.DataFrame:
    """Repository without images.

    What it flags:
        A repository that holds no image and was created more than ``days`` ago.

    Why it matters:
        Empty repositories clutter listings and permission reviews, and usually mean a
        typo at push time or a project that moved elsewhere. Creating one again takes a
        second.

    Example:
        ``suporte/cloud/nginx-test`` was created in March and never received a push.

    Fix:
        Delete the repository (unsafe: a pipeline may be about to push to it, so an
        admin approves after the owner's grace period). The opt-out resource tag
        ``hygiene:keep=true`` keeps it.
    """
    import pandas as pd

    repos = ctx.repositories
    cutoff = ctx.days_ago(ctx.options["days"])
    mask = (repos["image_count"] == 0) & (repos["created_at"] < cutoff).fillna(False)
    sub = repos[mask]
    ages = ((ctx.now - sub["created_at"]) / pd.Timedelta(days=1)).astype(int).tolist()
    messages = [message(EMPTY, age=age, threshold=ctx.options["days"]) for age in ages]
    return pd.DataFrame({"message": messages}, index=sub.index)


@rule(
    code="RP002",
    name="missing-lifecycle-policy",
    severity=Severity.WARNING,
    fix_safety=FixSafety.UNSAFE,
    scope=Scope.REPOSITORY,
    action=Action.PUT_LIFECYCLE_POLICY,
    fix="Put the lifecycle policy generated from the rules config (hygiene lifecycle).",
    options=[
        Option(
            "min_images",
            0,
            "Only flag repositories holding at least this many images.",
            min=0,
            max=100000,
        ),
    ],
)
def missing_lifecycle_policy(ctx: RuleContext) -> pd.DataFrame:
    """Repository without a lifecycle policy (Security Hub ECR.3).

    What it flags:
        A repository with no lifecycle policy (and at least ``min_images`` images).

    Why it matters:
        Without a lifecycle policy images accumulate forever and storage grows every
        month. AWS Security Hub control ECR.3 requires at least one lifecycle policy per
        private repository.

    Example:
        ``ml/trainer`` with 420 images and no lifecycle policy.

    Fix:
        Put the policy generated from the rules config (``hygiene lifecycle``), previewed
        on the inventory first (unsafe: it expires images, so an admin approves).
    """
    import pandas as pd

    repos = ctx.repositories
    policy = repos["lifecycle_policy"]
    missing = policy.isna() | (policy.fillna("").str.strip() == "")
    mask = missing & (repos["image_count"] >= ctx.options["min_images"])
    sub = repos[mask]
    counts = sub["image_count"].tolist()
    messages = [message(NO_LIFECYCLE, images=c) for c in counts]
    return pd.DataFrame({"message": messages}, index=sub.index)


@rule(
    code="RP003",
    name="abandoned-repository",
    severity=Severity.INFO,
    fix_safety=FixSafety.UNSAFE,
    scope=Scope.REPOSITORY,
    deletes=Deletes.REPOSITORY,
    action=Action.DELETE_REPOSITORY,
    fix="Delete the repository after the owner's grace period (an admin approves).",
    options=[
        Option("days", 180, "No push and no pull for this many days.", min=1, max=3650),
    ],
)
def abandoned_repository(ctx: RuleContext) -> pd.DataFrame:
    """Repository nobody pushes to or pulls from.

    What it flags:
        A repository with images where the newest push and the latest recorded pull of
        any image are both older than ``days`` (never pulled counts as old).

    Why it matters:
        An abandoned repository is paid storage for a project that moved on. It is the
        largest single saving a cleanup can make, and the one that most needs the
        owner's word.

    Example:
        ``bigsea/spark-old``: last push 2024-02-10, last pull 2024-05-03.

    Fix:
        Delete the repository (unsafe: the owner is told first and an admin approves
        after the grace period). Apply re-reads it and refuses if anything was pushed,
        tagged or pulled since the proposal; it deletes the images first, saving every
        manifest in the audit log, then the empty repository (never a forced delete).
        Repositories opted out with ``hygiene:keep=true`` or holding images in use are
        never flagged; to keep the images instead, move them to the archive storage
        class and reject the proposal.
    """
    import numpy as np
    import pandas as pd

    images = ctx.images
    if not len(images):
        return pd.DataFrame({"message": [], "details": []})
    cutoff = ctx.days_ago(ctx.options["days"])
    rows, last_push, last_pull, counts = repository_activity(images)
    idle = _idle(last_push, cutoff) & ((last_pull == NAT) | _idle(last_pull, cutoff))
    push = np.datetime_as_string(last_push[idle].view("datetime64[ns]"), unit="D")
    pull = np.datetime_as_string(last_pull[idle].view("datetime64[ns]"), unit="D")
    index = pd.Index(rows[idle], dtype=np.int64, name="repo_row")
    messages, details = [], []
    for pushed, pulled, count in zip(
        push.tolist(), pull.tolist(), counts[idle].tolist(), strict=True
    ):
        threshold = ctx.options["days"]
        messages.append(
            message(IDLE_NEVER_PULLED, pushed=pushed, images=count, threshold=threshold)
            if pulled == "NaT"
            else message(IDLE, pushed=pushed, pulled=pulled, images=count, threshold=threshold)
        )
        details.append(
            {
                "last_push": pushed,
                "last_pull": None if pulled == "NaT" else pulled,
                "images": int(count),
            }
        )
    return pd.DataFrame({"message": messages, "details": details}, index=index)


NAT = -(2**63)  # NaT as int64 nanoseconds (numpy is imported when a rule runs)


def _idle(times: np.ndarray, cutoff: pd.Timestamp) -> np.ndarray:
    """Times (int64 nanoseconds) before ``cutoff``; NaT is not (as pandas compares)."""
    return (times != NAT) & (times < cutoff.value)


def repository_activity(
    images: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per repository row (``repo_row`` ≥ 0, ascending): its row, its newest push and
    latest pull (int64 nanoseconds, NaT when it has none) and its number of images: the
    pandas ``groupby("repo_row").agg(max, max, size)`` (tested against it) without its
    set-up, which cost more than the work at a few thousand images."""
    import numpy as np

    from hygiene.rules.columns import utc_ns

    repo_row = images["repo_row"].to_numpy(dtype=np.int64)
    present = repo_row >= 0
    of_image = repo_row[present]
    # repository rows are positions in the repositories frame: counted by position
    counts = np.bincount(of_image, minlength=int(of_image.max()) + 1 if len(of_image) else 0)
    rows = np.flatnonzero(counts)
    latest = []
    for column in ("pushed_at", "last_pull"):
        times = utc_ns(images[column]).view(np.int64)[present]
        newest = np.full(len(counts), NAT, dtype=np.int64)
        np.maximum.at(newest, of_image, times)  # NaT is the smallest int64: it never wins
        latest.append(newest[rows])
    return rows.astype(np.int64), latest[0], latest[1], counts[rows].astype(np.int64)


LIFECYCLE_IN_USE = N_(
    "the repository's lifecycle policy would expire or archive %(count)s image(s) a workload "
    "runs: %(images)s"
)


@rule(
    code="RP004",
    name="lifecycle-expires-in-use",
    severity=Severity.ERROR,
    fix_safety=FixSafety.MANUAL,
    scope=Scope.REPOSITORY,
    fix=(
        "Change the repository's lifecycle policy so it keeps the images in use (an "
        "exact-tag rule ahead of the others), or stop the workloads using them."
    ),
)
def lifecycle_expires_in_use(ctx: RuleContext) -> pd.DataFrame:
    """Lifecycle policy that would expire an image a workload runs.

    What it flags:
        A repository whose deployed lifecycle policy (whoever wrote it) would, previewed
        on the scan's inventory, expire or move to the archive an image that an ECS
        service or task, a Lambda version, a Batch job definition, a Kubernetes pod or
        template, or the in-use file names now (docs/in-use.md), itself or through a
        platform manifest or signature of it.

    Why it matters:
        ECR runs a lifecycle policy by itself, within a day, with no re-check: the image
        goes (or can no longer be pulled, once archived) while the workload still needs it,
        and the next restart or scale-out fails to pull. The tool never deletes such an
        image itself; this finding says when a policy is about to.

    Example:
        ``ml/api``'s policy keeps the newest 50 tagged images, and the ``prod`` service
        still runs ``v12``, the 51st: the next lifecycle run expires it.

    Fix:
        Change the policy (by hand, or approve the generated one, which shields the tags
        workloads name: ``hygiene lifecycle propose --replace-existing``), or move the
        workloads to an image the policy keeps. Images named only by digest cannot be
        shielded by a tag rule: pin them by a tag instead.
    """
    import numpy as np
    import pandas as pd

    out = pd.DataFrame({"message": [], "details": []})
    reasons = ctx.in_use_reasons
    images = ctx.images
    if reasons is None or not len(images):
        return out
    rows = images.index.to_numpy(dtype=np.int64)
    mine = reasons[rows]
    used = pd.notna(mine)
    if not used.any():
        return out
    repos = ctx.repositories
    policies = repos["lifecycle_policy"].astype(object)
    repo_row = images["repo_row"].to_numpy(dtype=np.int64)
    # the reason each image in use is kept, by (repository row, digest): all a hit needs
    digests = images["digest"].to_numpy()[used].astype(str).tolist()
    keys = zip(repo_row[used].tolist(), digests, strict=True)
    why = dict(zip(keys, mine[used].tolist(), strict=True))
    wanted = sorted(set(repo_row[used].tolist()) & set(repos.index.tolist()))
    # one batch per distinct policy text (most repositories carry the same generated one)
    by_text: dict[str, list[int]] = {}
    for row in wanted:
        text = policies.loc[row]
        if isinstance(text, str) and text.strip():
            by_text.setdefault(text, []).append(row)
    previews = {}
    for text, members in by_text.items():
        previews.update(_previews_of(ctx, text, members, repo_row))
    in_use_of: dict[int, set[str]] = {}
    for row, digest in why:
        in_use_of.setdefault(row, set()).add(digest)
    index, messages, details = [], [], []
    for row in sorted(previews):
        preview = previews[row]
        # the digests lists are at hand (the batch builds a repository's actions frame only
        # when read): the frame only for a repository whose policy acts on an image in use
        acted = in_use_of[row].intersection(preview.expired_digests)
        if not acted and not in_use_of[row].intersection(preview.transitioned_digests):
            continue
        hits = [
            {
                "digest": str(action.digest),
                "tags": [str(t) for t in action.tags],
                "action": str(action.action),
                "in_use": str(why[(row, str(action.digest))]),
            }
            for action in preview.actions.itertuples(index=False)
            if (row, str(action.digest)) in why
        ]
        if not hits:
            continue
        shown = ", ".join(
            f"{h['digest'][:19]} ({', '.join(h['tags']) or 'untagged'}; {h['in_use']})"
            for h in hits[:3]
        ) + (f" (+{len(hits) - 3} more)" if len(hits) > 3 else "")
        index.append(row)
        messages.append(message(LIFECYCLE_IN_USE, count=len(hits), images=shown))
        details.append({"images": hits})
    return pd.DataFrame(
        {"message": messages, "details": details}, index=pd.Index(index, dtype=np.int64)
    )


def _previews_of(
    ctx: RuleContext, text: str, members: list[int], repo_row: np.ndarray
) -> dict[int, PreviewResult]:
    """What the policy ``text`` would do to each repository row of ``members``, in one
    pass (:func:`~hygiene.lifecycle.batch.preview_repositories`, the per-repository
    result of :func:`~hygiene.lifecycle.preview.preview_policy`). A policy that cannot be
    read or previewed is not (ECR would have refused it): repository by repository when
    the batch fails, so one repository's images cannot hide another's."""
    import numpy as np

    from hygiene.errors import LifecycleError
    from hygiene.lifecycle.batch import preview_repositories
    from hygiene.lifecycle.policy import parse_policy
    from hygiene.lifecycle.preview import preview_policy

    images, now = ctx.images, ctx.now.to_pydatetime()
    never_pulled = ctx.config.policy.lifecycle.preview_never_pulled
    unreadable = (LifecycleError, KeyError, TypeError, ValueError)
    try:
        policy = parse_policy(text)
    except unreadable:
        return {}
    position = np.full(max(int(repo_row.max(initial=-1)), max(members)) + 2, -1, np.int64)
    position[members] = np.arange(len(members))
    of_image = np.where(repo_row >= 0, position[repo_row], -1)
    names = [str(ctx.repositories.loc[row, "name"]) for row in members]
    try:
        results = preview_repositories(
            policy, images, of_image, names, now=now, never_pulled=never_pulled
        )
        return dict(zip(members, results, strict=True))
    except unreadable:
        pass
    previews = {}
    for row in members:
        try:
            previews[row] = preview_policy(
                policy, images[repo_row == row], now=now, never_pulled=never_pulled
            )
        except unreadable:
            continue
    return previews
