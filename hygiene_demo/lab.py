"""The lab's registry: ~40 repositories and ~1,500 images shaped like the lab's own.

``plan_lab_registry`` is pure: from the projects registry, a clock and a random seed it
plans the repositories of ``LAB_LAYOUT`` and their images pushed over the two years before
``now``, with every awkward case a registry-hygiene tool must handle (see
``docs/embedded-registry.md``), and returns a :class:`~hygiene_demo.manifest.SeedManifest`.

``python -m hygiene_demo.lab`` prints the table of repositories in that document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from hygiene.config import ProjectsRegistry
from hygiene.inventory import SIGNATURE_TAG
from hygiene_demo.manifest import (
    SeededImage,
    SeededRepository,
    SeedManifest,
    repository_table,
    seeded,
)
from hygiene_demo.mediatypes import COSIGN_SIGNATURE, DOCKER_LIST, OCI_INDEX, SPDX_SBOM
from hygiene_demo.planner import MB, MINUTE, Build, PlannedRepository, Planner, Stream
from hygiene_demo.registry import DEFAULT_ACCOUNT

FOREIGN_ACCOUNT = "210987654321"  # the partner account of bigsea/api-gateway's policy


# The registry's shape as data. `stream` fields are those of `Stream`; `extras` name
# special cases planned in code (`_EXTRAS`); `facts` name expectations whose value is this
# repository's name, `listed_in` expectations that list it. `{unregistered}` is a namespace
# absent from the projects registry; `_other` is planned for any other registered one.
LAB_LAYOUT = """
suporte:
- {name: suporte/api, created_days: 740, resource_tags: {project: suporte},
   about: "Helpdesk API; tags switched from 1.2.3 to v1.2.3 midway (mixed scheme);
     signed with legacy cosign tags",
   stream: {builds: 60, first_days: 720, last_days: 2, scheme: semver-to-v, rebuild_rate: 0.05,
            protected: {stable: 2}, size_mb: [120, 260]},
   extras: [legacy-signatures], listed_in: [mixed_tag_scheme_repositories]}
- {name: suporte/web, created_days: 700, facts: [drifting_latest_repository],
   about: "Helpdesk web UI; `latest` stopped moving 150 days ago (drift)",
   stream: {builds: 45, first_days: 690, last_days: 4, scheme: v-semver, layout: oci,
            latest_until_days: 150, size_mb: [40, 90]}}
- {name: suporte/cloud/nginx-proxy, created_days: 600,
   about: "Reverse proxy; multi-arch OCI indexes with buildx provenance attestations",
   stream: {builds: 20, first_days: 580, last_days: 9, scheme: semver, layout: oci-index,
            rebuild_rate: 0.1, size_mb: [25, 45], start_version: [1, 25, 0]}}
- {name: suporte/cloud/k8s/tools/kubectl, created_days: 500, facts: [naming_violation_repository],
   about: "Five path segments: breaks the naming convention (depth > 3)",
   stream: {builds: 12, first_days: 480, last_days: 30, scheme: v-semver, floating: [],
            pulls: occasional, size_mb: [20, 30], start_version: [1, 28, 0]}}
- {name: suporte/cloud/monitoring, created_days: 650, about: "Exporters, tagged by build date",
   stream: {builds: 25, first_days: 640, last_days: 12, scheme: date, rebuild_rate: 0.1,
            size_mb: [60, 110]}}
- {name: suporte/cloud/dns-updater, created_days: 420, about: "Small cron job image",
   stream: {builds: 10, first_days: 410, last_days: 60, scheme: semver, pulls: occasional,
            size_mb: [15, 25]}}
- {name: suporte/services/ldap-sync, created_days: 560, about: "LDAP to Google Workspace sync",
   stream: {builds: 18, first_days: 550, last_days: 20, scheme: semver, pulls: occasional,
            size_mb: [70, 120]}}
- {name: suporte/services/mail-relay, created_days: 380, about: "Postfix relay",
   stream: {builds: 10, first_days: 370, last_days: 45, scheme: semver, pulls: occasional,
            size_mb: [50, 80]}}
