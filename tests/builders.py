"""Test data, one definition each: inventory rows, inventories, findings, proposals.

Every test that needs an inventory, a finding or a proposal builds it here, so a change
to the inventory schema or to a model type is made in one place.

* Digests may be written as short aliases (``"a"``, ``"idx"``): :func:`digest_of` turns
  an alias into a real-looking ``sha256:<hex>`` digest (the SHA-256 of the alias) and
  leaves a value that already starts with ``sha256:`` as it is. Children and subjects
  are aliases or digests too.
* Times are days before a clock (``now``, by default :data:`NOW`, the fixed test clock),
  or absolute datetimes (``pushed_at``, ``last_pull``) when a test needs exact values.
* :func:`image_row` and :func:`repository_row` return collector records (the dicts
  :func:`hygiene.inventory.build_images` / ``build_repositories`` read); their keyword
  names are also the keys of the YAML cases (``tests/rules/cases``,
  ``tests/lifecycle/cases``), so a case row is passed as ``image_row(**row)``.
* :func:`inventory` assembles rows into a typed :class:`~hygiene.inventory.Inventory`,
  adding a default repository row for every repository an image names but the list
  does not.
* :func:`finding` and :func:`proposal` fill every field a test does not care about
  with the value the production code would give (rule name, severity and fix safety
  from the rule catalogue; the proposal id from :func:`hygiene.model.proposal_id` over
  account, region, repository, target and evidence, as :mod:`hygiene.plan` computes it).
"""

from __future__ import annotations

import copy
import hashlib
import shutil
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from hygiene.authz import Identity, TrustPolicy
from hygiene.config import Config, Policy, Project, ProjectsRegistry
from hygiene.inventory import (
    Inventory,
    RunInfo,
    ScanCoverage,
    build_images,
    build_repositories,
    namespace_of,
)
from hygiene.messages import Message
from hygiene.model import Action, Finding, FixSafety, Proposal, ProposalState, Severity, proposal_id
from hygiene.rules import RULES, Evaluation

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
"""The fixed test clock: data-driven tests do not drift with the calendar."""
REPO_ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = REPO_ROOT / "rules"

ACCOUNT = "851296927411"
REGION = "us-east-1"
REPOSITORY = "suporte/api"
PROJECTS = ("suporte", "ml", "eureca", "bigsea", "labs")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
MIB = 1024**2
GIB = 1024**3

SSO_ADMIN_ROLE = "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
ADMIN = Identity(
    f"arn:aws:sts::{ACCOUNT}:assumed-role/{SSO_ADMIN_ROLE}/alice@lsd.ufcg.edu.br", "sts"
)
"""An admin of the shipped configuration (``AdministratorAccess`` in its account), as
verified by STS."""

_SIGNATURE_KINDS = ("sig", "att", "sbom")
_DERIVED: Any = object()  # "derive from the repository" (None is a meaningful namespace)


# --------------------------------------------------------------------------- digests


def digest_of(alias: str) -> str:
    """``"a"`` → ``sha256:<sha256 of "a">``; a ``sha256:…`` digest is returned unchanged."""
    if alias.startswith("sha256:"):
        return alias
    return "sha256:" + hashlib.sha256(alias.encode()).hexdigest()


def aliases(names: Iterable[str]) -> dict[str, str]:
    """Digest → alias, to print or compare results in the aliases a test was written in."""
    return {digest_of(name): name for name in names}


def signature_tag(alias: str, kind: str = "sig") -> str:
    """The legacy cosign tag (``sha256-<hex>.sig|att|sbom``) of the image ``alias``."""
    if kind not in _SIGNATURE_KINDS:
        raise ValueError(f"signature kind must be one of {_SIGNATURE_KINDS}, not {kind!r}")
    return "sha256-" + digest_of(alias)[len("sha256:") :] + "." + kind


def referrers_tag(alias: str) -> str:
    """The OCI referrers-tag-schema tag (``sha256-<hex>``) of the image ``alias``: the
    tag of an image index listing that image's referrers."""
    return "sha256-" + digest_of(alias)[len("sha256:") :]


def tag_of(tag: str) -> str:
    """``sig:<alias>`` (or ``att:``/``sbom:``) → :func:`signature_tag`; ``refs:<alias>`` →
    :func:`referrers_tag`; other tags as given.

    An ECR tag cannot contain ``:``, so the shorthand never hides a real tag."""
    kind, sep, alias = tag.partition(":")
    if sep and kind == "refs":
        return referrers_tag(alias)
    return signature_tag(alias, kind) if sep and kind in _SIGNATURE_KINDS else tag


def _ago(now: datetime, days: float | None) -> datetime | None:
    return None if days is None else now - timedelta(days=float(days))


# --------------------------------------------------------------------------- rows


