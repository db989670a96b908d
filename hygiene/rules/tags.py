"""Tag rules (TG): how a repository names its images.

House advice: use consistent tags. Tags are classified into schemes with one vectorised
regular-expression pass over the distinct tags (pyarrow RE2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hygiene.messages import N_, message
from hygiene.model import FixSafety, Severity
from hygiene.rules.base import Option, RuleContext, Scope, rule

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

MIXED_SCHEMES = N_(
    "release tags mix %(schemes)s schemes; dominant %(scheme)s (%(images)s images), "
    "outliers: %(outliers)s"
)
MIXED_SCHEMES_MORE = N_(
    "release tags mix %(schemes)s schemes; dominant %(scheme)s (%(images)s images), "
    "outliers: %(outliers)s and %(more)s more"
)
FLOATING_BEHIND = N_(
    "'%(tag)s' is on an image pushed %(pushed)s, but %(versions)s was pushed %(newest)s"
)
PROBLEMS = "%(problems)s"  # several messages, each translated, joined with "; "
FLOATING_ALONE = N_("'%(tag)s' is the only tag of its image (no version to trace)")

FLOATING_TAGS = [
    "latest", "main", "master", "stable", "dev", "develop", "edge", "nightly",
    "staging", "prod", "production", "test", "canary", "current",
]  # fmt: skip

# (scheme, RE2 pattern) in classification order; the first match wins. Calendar versions
# come before semver because 2024.05.01 is shaped like both.
SCHEMES: tuple[tuple[str, str], ...] = (
    ("calver", r"^(?:19|20)\d{2}[.-]?(?:0?[1-9]|1[0-2])(?:[.-]?(?:0?[1-9]|[12]\d|3[01]))?"
               r"(?:[._T-]?\d+)*$"),
    ("v-semver", r"^v\d+(?:\.\d+){1,2}(?:[-+][0-9A-Za-z.+-]+)?$"),
    ("semver", r"^\d+(?:\.\d+){1,2}(?:[-+][0-9A-Za-z.+-]+)?$"),
    ("build-number", r"^(?:build[-._]?|b|r)?\d+$"),
    ("git-sha", r"^(?:sha-|git-|g)?[0-9a-f]{7,40}$"),
    ("branch", r"^[A-Za-z][A-Za-z0-9._/-]*$"),
)  # fmt: skip
RELEASE_SCHEMES = ("semver", "v-semver", "calver", "build-number", "git-sha")
# an image tagged both 1.4.0 and sha-3f2a1bc is a semver release with a sha alias
PRIORITY = {name: i for i, name in enumerate(RELEASE_SCHEMES)}
# how the reports name each scheme
SCHEME_LABELS = {
    "calver": N_("calendar version"),
    "v-semver": N_("v-prefixed semantic version"),
    "semver": N_("semantic version"),
    "build-number": N_("build number"),
    "git-sha": N_("git commit"),
    "branch": N_("branch name"),
}
SCHEME_NAMES = ("floating", *(s for s, _ in SCHEMES), "other")


def classify_tags(tags: pa.Array | pd.Series, floating: list[str]) -> np.ndarray:
    """Scheme name of each tag (``floating``, ``semver``, …, ``branch``, ``other``)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    array = tags if isinstance(tags, pa.Array) else pa.array(list(tags), type=pa.string())
    out = np.full(len(array), "other", dtype=object)
    done = np.zeros(len(array), dtype=bool)
    if len(array) == 0:
        return out
    is_floating = np.asarray(
        pc.is_in(array, value_set=pa.array(floating, type=pa.string()))
        .fill_null(False)
        .to_numpy(zero_copy_only=False),
        dtype=bool,
    )
    out[is_floating] = "floating"
    done |= is_floating
    for name, pattern in SCHEMES:
        hit = np.asarray(
            pc.match_substring_regex(array, pattern)
            .fill_null(False)
            .to_numpy(zero_copy_only=False),
            dtype=bool,
        )
        hit &= ~done
        out[hit] = name
        done |= hit
    return out