- {name: suporte/legacy-portal, created_days: 730, facts: [mutelisted_repository],
   about: "The 2019 portal, kept for an audit (mutelisted in rules/default.yaml); abandoned",
   stream: {builds: 35, first_days: 728, last_days: 420, scheme: semver, pulls: abandoned,
            abandoned_days: 400, never_pulled: 0.3, start_version: [2, 3, 0], size_mb: [300, 600]}}
- {name: suporte/backup-agent, created_days: 450, facts: [same_account_policy_repository],
   compliant: {tag_mutability: IMMUTABLE}, policy: same-account,
   resource_tags: {project: suporte, owner: joao.silva@lsd.ufcg.edu.br},
   about: "Compliant: scan on push, IMMUTABLE tags, KMS key, lifecycle policy; CI role may pull",
   stream: {builds: 20, first_days: 440, last_days: 3, scheme: v-semver, floating: [],
            size_mb: [35, 60]}}
- {name: suporte-cloud/grafana, created_days: 600,
   about: "Fragmented namespace: should be suporte/cloud/grafana",
   stream: {builds: 22, first_days: 590, last_days: 15, scheme: semver, size_mb: [90, 140],
            start_version: [10, 1, 0]}}
- {name: suporte-cloud/terraform-runner, created_days: 400,
   about: "Fragmented; git-sha tags and a moving `main`",
   stream: {builds: 14, first_days: 390, last_days: 25, scheme: sha, floating: [], branch: main,
            pulls: occasional, size_mb: [100, 160]}}
- {name: suporte-services/helpdesk, created_days: 620,
   about: "Fragmented; Docker manifest lists (amd64 + arm64)",
   stream: {builds: 30, first_days: 610, last_days: 6, scheme: date, layout: docker-list,
            size_mb: [150, 230]}}
- {name: suporte-services/wiki, created_days: 700, about: "Fragmented; abandoned",
   stream: {builds: 8, first_days: 690, last_days: 260, scheme: semver, pulls: abandoned,
            abandoned_days: 200, size_mb: [180, 260]}}
- {name: suporte_infra/ansible-runner, created_days: 350,
   about: "Fragmented with an underscore: should be suporte/infra/ansible-runner",
   stream: {builds: 16, first_days: 340, last_days: 18, scheme: sha, floating: [], branch: main,
            size_mb: [200, 320]}}
ml:
- {name: ml/training-gpu, created_days: 720, resource_tags: {"hygiene:keep": "true", project: ml},
   facts: [opt_out_repository],
   about: "CUDA training images of 1-3 GiB, rarely pulled; opted out with hygiene:keep=true",
   stream: {builds: 40, first_days: 715, last_days: 21, scheme: date, pulls: occasional,
            never_pulled: 0.3, size_mb: [1200, 2600]}}
- {name: ml/notebook, created_days: 600, about: "Jupyter images; multi-arch OCI indexes",
   stream: {builds: 20, first_days: 590, last_days: 10, scheme: v-semver, layout: oci-index,
            rebuild_rate: 0.1, size_mb: [700, 1100]}}
- {name: ml/inference-api, created_days: 500, compliant: {tag_mutability: IMMUTABLE},
   facts: [referrer_repository],
   about: "Compliant; releases signed (cosign) and with an SBOM as OCI 1.1 referrers",
   stream: {builds: 36, first_days: 490, last_days: 1, scheme: semver, layout: oci,
            floating: [], size_mb: [300, 450]},
   extras: [referrers]}
- {name: ml/label-studio, created_days: 450, about: "Upstream mirror nobody pulls any more",
   stream: {builds: 15, first_days: 440, last_days: 150, scheme: semver, pulls: abandoned,
            abandoned_days: 120, size_mb: [250, 400], start_version: [1, 8, 0]}}
- {name: ml/embeddings, created_days: 300, about: "Embedding service, tagged by git sha",
   stream: {builds: 20, first_days: 290, last_days: 8, scheme: sha, floating: [], branch: main,
            size_mb: [500, 900]}}
- {name: ml/feature-store, created_days: 700, facts: [old_empty_repository],
   listed_in: [empty_repositories], about: "Created 700 days ago and never pushed to"}