def image_row(
    digest: str,
    repository: str = REPOSITORY,
    *,
    tags: Sequence[str] = (),
    pushed_days_ago: float = 1,
    pulled_days_ago: float | None = None,
    archived_days_ago: float | None = None,
    pushed_at: datetime | None = None,
    last_pull: datetime | None = None,
    size: int = 1000,
    media_type: str = OCI_MANIFEST,
    artifact_media_type: str | None = None,
    status: str = "ACTIVE",
    children: Sequence[str] = (),
    subject: str | None = None,
    account: str = ACCOUNT,
    region: str = REGION,
    now: datetime = NOW,
) -> dict[str, Any]:
    """One image as the collector records it.

    ``children`` (aliases or digests) make the image an index (OCI index media type);
    ``subject`` makes it an OCI referrer of that image; a tag ``sig:<alias>`` is the
    legacy cosign signature tag of ``<alias>`` (also ``att:``, ``sbom:``).
    ``archived_days_ago`` sets ``archived_at``, which the collector does not read yet
    (docs/lifecycle.md): :func:`images_frame` adds the column only when a row has it.
    """
    child_digests = [digest_of(c) for c in children]
    row: dict[str, Any] = {
        "account": account,
        "region": region,
        "repository": repository,
        "namespace": namespace_of(repository),
        "digest": digest_of(str(digest)),
        "tags": [tag_of(str(t)) for t in tags],
        "pushed_at": pushed_at if pushed_at is not None else _ago(now, pushed_days_ago),
        "last_pull": last_pull if last_pull is not None else _ago(now, pulled_days_ago),
        "size_bytes": int(size),
        "manifest_media_type": OCI_INDEX if child_digests else media_type,
        "artifact_media_type": artifact_media_type,
        "status": status,
        "child_digests": child_digests,
        "subject_digest": digest_of(subject) if subject else None,
    }
    if archived_days_ago is not None:
        row["archived_at"] = _ago(now, archived_days_ago)
    return row


def repository_row(
    name: str = REPOSITORY,
    *,
    account: str = ACCOUNT,
    region: str = REGION,
    created_days_ago: float = 400,
    tag_mutability: str = "IMMUTABLE",
    tag_mutability_exclusions: Sequence[str] = (),
    scan_on_push: bool = True,
    registry_scan_frequency: str | None = None,
    encryption: str = "KMS",
    kms_key: str | None = KMS_KEY,
    lifecycle_policy: str | None = '{"rules": []}',
    repository_policy: str | None = None,
    resource_tags: Mapping[str, str] | None = None,
    scan_error: str | None = None,
    now: datetime = NOW,
) -> dict[str, Any]:
    """One repository as the collector records it.

    The defaults describe a repository no compliance rule flags (immutable tags, scan on
    push, a KMS key, a lifecycle policy); a test that needs ECR's defaults for a new
    repository (mutable, no scan, AES256, no policy) says so.
    """
    return {
        "account": account,
        "region": region,
        "name": name,
        "namespace": namespace_of(name),
        "arn": f"arn:aws:ecr:{region}:{account}:repository/{name}",
        "uri": f"{account}.dkr.ecr.{region}.amazonaws.com/{name}",
        "created_at": _ago(now, created_days_ago),
        "tag_mutability": tag_mutability,
        "tag_mutability_exclusions": list(tag_mutability_exclusions),
        "scan_on_push": scan_on_push,
        "registry_scan_frequency": registry_scan_frequency,
        "encryption": encryption,
        "kms_key": kms_key,
        "lifecycle_policy": lifecycle_policy,
        "repository_policy": repository_policy,
        "resource_tags": dict(resource_tags or {}),
        "scan_error": scan_error,
    }


def ecr_default_repository(name: str, **fields: Any) -> dict[str, Any]:
    """:func:`repository_row` with the settings ECR (and moto) give a new repository."""
    defaults: dict[str, Any] = {
        "tag_mutability": "MUTABLE",
        "scan_on_push": False,
        "encryption": "AES256",
        "kms_key": None,
        "lifecycle_policy": None,
    }
    return repository_row(name, **{**defaults, **fields})


# --------------------------------------------------------------------------- inventories


