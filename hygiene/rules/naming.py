"""Naming rules (NS): namespaces and repository paths.

Every project owns one generic namespace (``suporte``); teams nest under it
(``suporte/cloud/*``). These rules read only names, which a partial scan still gets
right, so they also run on repositories whose images could not all be read.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from hygiene.messages import N_, message
from hygiene.model import FixSafety, Severity
from hygiene.rules.base import Option, RuleContext, Scope, check_re2, rule

if TYPE_CHECKING:
    import pandas as pd

OUTSIDE = N_("repository '%(name)s' is outside any namespace")
OUTSIDE_SUGGEST = N_(
    "repository '%(name)s' is outside any namespace; it looks like it belongs in '%(target)s'"
)
UNREGISTERED = N_(
    "namespace '%(namespace)s' (%(repositories)s repositories) is not a registered project"
)
UNREGISTERED_SUGGEST = N_(
    "namespace '%(namespace)s' (%(repositories)s repositories) is not a registered project; "
    "did you mean '%(closest)s'?"
)
FRAGMENT = N_(
    "namespace '%(namespace)s' fragments project '%(project)s' (%(kind)s); move its "
    "%(repositories)s repositories under '%(prefix)s/'"
)
FRAGMENT_RELATED = N_(
    "namespace '%(namespace)s' fragments project '%(project)s' (%(kind)s); move its "
    "%(repositories)s repositories under '%(prefix)s/' (related: %(related)s)"
)
FRAGMENT_ELSEWHERE = N_(
    "namespace '%(namespace)s' fragments project '%(project)s' (%(kind)s); move its "
    "%(repositories)s repositories under '%(prefix)s/' (also in account %(accounts)s)"
)
FRAGMENT_RELATED_ELSEWHERE = N_(
    "namespace '%(namespace)s' fragments project '%(project)s' (%(kind)s); move its "
    "%(repositories)s repositories under '%(prefix)s/' (related: %(related)s) (also in "
    "account %(accounts)s)"
)
# by (has related namespaces, is also in other accounts)
FRAGMENT_TEMPLATES = {
    (False, False): FRAGMENT,
    (True, False): FRAGMENT_RELATED,
    (False, True): FRAGMENT_ELSEWHERE,
    (True, True): FRAGMENT_RELATED_ELSEWHERE,
}
FRAGMENT_KINDS = {
    "separator variant": N_("separator variant"),
    "team/suffix variant": N_("team/suffix variant"),
    "team/prefix variant": N_("team/prefix variant"),
    "sibling fragments": N_("sibling fragments"),
}
BAD_SEGMENT = N_("segment %(segments)s does not match %(pattern)s")
BAD_SEGMENTS = N_("segments %(segments)s do not match %(pattern)s")
TOO_DEEP = N_("%(depth)s path segments (at most %(max)s)")
NAMING = N_("repository '%(name)s': %(problems)s")


def _names(repositories: pd.DataFrame) -> pd.Series:
    return repositories["name"].astype(str)


def _registry(account: str, region: str) -> str:
    return f"{account}.dkr.ecr.{region}.amazonaws.com"


def _split(value: str, separators: str) -> list[str]:
    return [t for t in re.split("[" + re.escape(separators) + "]", value) if t]


@rule(
    code="NS001",
    name="repository-outside-namespace",
    severity=Severity.WARNING,
    fix_safety=FixSafety.MANUAL,
    scope=Scope.REPOSITORY,
    needs_complete_repository=False,
    fix="Copy the repository under its project's namespace, move consumers, delete it.",
    options=[
        Option(
            "allowed",
            [],
            "Glob patterns of top-level repositories that are accepted (e.g. shared base images).",
            kind="list",
        ),
    ],
)
def repository_outside_namespace(ctx: RuleContext) -> pd.DataFrame:
    """Repository that belongs to no namespace.

    What it flags:
        A repository whose name has no ``/``, so no project namespace owns it
        (``nginx`` instead of ``suporte/nginx``).

    Why it matters:
        Permissions, reports, costs and cleanup are organised per project namespace. A
        top-level repository has no owner to notify, no project to bill and no members
        allowed to push to it by the namespace policies.

    Example:
        ``nginx`` or ``suporte-api`` at the top level of the registry.

    Fix:
        Decide which project owns it, copy its images to ``<namespace>/<name>`` (ECR
        cannot rename), move consumers, then delete the old repository. When the name
        starts with a registered namespace (``suporte-api``) the finding suggests
        ``suporte/api``.
    """
    import pandas as pd

    from hygiene.rules.columns import match_globs

    repos = ctx.repositories
    names = _names(repos)
    mask = repos["namespace"].isna().to_numpy() & ~names.str.contains("/", regex=False).to_numpy()
    if ctx.options["allowed"]:
        mask &= ~match_globs(names, ctx.options["allowed"])
    sub = repos[mask]
    registered = set(ctx.config.projects.projects)
    messages, details = [], []
    for name in sub["name"].astype(str).tolist():
        tokens = _split(name, "-_.")
        target = None
        if len(tokens) > 1 and tokens[0] in registered:
            target = f"{tokens[0]}/{'-'.join(tokens[1:])}"
        messages.append(
            message(OUTSIDE_SUGGEST, name=name, target=target)
            if target
            else message(OUTSIDE, name=name)
        )
        details.append({"suggested_name": target} if target else {})
    return pd.DataFrame({"message": messages, "details": details}, index=sub.index)


@rule(
    code="NS002",
    name="unregistered-namespace",
    severity=Severity.WARNING,
    fix_safety=FixSafety.MANUAL,
    scope=Scope.NAMESPACE,
    needs_complete_repository=False,
    fix="Register the project (ticket with owner and members) or move its repositories.",
    options=[
        Option(
            "allowed",
            [],
            "Glob patterns of namespaces accepted without a project "
            "(e.g. pull-through cache prefixes such as 'ecr-public').",
            kind="list",
        ),
    ],
)
def unregistered_namespace(ctx: RuleContext) -> pd.DataFrame:
    """Namespace not in the projects registry.

    What it flags:
        A namespace (first path segment) used by at least one repository that has no
        entry in ``rules/projects.yaml``.

    Why it matters:
        Projects are created by ticket with a responsible professor and a member list.
        A namespace without a project has no owner to send the weekly report to and no
        one to approve or object to cleanups; it usually means a typo or a namespace
        created by hand.

    Example:
        ``suport/api`` when the registered project is ``suporte``.

    Fix:
        Open a ticket to register the project (owner and member emails), or move the
        repositories to the right namespace. The finding suggests the closest
        registered name.
    """
    import pandas as pd

    from hygiene.rules.columns import match_globs

    repos = ctx.repositories
    registered = sorted(ctx.config.projects.projects)
    named = repos[repos["namespace"].notna()]
    rows: list[dict[str, Any]] = []
    if not len(named):
        return pd.DataFrame(rows, columns=["account", "region", "namespace", "message", "details"])
    grouped = named.groupby(["account", "region", "namespace"], observed=True)["name"]
    allowed = ctx.options["allowed"]
    for (account, region, namespace), names in grouped:
        namespace = str(namespace)
        if namespace in registered or (allowed and match_globs([namespace], allowed)[0]):
            continue
        close = difflib.get_close_matches(namespace, registered, n=1, cutoff=0.75)
        repo_names = sorted(names.astype(str))
        rows.append(
            {
                "account": str(account),
                "region": str(region),
                "namespace": namespace,
                "message": (
                    message(
                        UNREGISTERED_SUGGEST,
                        namespace=namespace,
                        repositories=len(repo_names),
                        closest=close[0],
                    )
                    if close
                    else message(UNREGISTERED, namespace=namespace, repositories=len(repo_names))
                ),
                "details": {
                    "repositories": repo_names[:100],
                    "repository_count": len(repo_names),
                    "closest_project": close[0] if close else None,
                },
            }
        )
    return pd.DataFrame(rows, columns=["account", "region", "namespace", "message", "details"])


COPY_STEPS = (
    N_(
        "For each old → new pair, create the new repository with the old one's settings "
        "(scan on push, tag mutability, encryption, lifecycle policy, repository policy, "
        "resource tags)."
    ),
    N_(
        "Copy every image by digest, keeping tags and all platforms (ECR cannot rename or "
        "move images): skopeo copy --all docker://%(registry)s/OLD@DIGEST "
        "docker://%(registry)s/NEW:TAG (or crane cp)."
    ),
    N_("Verify that NEW lists the same digests and tags as OLD (aws ecr describe-images)."),
    N_(
        "Point CI pipelines, deployments and task definitions at NEW; wait until OLD records "
        "no more pulls."
    ),
    N_("Delete OLD: aws ecr delete-repository --force --repository-name OLD."),
)


@rule(
    code="NS003",
    name="fragmented-namespace",
    severity=Severity.WARNING,
    fix_safety=FixSafety.MANUAL,
    scope=Scope.NAMESPACE,
    needs_complete_repository=False,
    fix="Move the namespace's repositories under the project namespace (rename map below).",
    options=[
        Option(
            "separators",
            "-_.",
            "Characters that split a namespace into a project and a team or suffix.",
            kind="str",
        ),
        Option(
            "match_last_token",
            True,
            "Also treat 'cloud-suporte' as a fragment of 'suporte' (project named last).",
            kind="bool",
        ),
    ],
)
def fragmented_namespace(ctx: RuleContext) -> pd.DataFrame:
    """Project split over several namespaces.

    What it flags:
        A namespace that is a fragment of another project: its root (the part before
        ``-``, ``_`` or ``.``) is a registered project or another namespace
        (``suporte-cloud`` next to ``suporte``), it shares its root with sibling
        namespaces (``eureca-api`` and ``eureca-web``), or it differs from another only
        by separators (``big-sea`` and ``bigsea``).

    Why it matters:
        The lab guide asks for one generic namespace per project, teams nesting under it
        (``suporte/cloud/*``). Fragments split permissions, reports, cost and cleanup
        policy of one project across namespaces nobody owns as a whole.

    Example:
        ``suporte-cloud/api`` and ``suporte_services/db`` next to the registered project
        ``suporte``: they should be ``suporte/cloud/api`` and ``suporte/services/db``.

    Fix:
        Move the repositories (manual: ECR cannot rename). The finding's
        ``details.rename_map`` maps every old repository to its new path and
        ``details.steps`` lists the copy-then-delete procedure; ``details.conflicts``
        names targets that already exist.
    """
    import pandas as pd

    repos = ctx.repositories
    seps = ctx.options["separators"]
    registered = set(ctx.config.projects.projects)
    columns = ["account", "region", "namespace", "message", "details"]
    named = repos[repos["namespace"].notna()]
    if not len(named):
        return pd.DataFrame([], columns=columns)
    rows: list[dict[str, Any]] = []

    def squash(value: str) -> str:
        return re.sub("[" + re.escape(seps) + "]", "", value)

    # Namespaces are compared across every account and region (a project may span
    # accounts: ``suporte`` in one and ``suporte-cloud`` in another is a fragment); the
    # rename map stays in the fragment's own account and region.
    where: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    homes: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for account, region, namespace, name in zip(
        named["account"].astype(str),
        named["region"].astype(str),
        named["namespace"].astype(str),
        named["name"].astype(str),
        strict=True,
    ):
        where[(account, region)][namespace].append(name)
        homes[namespace].add((account, region))
    sizes = {ns: sum(len(where[h][ns]) for h in hs) for ns, hs in homes.items()}
    present = set(homes)
    known = present | registered
    by_root: dict[str, set[str]] = defaultdict(set)
    for namespace in present:
        tokens = _split(namespace, seps)
        if len(tokens) > 1:
            by_root[tokens[0]].add(namespace)
    for (account, region), repos_by_ns in sorted(where.items()):
        existing = {n for names in repos_by_ns.values() for n in names}
        for namespace in sorted(repos_by_ns):
            if namespace in registered:
                continue
            tokens = _split(namespace, seps)
            target: str | None = None
            sub: list[str] = []
            kind = ""
            variants = sorted(
                (p for p in known if p != namespace and squash(p) == squash(namespace)),
                key=lambda p: (p not in registered, -sizes.get(p, 0), p),
            )
            if variants:
                target, kind = variants[0], "separator variant"
            elif len(tokens) > 1 and tokens[0] in known:
                target, sub, kind = tokens[0], tokens[1:], "team/suffix variant"
            elif len(tokens) > 1 and ctx.options["match_last_token"] and tokens[-1] in known:
                target, sub, kind = tokens[-1], tokens[:-1], "team/prefix variant"
            elif len(tokens) > 1 and len(by_root[tokens[0]]) > 1:
                target, sub, kind = tokens[0], tokens[1:], "sibling fragments"
            if target is None:
                continue
            prefix = "/".join([target, *sub])
            rename = {old: prefix + old[len(namespace) :] for old in sorted(repos_by_ns[namespace])}
            conflicts = sorted(new for new in rename.values() if new in existing)
            siblings = sorted((by_root.get(tokens[0], set()) | ({target} & present)) - {namespace})
            elsewhere = sorted(
                {a for ns in [target, *siblings] for a, _ in homes.get(ns, ())} - {account}
            )
            registry = _registry(account, region)
            rows.append(
                {
                    "account": account,
                    "region": region,
                    "namespace": namespace,
                    "message": message(
                        FRAGMENT_TEMPLATES[(bool(siblings), bool(elsewhere))],
                        namespace=namespace,
                        project=target,
                        kind=message(FRAGMENT_KINDS[kind]),
                        repositories=len(rename),
                        prefix=prefix,
                        related=siblings,
                        accounts=elsewhere,
                    ),
                    "details": {
                        "project": target,
                        "registered": target in registered,
                        "kind": kind,
                        "related_namespaces": siblings,
                        "related_accounts": elsewhere,
                        "rename_map": rename,
                        "conflicts": conflicts,
                        "steps": [
                            message(step, registry=registry).to_json()
                            if "%(registry)s" in step
                            else message(step).to_json()
                            for step in COPY_STEPS
                        ],
                    },
                }
            )
    return pd.DataFrame(rows, columns=columns)


MAX_DEPTH = 10


def _full_pattern(segment: str, depth: int) -> str:
    """The whole-path pattern NS004 runs: ``depth`` segments joined by ``/``."""
    return f"^(?:{segment})(?:/(?:{segment})){{0,{depth - 1}}}$"


def _check_segment_pattern(segment: str) -> None:
    """What NS004 will run must compile (RE2, at the deepest ``max_depth``), and a
    segment pattern must not match ``/`` (it would make ``max_depth`` meaningless)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    check_re2(_full_pattern(segment, MAX_DEPTH))
    probe = pa.array(["/", "a/b", "a/b/c"], type=pa.string())
    if any(pc.match_substring_regex(probe, f"^(?:{segment})$").to_pylist()):
        raise ValueError(
            f"{segment!r} matches '/' too: a segment pattern must match one path segment"
        )


@rule(
    code="NS004",
    name="naming-convention",
    severity=Severity.INFO,
    fix_safety=FixSafety.MANUAL,
    scope=Scope.REPOSITORY,
    needs_complete_repository=False,
    fix="Copy the repository to a conforming name, move consumers, delete the old one.",
    options=[
        Option(
            "segment_pattern",
            "[a-z0-9]+(-[a-z0-9]+)*",
            "Regular expression (RE2 syntax) every path segment must match in full.",
            kind="regex",
            validate=_check_segment_pattern,
        ),
        Option(
            "max_depth",
            3,
            "Most path segments (namespace/team/image = 3).",
            min=1,
            max=MAX_DEPTH,
        ),
    ],
)
def naming_convention(ctx: RuleContext) -> pd.DataFrame:
    """Repository path that breaks the house naming convention.

    What it flags:
        A repository whose path has a segment not matching ``segment_pattern`` (by
        default lowercase words joined by single hyphens: no ``_``, ``.`` or ``--``) or
        more than ``max_depth`` segments.

    Why it matters:
        Consistent names make repositories findable, let lifecycle and permission
        patterns (``suporte/cloud/*``) work, and keep URIs predictable for CI.
        ECR accepts ``_``, ``.`` and ``__``; the house convention is stricter.

    Example:
        ``suporte/cloud/api_server`` (underscore) or ``suporte/cloud/infra/tools/cli``
        (five segments).

    Fix:
        Copy the images to a conforming name (``suporte/cloud/api-server``), move
        consumers, then delete the old repository.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    repos = ctx.repositories
    pattern, depth = ctx.options["segment_pattern"], ctx.options["max_depth"]
    names = pa.array(_names(repos).tolist(), type=pa.string())
    # RE2 only, as the option check compiled it: linear time whatever the pattern
    ok = pc.match_substring_regex(names, _full_pattern(pattern, depth))
    sub = repos[~np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)]
    failing = sub["name"].astype(str).tolist()
    segments = sorted({p for name in failing for p in name.split("/")})
    matching = pc.match_substring_regex(pa.array(segments, type=pa.string()), f"^(?:{pattern})$")
    conforming = {s for s, good in zip(segments, matching.to_pylist(), strict=True) if good}
    messages, details = [], []
    for name in failing:
        parts = name.split("/")
        bad = [p for p in parts if p not in conforming]
        problems = []
        if bad:
            problems.append(
                message(BAD_SEGMENTS if len(bad) > 1 else BAD_SEGMENT, segments=bad,
                        pattern=pattern)
            )  # fmt: skip
        if len(parts) > depth:
            problems.append(message(TOO_DEEP, depth=len(parts), max=depth))
        messages.append(message(NAMING, name=name, problems=problems))
        details.append({"bad_segments": bad, "depth": len(parts)})
    return pd.DataFrame({"message": messages, "details": details}, index=sub.index)