eureca:
- {name: eureca/backend, created_days: 400, resource_tags: {project: eureca},
   facts: [excess_images_repository], listed_in: [mixed_tag_scheme_repositories],
   about: "CI builds: build number + git sha + moving main; develop builds left
     untagged; prod lags main; over 100 images",
   stream: {builds: 240, first_days: 390, last_days: 0.2, scheme: build-sha, branch: main,
            dev_share: 0.4, recent_builds: 6, protected: {prod: 1}, never_pulled: 0.35,
            size_mb: [180, 260]}}
- {name: eureca/frontend, created_days: 450,
   about: "Docker manifest lists; monthly release-YYYY.MM tags",
   stream: {builds: 50, first_days: 440, last_days: 3, scheme: v-semver, layout: docker-list,
            monthly_release_tag: true, size_mb: [30, 60]}}
- {name: eureca/worker, created_days: 380,
   compliant: {tag_mutability: IMMUTABLE_WITH_EXCLUSION, exclusions: [latest]},
   about: "Compliant with IMMUTABLE_WITH_EXCLUSION: only `latest` may move",
   stream: {builds: 40, first_days: 370, last_days: 2, scheme: semver, size_mb: [160, 240]}}
- {name: eureca/db-migrations, created_days: 380, about: "Flyway migrations, tagged by git sha",
   stream: {builds: 25, first_days: 370, last_days: 5, scheme: sha, floating: [],
            pulls: occasional, size_mb: [90, 120]}}
- {name: eureca/docs, created_days: 500, policy: public, facts: [public_repository],
   about: "Documentation site; PUBLIC repository policy (Principal *)",
   stream: {builds: 30, first_days: 490, last_days: 7, scheme: date, layout: oci,
            size_mb: [20, 40]}}
bigsea:
- {name: bigsea/spark-base, created_days: 700,
   about: "Spark base images; multi-arch OCI indexes; `stable` tag",
   stream: {builds: 18, first_days: 690, last_days: 14, scheme: semver, layout: oci-index,
            protected: {stable: 1}, start_version: [3, 3, 0], size_mb: [800, 1200]}}
- {name: bigsea/hadoop-namenode, created_days: 735, facts: [abandoned_repository],
   about: "Abandoned for over a year; its four oldest images were archived",
   stream: {builds: 30, first_days: 725, last_days: 500, scheme: semver, pulls: abandoned,
            abandoned_days: 450, start_version: [3, 2, 1], size_mb: [500, 700]},
   extras: [archive-oldest]}
- {name: bigsea/kafka-connect, created_days: 520, about: "Kafka Connect with plugins",
   stream: {builds: 20, first_days: 510, last_days: 35, scheme: semver, pulls: occasional,
            start_version: [7, 4, 0], size_mb: [350, 500]}}
- {name: bigsea/api-gateway, created_days: 560, policy: cross-account,
   facts: [cross_account_repository],
   about: "Shared with a partner: cross-account repository policy",
   stream: {builds: 28, first_days: 550, last_days: 4, scheme: v-semver, size_mb: [60, 90]}}
- {name: bigsea/etl-jobs, created_days: 600, listed_in: [mixed_tag_scheme_repositories],
   about: "Tagged by date, later by semver (mixed scheme)",
   stream: {builds: 40, first_days: 590, last_days: 11, scheme: date-to-semver,
            pulls: occasional, size_mb: [400, 650]}}
labs:
- {name: labs/sistemas-operacionais, created_days: 700,
   about: "Course image: a semester tag (2026.1) rebuilt during term, plus date tags",
   stream: {builds: 20, first_days: 690, last_days: 40, scheme: semester, floating: [],
            pulls: occasional, size_mb: [600, 900]}}
- {name: labs/redes, created_days: 600, about: "Computer networks lab image",
   stream: {builds: 15, first_days: 590, last_days: 70, scheme: semester, floating: [],
            pulls: occasional, size_mb: [400, 700]}}
- {name: labs/bd-postgres, created_days: 500, about: "Databases course image",
   stream: {builds: 12, first_days: 490, last_days: 50, scheme: date, pulls: occasional,
            size_mb: [120, 180]}}
- {name: labs/compiladores, created_days: 650, about: "Compilers course, not offered this year",
   stream: {builds: 10, first_days: 640, last_days: 330, scheme: semester, floating: [],
            pulls: abandoned, abandoned_days: 300, size_mb: [500, 800]}}