def images_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The typed images frame of ``rows`` (plus ``archived_at`` when a row has one)."""
    rows = list(rows)
    frame = build_images(rows)
    if any("archived_at" in row for row in rows):
        frame["archived_at"] = pd.to_datetime([row.get("archived_at") for row in rows], utc=True)
    return frame


def inventory(
    images: Iterable[Mapping[str, Any]] = (),
    repositories: Iterable[Mapping[str, Any]] = (),
    *,
    now: datetime = NOW,
    run: RunInfo | None = None,
) -> Inventory:
    """An inventory of image and repository rows.

    A repository an image names but ``repositories`` does not list gets a default
    :func:`repository_row`. ``run`` defaults to a complete run started at ``now``.
    """
    images = list(images)
    repos = {(r["account"], r["region"], r["name"]): r for r in repositories}
    for row in images:
        key = (row["account"], row["region"], row["repository"])
        if key not in repos:
            repos[key] = repository_row(key[2], account=key[0], region=key[1], now=now)
    frame = images_frame(images)
    return Inventory(
        images=frame,
        repositories=build_repositories(list(repos.values()), frame),
        run=run if run is not None else RunInfo(id="test", started_at=now),
    )


def inventory_of(
    images: Iterable[Mapping[str, Any]] = (),
    repositories: Iterable[Mapping[str, Any]] = (),
    *,
    now: datetime = NOW,
    run: RunInfo | None = None,
    in_use: Iterable[Mapping[str, Any]] = (),
) -> Inventory:
    """:func:`inventory` from keyword rows, the format of the YAML cases: each image
    mapping is ``image_row(**row)``, each repository mapping ``repository_row(**row)``;
    ``in_use``: references as the workloads report them (``source``, ``where``,
    ``repository``, ``tag``, ``digest`` (an alias), optionally ``account``/``region``)."""
    built = inventory(
        [image_row(**row, now=now) for row in images],
        [repository_row(**row, now=now) for row in repositories],
        now=now,
        run=run,
    )
    uses = [
        {
            "source": "ecs",
            "where": "prod/service/api",
            "account": None,
            "region": None,
            "tag": None,
            "running": False,
            **use,
            "digest": digest_of(str(use["digest"])) if use.get("digest") else None,
        }
        for use in in_use
    ]
    if uses:
        from hygiene.inventory import build_in_use

        built.in_use = build_in_use(uses)
    return built


def seeded_inventory(manifest: Any, *, run_id: str = "test", now: datetime = NOW) -> Inventory:
    """What a scan reads from a registry seeded with ``manifest`` (a hygiene_demo seed
    manifest, e.g. ``plan_lab_registry(projects, now)``), built without a server."""
    run = RunInfo(id=run_id, started_at=now)
    return inventory(manifest.image_records(), manifest.repository_records(), now=now, run=run)


# --------------------------------------------------------------------------- config


def config(policy: Mapping[str, Any] | None = None, projects: Iterable[str] = PROJECTS) -> Config:
    """A config of ``policy`` (a ``default.yaml`` mapping; empty: every default) and the
    registered ``projects`` (one owner each), without reading rules/."""
    return Config(
        policy=Policy.model_validate(dict(policy or {})),
        projects=ProjectsRegistry(
            projects={p: Project(owners=[f"owner.{p}@lsd.ufcg.edu.br"]) for p in projects}
        ),
    )


@cache
def _shipped_policy() -> dict[str, Any]:
    return dict(yaml.safe_load((RULES_DIR / "default.yaml").read_text(encoding="utf-8")))


def shipped_policy() -> dict[str, Any]:
    """rules/default.yaml as data (a fresh copy: change it freely)."""
    return copy.deepcopy(_shipped_policy())


def write_rules(directory: Path, policy: Mapping[str, Any]) -> Path:
    """A rules directory like rules/ whose default.yaml is ``policy`` (dumped as YAML,
    sections in their order): tests change the shipped policy as data, never as text,
    so reordering or reformatting rules/default.yaml breaks none of them."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in RULES_DIR.iterdir():
        if path.is_file() and path.name != "default.yaml":
            shutil.copy(path, directory / path.name)
    text = yaml.safe_dump(dict(policy), sort_keys=False, allow_unicode=True)
    (directory / "default.yaml").write_text(text, encoding="utf-8")
    return directory


# --------------------------------------------------------------------------- findings


def finding(
    code: str = "IM002",
    repository: str | None = REPOSITORY,
    *,
    digest: str | None = None,
    unit: Sequence[str] | None = None,
    tags: Sequence[str] = (),
    bytes: int = 0,
    details: Mapping[str, Any] | None = None,
    message: str | Message | None = None,
    fix: str = "",
    rule: str | None = None,
    severity: Severity | None = None,
    fix_safety: FixSafety | None = None,
    account: str = ACCOUNT,
    region: str = REGION,
    namespace: str | None = _DERIVED,
) -> Finding:
    """A finding of rule ``code``; ``rule``, ``severity`` and ``fix_safety`` default to the
    catalogue's (an unknown code: its lower-case, warning, unsafe).

    ``digest`` and ``unit`` are aliases or digests; ``unit`` goes to
    ``details["unit"]`` (the digests deleted together), as the rules engine puts it.
    ``namespace`` defaults to the repository's. ``message`` may be a :class:`Message` (a
    rule's template and parameters), as the rules engine gives it.
    """
    known = RULES.get(code)
    template, params = "", {}
    if isinstance(message, Message):
        template, params = message.template, dict(message.params)
        message = message.render()
    extra = dict(details or {})
    if unit is not None:
        extra["unit"] = [digest_of(d) for d in unit]
    image = digest_of(digest) if digest is not None else None
    return Finding(
        code=code,
        rule=rule or (known.name if known else code.lower()),
        severity=severity or (known.severity if known else Severity.WARNING),
        account=account,
        region=region,
        repository=repository,
        namespace=(namespace_of(repository or "") if namespace is _DERIVED else namespace),
        message=code if message is None else message,
        fix=fix,
        fix_safety=fix_safety or (known.fix_safety if known else FixSafety.UNSAFE),
        image_digest=image,
        tags=tuple(tags),
        bytes=bytes,
        details=extra,
        message_template=template,
        message_params=params,
    )