def _release_tags(ctx: RuleContext) -> tuple[pd.DataFrame, np.ndarray]:
    """(row, repo_id, tag code, scheme code) for tags of top-level, non-signature images.

    Distinct tags are classified once (tags repeat across repositories: latest, 1.0.0…);
    ``tag`` is a code into the returned array of distinct tags, ``scheme`` an index in
    SCHEME_NAMES.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    images = ctx.images
    table = ctx.tag_table
    eligible = (images["top_level"] & ~images["is_signature_tag"]).to_numpy()
    position = pd.Index(images.index).get_indexer(table["row"].to_numpy())
    keep = position >= 0
    keep[keep] = eligible[position[keep]]
    table = table[keep]
    codes, uniques = pd.factorize(table["tag"])
    names = classify_tags(pa.array(uniques), ctx.options["floating_tags"])
    scheme_code = pd.Index(SCHEME_NAMES).get_indexer(names)
    frame = pd.DataFrame(
        {
            "row": table["row"].to_numpy(),
            "repo_id": images["repo_id"].to_numpy()[position[keep]],
            "tag": codes,
            "scheme": scheme_code[codes] if len(codes) else codes,
        }
    )
    return frame, np.asarray(uniques, dtype=object)


def _split_lists(keys: np.ndarray, values: np.ndarray) -> dict[int, list[Any]]:
    """Group ``values`` by ``keys`` (already sorted by key) into lists, without groupby."""
    import numpy as np

    if not len(keys):
        return {}
    unique, starts = np.unique(keys, return_index=True)
    flat = values.tolist()
    ends = [*starts[1:].tolist(), len(flat)]
    return {
        int(k): flat[a:b] for k, a, b in zip(unique.tolist(), starts.tolist(), ends, strict=True)
    }


@rule(
    code="TG001",
    name="inconsistent-tag-scheme",
    severity=Severity.INFO,
    fix_safety=FixSafety.MANUAL,
    scope=Scope.REPOSITORY,
    fix="Pick one release tag scheme for the repository and retag new builds with it.",
    options=[
        Option(
            "min_images",
            3,
            "Only judge repositories with at least this many images carrying a release tag.",
            min=2,
            max=100000,
        ),
        Option(
            "floating_tags",
            FLOATING_TAGS,
            "Tags that move between images and are not release tags.",
            kind="list",
        ),
        Option(
            "ignore_schemes",
            [],
            "Release schemes not counted when looking for a mix "
            "(e.g. git-sha when every build also gets a sha tag).",
            kind="list",
            choices=RELEASE_SCHEMES,
        ),
    ],
)
def inconsistent_tag_scheme(ctx: RuleContext) -> pd.DataFrame:
    """Repository whose release tags mix schemes.

    What it flags:
        A repository whose release-tagged images use more than one scheme: semver
        (``1.2.3``), v-semver (``v1.2.3``), calendar (``2024.05.01``, ``20240501``),
        build number (``build-412``) or git sha (``3f2a1bc``). Floating tags (``latest``,
        ``main``…) and branch-like tags (``feature-login``) are not release tags. An image
        with several tags counts under its most formal scheme (``1.2.3`` over a sha).
        The finding names the dominant scheme and lists the outlier tags.

    Why it matters:
        The lab asks for consistent tags. Mixed schemes break "newest version" sorting,
        lifecycle tag patterns (``v*`` misses ``1.2.3``) and make it hard to tell which
        image is the current release.

    Example:
        ``suporte/api`` has ``1.0.0``, ``1.1.0`` and ``1.2.0`` (semver) plus ``v1.3.0``
        (v-semver) and ``20240501`` (calver): dominant semver, outliers ``v1.3.0``,
        ``20240501``.

    Fix:
        Agree on one scheme (semver is the usual choice), tag new builds with it and
        retag or let the lifecycle policy expire the outliers.
    """
    import numpy as np
    import pandas as pd

    tags, tag_text = _release_tags(ctx)
    ignored = set(ctx.options["ignore_schemes"])
    release = [SCHEME_NAMES.index(s) for s in RELEASE_SCHEMES if s not in ignored]
    tags = tags[np.isin(tags["scheme"].to_numpy(), release)]
    empty = pd.DataFrame({"message": [], "details": []})
    if not len(tags):
        return empty
    priority = np.zeros(len(SCHEME_NAMES), dtype=np.int64)
    for name, rank in PRIORITY.items():
        priority[SCHEME_NAMES.index(name)] = rank
    rows = tags["row"].to_numpy()
    order = np.lexsort((priority[tags["scheme"].to_numpy()], rows))
    sorted_rows = rows[order]
    first = np.r_[True, sorted_rows[1:] != sorted_rows[:-1]] if len(order) else order
    primary = tags.iloc[order[first]]
    per_repo = primary.groupby(["repo_id", "scheme"]).size().rename("images").reset_index()
    totals = per_repo.groupby("repo_id")["images"].agg(["sum", "size"])
    mixed = totals[(totals["size"] > 1) & (totals["sum"] >= ctx.options["min_images"])].index
    if not len(mixed):
        return empty
    per_repo = per_repo[per_repo["repo_id"].isin(mixed)].sort_values(
        ["repo_id", "images", "scheme"], ascending=[True, False, True], kind="stable"
    )
    dominant = per_repo.drop_duplicates("repo_id").set_index("repo_id")["scheme"]
    primary = primary[primary["repo_id"].isin(mixed)]
    is_outlier = primary["scheme"].to_numpy() != dominant.reindex(primary["repo_id"]).to_numpy()
    outliers = primary[is_outlier]
    outlier_text = tag_text[outliers["tag"].to_numpy()]
    order = np.lexsort((outlier_text.astype(str), outliers["repo_id"].to_numpy()))
    outlier_tags = _split_lists(outliers["repo_id"].to_numpy()[order], outlier_text[order])
    counts: dict[int, dict[str, int]] = {}
    for repo_id, scheme, images in zip(
        per_repo["repo_id"].tolist(),
        per_repo["scheme"].tolist(),
        per_repo["images"].tolist(),
        strict=True,
    ):
        counts.setdefault(repo_id, {})[SCHEME_NAMES[scheme]] = images
    repo_row = ctx.images.drop_duplicates("repo_id").set_index("repo_id")["repo_row"]
    index, messages, details = [], [], []
    for repo_id in mixed.tolist():
        scheme = SCHEME_NAMES[dominant[repo_id]]
        odd = outlier_tags.get(repo_id, [])
        index.append(int(repo_row[repo_id]))
        label = message(SCHEME_LABELS[scheme]) if scheme in SCHEME_LABELS else scheme
        params = {"schemes": len(counts[repo_id]), "scheme": label,
                  "images": counts[repo_id][scheme], "outliers": odd[:10]}  # fmt: skip
        messages.append(
            message(MIXED_SCHEMES_MORE, **params, more=len(odd) - 10)
            if len(odd) > 10
            else message(MIXED_SCHEMES, **params)
        )
        details.append(
            {"dominant_scheme": scheme, "schemes": counts[repo_id], "outlier_tags": odd[:100]}
        )
    return pd.DataFrame({"message": messages, "details": details}, index=index)


@rule(
    code="TG002",
    name="floating-tag-drift",
    severity=Severity.INFO,
    fix_safety=FixSafety.MANUAL,
    scope=Scope.REPOSITORY,
    fix="Move the floating tag in CI together with each release tag, and always push a "
    "version tag next to it.",
    options=[
        Option(
            "floating_tag", "latest", "The tag expected to follow the newest build.", kind="str"
        ),
        Option(
            "grace_hours",
            24,
            "Ignore drift while the newest image is younger than "
            "this (CI may still be moving the tag).",
            min=0,
            max=8760,
        ),
        Option(
            "other_floating_tags",
            FLOATING_TAGS,
            "Images carrying only these tags do "
            "not count as the newest build (a 'dev' push does not make 'latest' stale).",
            kind="list",
        ),
    ],
)
def floating_tag_drift(ctx: RuleContext) -> pd.DataFrame:
    """Floating tag that no longer points at the newest build, or names no version.

    What it flags:
        A repository whose floating tag (``latest`` by default) is on an image older than
        the newest build with a version tag, or sits on an image that has no other tag
        (nobody can tell which version ``latest`` is).

    Why it matters:
        People and deployments pull ``latest`` expecting the newest release. A stale
        ``latest`` silently runs old code; a ``latest`` without a version tag cannot be
        traced to a release, a commit or a changelog.

    Example:
        ``eureca/web:latest`` is on the image pushed in March, while ``1.8.0`` was pushed
        in November; or ``labs/ubuntu`` whose only tag is ``latest``.

    Fix:
        Make CI move the floating tag together with each release tag
        (``docker push repo:1.8.0 && docker push repo:latest``) and always push a version
        tag next to it. Manual: retagging changes what people pull.
    """
    import numpy as np
    import pandas as pd

    from hygiene.rules.columns import utc_ns

    images = ctx.images
    table = ctx.tag_table
    tag = ctx.options["floating_tag"]
    floating = set(ctx.options["other_floating_tags"]) | {tag}
    holders = table.loc[(table["tag"] == tag).to_numpy(dtype=bool), "row"].to_numpy()
    holders = holders[np.isin(holders, images.index.to_numpy())]
    if not len(holders):
        return pd.DataFrame({"message": [], "details": []})
    # newest "versioned" image per repository: a tagged top-level image with a tag that
    # is not floating
    versioned_rows = table.loc[~table["tag"].isin(list(floating)).to_numpy(dtype=bool), "row"]
    versioned = images.index.isin(versioned_rows.to_numpy())
    candidate = images.loc[
        versioned & (images["top_level"] & ~images["is_signature_tag"]).to_numpy(),
        ["repo_id", "pushed_at"],
    ]
    newest_row = candidate.groupby("repo_id")["pushed_at"].idxmax()
    newest = images.loc[newest_row.to_numpy(), ["digest", "tags", "pushed_at"]].set_axis(
        newest_row.index
    )
    held = images.loc[holders, ["repo_id", "pushed_at", "tag_count", "digest", "repo_row"]]
    held_newest = newest.reindex(held["repo_id"].to_numpy())
    newer_pushed = utc_ns(held_newest["pushed_at"])
    held_pushed = utc_ns(held["pushed_at"])
    grace = ctx.now - pd.Timedelta(hours=ctx.options["grace_hours"])
    drift = (
        held_newest["pushed_at"].notna().to_numpy()
        & (newer_pushed > held_pushed)
        & (held_newest["pushed_at"] < grace).fillna(False).to_numpy(dtype=bool)
    )
    alone = (held["tag_count"] == 1).to_numpy()
    flagged = drift | alone
    index, messages, details = [], [], []
    for i in np.flatnonzero(flagged).tolist():
        row = held.iloc[i]
        problems, detail = [], {"floating_tag": tag, "digest": str(row["digest"])}
        if drift[i]:
            newest_row = held_newest.iloc[i]
            version = [t for t in newest_row["tags"] if t not in floating]
            problems.append(
                message(
                    FLOATING_BEHIND,
                    tag=tag,
                    pushed=str(row["pushed_at"])[:10],
                    versions=version[:3],
                    newest=str(newest_row["pushed_at"])[:10],
                )
            )
            detail |= {"newest_digest": str(newest_row["digest"]), "newest_tags": version}
        if alone[i]:
            problems.append(message(FLOATING_ALONE, tag=tag))
            detail["only_tag"] = True
        index.append(int(row["repo_row"]))
        messages.append(message(PROBLEMS, problems=problems))
        details.append(detail)
    return pd.DataFrame({"message": messages, "details": details}, index=index)