- {name: labs/ia-2027-1, created_days: 3, facts: [new_empty_repository],
   listed_in: [empty_repositories], about: "Created 3 days ago for next term; still empty"}
_other:
- {name: "{ns}/app", created_days: 400, about: "Application image",
   stream: {builds: 20, first_days: 390, last_days: 5, scheme: semver, size_mb: [80, 200]}}
- {name: "{ns}/worker", created_days: 300, about: "Background worker",
   stream: {builds: 12, first_days: 290, last_days: 9, scheme: sha, floating: [], branch: main,
            size_mb: [80, 200]}}
_unowned:
- {name: nginx, created_days: 730, listed_in: [outside_namespace_repositories],
   about: "Outside any namespace; upstream mirror with manifest lists, rebuilt on base fixes",
   stream: {builds: 20, first_days: 720, last_days: 20, scheme: semver, layout: docker-list,
            rebuild_rate: 0.15, size_mb: [60, 75], start_version: [1, 25, 1]}}
- {name: postgres-backup, created_days: 700, listed_in: [outside_namespace_repositories],
   about: "Outside any namespace; its oldest image is still pulled nightly by a forgotten cron job",
   stream: {builds: 14, first_days: 690, last_days: 40, scheme: semver, pulls: occasional,
            rebuild_rate: 0.15, size_mb: [90, 130]},
   extras: [oldest-still-pulled]}
- {name: "{unregistered}/crawler", created_days: 400,
   about: "Unregistered namespace (a student's thesis project)",
   stream: {builds: 25, first_days: 390, last_days: 95, scheme: sha, branch: main,
            dev_share: 0.3, pulls: abandoned, abandoned_days: 90, size_mb: [150, 300]}}
- {name: "{unregistered}/dashboard", created_days: 300, facts: [only_latest_repository],
   about: "Unregistered; only ever tagged `latest`, so every rebuild left an untagged image",
   stream: {builds: 12, first_days: 290, last_days: 100, scheme: none, pulls: abandoned,
            abandoned_days: 95, size_mb: [100, 200]}}
