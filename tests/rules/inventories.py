"""Build small inventories and configs from readable rows (used by the YAML cases).

Digests are written as short aliases (``a``, ``idx``) and expanded to real-looking
``sha256:<hex>`` digests; times are given in days before the fixed test clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from hygiene.config import Config, Policy, Project, ProjectsRegistry
from hygiene.inventory import Inventory, RunInfo, build_images, build_repositories, namespace_of

ACCOUNT = "851296927411"
REGION = "us-east-1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
PROJECTS = ("suporte", "ml", "eureca", "bigsea", "labs")


def digest(alias: str) -> str:
    if alias.startswith("sha256:"):
        return alias
    return "sha256:" + hashlib.sha256(alias.encode()).hexdigest()


def alias_map(aliases: Sequence[str]) -> dict[str, str]:
    return {digest(a): a for a in aliases}


def _tag(tag: str) -> str:
    """``sig:<alias>`` → the legacy cosign signature tag of that image."""
    if tag.startswith(("sig:", "att:", "sbom:")):
        kind, alias = tag.split(":", 1)
        return "sha256-" + digest(alias)[len("sha256:") :] + "." + kind
    return str(tag)


def _ago(now: datetime, days: float | None) -> datetime | None:
    return None if days is None else now - timedelta(days=float(days))


def image_record(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    repository = row.get("repository", "suporte/api")
    children = [digest(c) for c in row.get("children", [])]
    return {
        "account": row.get("account", ACCOUNT),
        "region": row.get("region", REGION),
        "repository": repository,
        "namespace": namespace_of(repository),
        "digest": digest(str(row["digest"])),
        "tags": [_tag(t) for t in row.get("tags", [])],
        "pushed_at": _ago(now, row.get("pushed_days_ago", 1)),
        "last_pull": _ago(now, row.get("pulled_days_ago")),
        "size_bytes": row.get("size", 1000),
        "manifest_media_type": OCI_INDEX if children else row.get("media_type", OCI_MANIFEST),
        "artifact_media_type": row.get("artifact_media_type"),
        "status": row.get("status", "ACTIVE"),
        "child_digests": children,
        "subject_digest": digest(row["subject"]) if row.get("subject") else None,
    }


def repository_record(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    name = row["name"]
    account = row.get("account", ACCOUNT)
    region = row.get("region", REGION)
    return {
        "account": account,
        "region": region,
        "name": name,
        "namespace": namespace_of(name),
        "arn": f"arn:aws:ecr:{region}:{account}:repository/{name}",
        "uri": f"{account}.dkr.ecr.{region}.amazonaws.com/{name}",
        "created_at": _ago(now, row.get("created_days_ago", 400)),
        "tag_mutability": row.get("tag_mutability", "IMMUTABLE"),
        "tag_mutability_exclusions": row.get("tag_mutability_exclusions", []),
        "scan_on_push": row.get("scan_on_push", True),
        "registry_scan_frequency": row.get("registry_scan_frequency"),
        "encryption": row.get("encryption", "KMS"),
        "kms_key": row.get(
            "kms_key", f"arn:aws:kms:{region}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        ),
        "lifecycle_policy": row.get("lifecycle_policy", '{"rules": []}'),
        "repository_policy": row.get("repository_policy"),
        "resource_tags": row.get("resource_tags", {}),
        "scan_error": row.get("scan_error"),
    }


def make_inventory(
    images: Sequence[Mapping[str, Any]],
    now: datetime,
    repositories: Sequence[Mapping[str, Any]] = (),
) -> Inventory:
    """Images and repositories from rows; repositories missing from the list are created."""
    frame = build_images([image_record(r, now) for r in images])
    repos = {r["name"]: dict(r) for r in repositories}
    for row in images:
        key = (row.get("repository", "suporte/api"), row.get("account", ACCOUNT))
        repos.setdefault(key[0], {"name": key[0], "account": key[1]})
    repo_frame = build_repositories([repository_record(r, now) for r in repos.values()], frame)
    return Inventory(images=frame, repositories=repo_frame, run=RunInfo(id="test", started_at=now))


def make_config(
    policy: Mapping[str, Any] | None = None, projects: Sequence[str] = PROJECTS
) -> Config:
    return Config(
        policy=Policy.model_validate(dict(policy or {})),
        projects=ProjectsRegistry(
            projects={p: Project(owners=[f"owner.{p}@lsd.ufcg.edu.br"]) for p in projects}
        ),
    )