def evaluation(findings: Iterable[Finding]) -> Evaluation:
    """What :func:`hygiene.rules.evaluate` returns, for hand-made findings (nothing kept)."""
    return Evaluation(findings=list(findings), kept=[], mute_warnings=[])


# --------------------------------------------------------------------------- proposals


def proposal(
    action: Action = Action.DELETE_IMAGES,
    repository: str = REPOSITORY,
    *,
    digests: Sequence[str] = (),
    target: Mapping[str, Any] | None = None,
    evidence: Mapping[str, Any] | None = None,
    rule_codes: Sequence[str] = ("IM002",),
    fix_safety: FixSafety = FixSafety.UNSAFE,
    bytes: int = 0,
    summary: str = "",
    state: ProposalState = ProposalState.PROPOSED,
    first_seen: datetime | None = None,
    grace_until: datetime | None = None,
    account: str = ACCOUNT,
    region: str = REGION,
    namespace: str | None = _DERIVED,
    id: str | None = None,
) -> Proposal:
    """A proposal; ``digests`` (aliases or digests) give a ``delete-images`` target.

    ``target`` defaults to ``{"digests": [...]}`` with ``digests`` (else empty);
    ``evidence`` to the digests with no tags and the rule codes. ``id`` defaults to the
    id :mod:`hygiene.plan` would give: account, region and repository are part of it.
    """
    full = [digest_of(d) for d in digests]
    target = dict(target) if target is not None else ({"digests": full} if full else {})
    if evidence is None:
        evidence = {"images": [{"digest": d, "tags": []} for d in full]} if full else {}
        evidence = {**evidence, "rule_codes": list(rule_codes)}
    identity = {"account": account, "region": region, "repository": repository}
    return Proposal(
        id=id or proposal_id(action, {**identity, **target}, dict(evidence)),
        action=action,
        account=account,
        region=region,
        repository=repository,
        namespace=namespace_of(repository) if namespace is _DERIVED else namespace,
        target=target,
        evidence=dict(evidence),
        rule_codes=tuple(rule_codes),
        fix_safety=fix_safety,
        bytes=bytes,
        summary=summary,
        state=state,
        first_seen=first_seen,
        grace_until=grace_until,
    )


# --------------------------------------------------------------------------- scans


def coverage(
    proposals: Iterable[Proposal] = (),
    *,
    at: datetime = NOW,
    run_id: str = "scan",
    complete: Iterable[tuple[str, str, str]] = (),
    incomplete: Mapping[tuple[str, str, str], str] | None = None,
    incomplete_regions: Mapping[tuple[str, str], str] | None = None,
) -> ScanCoverage:
    """A scan's coverage: the repositories of ``proposals`` (and ``complete``) read whole,
    ``incomplete`` ones not (→ why), ``incomplete_regions`` ((account or ``*``, region)
    → why) not even listed. Passed to ``upsert_proposals`` it confirms the proposals of
    the complete repositories, as a nightly scan does."""
    keys = {(p.account, p.region, p.repository) for p in proposals} | set(complete)
    bad = dict(incomplete or {})
    return ScanCoverage(
        run_id=run_id,
        scanned_at=at,
        complete=frozenset(keys - set(bad)),
        incomplete=bad,
        incomplete_regions=dict(incomplete_regions or {}),
    )


def store_proposals(store: Any, proposals: Sequence[Proposal], now: datetime = NOW) -> None:
    """Store ``proposals`` as a complete scan at ``now`` proposes them (confirmed)."""
    store.upsert_proposals(proposals, now, coverage=coverage(proposals, at=now))


# --------------------------------------------------------------------------- trust


def deployed(store: Any, config: Config) -> Any:
    """Pin ``config``'s trust policy in ``store``, as the scheduled job does on every run:
    approvals are then checked against it, and apply accepts ``config``."""
    store.pin_trust(TrustPolicy.from_config(config))
    return store