"""

UNREGISTERED_NAMESPACE = "tcc-joao"

_LIFECYCLE = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "Expire untagged images 14 days after push",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 14,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": "Keep the newest 50 release images",
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": ["*.*.*"],
                "countType": "imageCountMoreThan",
                "countNumber": 50,
            },
            "action": {"type": "expire"},
        },
    ]
}
_PULL_ACTIONS = [
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
]


def _policy(sid: str, principal: Any) -> str:
    statement = {"Sid": sid, "Effect": "Allow", "Principal": principal, "Action": _PULL_ACTIONS}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, indent=2)


def _repository_policy(kind: str, account: str) -> str:
    if kind == "public":
        return _policy("PublicPull", "*")
    if kind == "cross-account":
        return _policy("PartnerPull", {"AWS": f"arn:aws:iam::{FOREIGN_ACCOUNT}:root"})
    if kind == "same-account":
        return _policy("CiPull", {"AWS": f"arn:aws:iam::{account}:role/ci-runner"})
    raise ValueError(f"unknown policy kind {kind!r}")


def _legacy_signatures(p: Planner, repo: PlannedRepository, builds: list[Build]) -> None:
    """The 12 newest releases signed the pre-OCI-1.1 way, an attestation, and an orphan."""
    signed = [b.head for b in builds if b.release and b.head.tags][-12:]
    signatures = []
    for image in signed:
        sig = p.legacy_signature(repo.name, image.digest, image.pushed_at + timedelta(minutes=3))
        sig.last_pull = image.last_pull if p.rng.random() < 0.6 else None
        signatures.append(p.add_image(sig))
    newest = signed[-1]
    att = p.legacy_signature(
        repo.name, newest.digest, newest.pushed_at + timedelta(minutes=4), "att"
    )
    p.add_image(att)
    gone = p.manifest_image(repo.name, p.ago(400), 150 * MB, oci=False)  # deleted long ago
    orphan = p.add_image(p.legacy_signature(repo.name, gone.digest, p.ago(400) + 3 * MINUTE))
    p.facts.update(
        legacy_signature_repository=repo.name,
        legacy_signed_digest=newest.digest,
        legacy_signature_digest=signatures[-1].digest,
        legacy_attestation_digest=att.digest,
        orphan_signature_tag=orphan.tags[0],
        orphan_signature_digest=orphan.digest,
    )


def _referrers(p: Planner, repo: PlannedRepository, builds: list[Build]) -> None:
    """A cosign signature and an SBOM for the 20 newest builds, and one orphaned signature."""
    for build in builds[-20:]:
        for kind in (COSIGN_SIGNATURE, SPDX_SBOM):
            ref = p.add_image(p.referrer(repo.name, build.head, build.pushed_at + 2 * MINUTE, kind))
            if kind == COSIGN_SIGNATURE and build.head.last_pull and p.rng.random() < 0.7:
                ref.last_pull = build.head.last_pull  # verified at deploy time
    gone = p.manifest_image(repo.name, p.ago(200), 350 * MB, oci=True)  # its subject was deleted
    orphan = p.referrer(repo.name, gone, p.ago(200) + 2 * MINUTE, COSIGN_SIGNATURE)
    p.add_image(orphan)
    p.facts.update(
        orphan_referrer_digest=orphan.digest,
        orphan_referrer_subject=gone.digest,
        signed_subject_digest=builds[-1].head.digest,
    )


def _archive_oldest(p: Planner, repo: PlannedRepository, builds: list[Build]) -> None:
    archived = []
    for build in builds[:4]:
        build.head.status = "ARCHIVED"
        build.head.archived_at = p.ago(120 + p.rng.uniform(0, 30))
        archived.append(build.head.digest)
    p.facts["archived_digests"] = archived


def _oldest_still_pulled(p: Planner, repo: PlannedRepository, builds: list[Build]) -> None:
    old = builds[0].head
    old.last_pull = (p.now - timedelta(hours=p.rng.uniform(2, 20))).replace(microsecond=0)
    p.facts["old_image_pulled_recently"] = old.digest


_EXTRAS = {
    "legacy-signatures": _legacy_signatures,
    "referrers": _referrers,
    "archive-oldest": _archive_oldest,
    "oldest-still-pulled": _oldest_still_pulled,
}


def _plan_entries(p: Planner, entries: list[dict[str, Any]], names: Mapping[str, str]) -> None:
    for entry in entries:
        settings: dict[str, Any] = {"resource_tags": dict(entry.get("resource_tags", {}))}
        if "compliant" in entry:
            settings.update(
                scan_on_push=True,
                kms=True,
                tag_mutability=entry["compliant"]["tag_mutability"],
                exclusions=tuple(entry["compliant"].get("exclusions", ())),
                lifecycle_policy=json.dumps(_LIFECYCLE, indent=2),
            )
        if "policy" in entry:
            settings["policy"] = _repository_policy(entry["policy"], p.account)
        name = entry["name"].format(**names)
        repo = p.add_repo(name, entry["about"], entry["created_days"], **settings)
        builds: list[Build] = []
        if "stream" in entry:
            spec = dict(entry["stream"])
            for key in ("size_mb", "start_version", "floating"):
                if key in spec:
                    spec[key] = tuple(spec[key])
            builds = p.stream(repo, Stream(**spec))
        for extra in entry.get("extras", ()):
            _EXTRAS[extra](p, repo, builds)
        for fact in entry.get("facts", ()):
            p.facts[fact] = name
        for fact in entry.get("listed_in", ()):
            p.facts.setdefault(fact, []).append(name)


def _namespaces(projects: Any) -> set[str]:
    while hasattr(projects, "projects"):  # hygiene.config.Config / ProjectsRegistry
        projects = projects.projects
    if isinstance(projects, Mapping):
        return {str(k) for k in projects}
    if isinstance(projects, str):
        return {projects}
    return {str(p) for p in projects}


def plan_lab_registry(
    projects: ProjectsRegistry | Mapping[str, Any] | Iterable[str],
    now: datetime,
    *,
    region: str = "us-east-1",
    rng_seed: int = 7,
    account: str = DEFAULT_ACCOUNT,
) -> SeedManifest:
    """Plan the lab-shaped registry without writing it anywhere (pure, deterministic).

    ``projects`` is the projects registry (``config.projects``), a mapping keyed by
    namespace, or an iterable of namespace names. The lab's five projects get the
    repositories of ``LAB_LAYOUT``; any other registered namespace gets a generic pair;
    repositories outside any namespace and an unregistered namespace are always planned.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    namespaces = _namespaces(projects)
    layout = yaml.safe_load(LAB_LAYOUT)
    unregistered = UNREGISTERED_NAMESPACE
    while unregistered in namespaces:
        unregistered += "-x"
    p = Planner(namespaces, now, rng_seed, account, region)
    for namespace in sorted(namespaces):
        entries = layout.get(namespace) if not namespace.startswith("_") else None
        _plan_entries(p, entries or layout["_other"], {"ns": namespace})
    _plan_entries(p, layout["_unowned"], {"unregistered": unregistered})
    return _manifest(p)


def _manifest(p: Planner) -> SeedManifest:
    repositories, images = seeded(p, sort_images=True)
    facts = dict(p.facts)
    facts.update(_derived_facts(p, images, repositories))
    return SeedManifest(
        account=p.account,
        region=p.region,
        now=p.now,
        rng_seed=p.rng_seed,
        repositories=repositories,
        images=images,
        facts=facts,
    )


def _derived_facts(
    p: Planner, images: tuple[SeededImage, ...], repositories: tuple[SeededRepository, ...]
) -> dict[str, Any]:
    children = {(i.repository, c) for i in images for c in i.child_digests}
    leftovers = [
        i
        for i in images
        if not i.tags
        and (i.repository, i.digest) not in children
        and i.subject_digest is None
        and not i.is_index
    ]
    week_ago = p.now - timedelta(days=7)
    seeded = sorted({n for r in repositories if (n := r.namespace) is not None})
    fragmented: dict[str, list[str]] = {}
    for namespace in seeded:
        project = re.split(r"[-_]", namespace, maxsplit=1)[0]
        if namespace not in p.namespaces and project != namespace and project in p.namespaces:
            fragmented.setdefault(project, []).append(namespace)
    split = {n for names in fragmented.values() for n in names}
    facts: dict[str, Any] = {
        "foreign_account": FOREIGN_ACCOUNT,
        # Namespaces absent from the projects registry; fragments of a registered project
        # (suporte-cloud …) are listed under fragmented_namespaces instead.
        "unregistered_namespaces": [n for n in seeded if n not in p.namespaces and n not in split],
        "fragmented_namespaces": fragmented,
        "untagged_leftovers_older_than_7_days": [
            i.digest for i in leftovers if i.pushed_at < week_ago
        ],
        "untagged_leftovers_younger_than_7_days": [
            i.digest for i in leftovers if i.pushed_at >= week_ago
        ],
        "untagged_indexes": [i.digest for i in images if i.is_index and not i.tags],
        "oci_index_repositories": sorted(
            {i.repository for i in images if i.manifest_media_type == OCI_INDEX}
        ),
        "docker_list_repositories": sorted(
            {i.repository for i in images if i.manifest_media_type == DOCKER_LIST}
        ),
        "compliant_repositories": [
            r.name
            for r in repositories
            if r.scan_on_push and r.lifecycle_policy and r.encryption == "KMS"
        ],
        "protected_tag_images": {  # "repository:tag" → digest
            f"{i.repository}:{t}": i.digest
            for i in images
            for t in i.tags
            if t in ("prod", "stable") or t.startswith("release-")
        },
    }
    drift = p.facts.get("drifting_latest_repository")
    latest_ok = []
    for repo in sorted({i.repository for i in images}):
        tagged = [i for i in images if i.repository == repo and "latest" in i.tags]
        if not tagged:
            continue
        heads = [
            i
            for i in images
            if i.repository == repo and i.tags and not all(SIGNATURE_TAG.match(t) for t in i.tags)
        ]
        newest = max(heads, key=lambda i: i.pushed_at)
        if repo == drift:
            facts["drifting_latest_digest"] = tagged[0].digest
            facts["drift_newest_digest"] = newest.digest
        elif tagged[0].digest == newest.digest:
            latest_ok.append(repo)
    facts["correct_latest_repositories"] = latest_ok
    return facts


if __name__ == "__main__":  # python -m hygiene_demo.lab: print the docs table
    from hygiene.config import load_config

    print(repository_table(plan_lab_registry(load_config().projects, datetime.now(UTC))), end="")
