"""Run every configured in-use source and say how each went.

The sources, per account (this one, plus each role in ``in_use.assume_roles``) and
region (``in_use.regions``, default ``registry.regions``): ECS (with EventBridge scheduled
tasks), Lambda and Batch as listed in ``in_use.aws_sources``; then each Kubernetes
context in ``in_use.kubernetes.contexts``; then ``protections.in_use_images_file``.

Each source ends ``ok``, ``failed`` (denied, throttled beyond botocore's retries,
unreachable, a role that cannot be assumed) or ``not-configured``. One failed source makes
the discovery incomplete, and an incomplete discovery must not feed any image deletion
(:attr:`Discovery.complete`).

``running_only=True`` is apply's re-read right before it deletes: only what changes
fast (ECS running tasks, Kubernetes pods) plus the in-use file, which costs nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config as BotoConfig

from hygiene.collect.timestamps import new_session
from hygiene.collect.workloads import batch, ecs, file, kubernetes, lambda_
from hygiene.collect.workloads.base import (
    AWS_ERRORS,
    SourceError,
    SourceResult,
    SourceStatus,
    aws_error,
)
from hygiene.collect.workloads.references import ImageUse

if TYPE_CHECKING:
    from hygiene.config import CollectSettings, InUseSettings

log = logging.getLogger(__name__)

AWS_SOURCES = ("ecs", "lambda", "batch")
ROLE_SESSION_NAME = "registry-hygiene-discovery"
MAX_WORKERS = 8


@dataclass
class Discovery:
    """Every reference found, and the state of every source (consulted or not)."""

    uses: list[ImageUse] = field(default_factory=list)
    statuses: list[SourceStatus] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)  # Kubernetes calls (AWS: counter)
    # failed sources whose read was refused: status name → the AWS error code
    # (AccessDenied…: IAM) or Forbidden (a Kubernetes 403: RBAC)
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[SourceStatus]:
        return [s for s in self.statuses if s.state == "failed"]

    @property
    def complete(self) -> bool:
        """True when every configured source was read completely."""
        return not self.failed


@dataclass(frozen=True)
class AwsAccount:
    """Credentials for one account's workloads: this one, a registry account's scanner
    role (``registry.accounts``), or a role of ``in_use.assume_roles``."""

    label: str  # "" for the scanner's own account, else the account id
    session: boto3.Session | None  # None: the role could not be assumed
    error: str = ""
    regions: tuple[str, ...] = ()  # empty: the discovery's regions
    refused_code: str | None = None  # IAM refused assuming the role (AccessDenied…)


Job = Callable[[], SourceResult]

# the clients each AWS source reads with (ECS: its scheduled tasks through EventBridge)
SOURCE_SERVICES = {"ecs": ("ecs", "events"), "lambda": ("lambda",), "batch": ("batch",)}


@dataclass(frozen=True)
class PreparedClients:
    """The AWS sources' clients of the scanner's own account, made ahead of
    :func:`discover` (a scan makes them while the registry is read: making a client loads
    its service's model, about 0.05 s for the four). They are the clients ``discover``
    would make (same session, regions, endpoint and configuration); it uses each at most
    once, and only when it is called with the same session, settings and endpoint."""

    session: boto3.Session
    settings: InUseSettings
    collect: CollectSettings
    endpoint_url: str | None
    clients: dict[tuple[str, str], Any]  # (service, region) → client

    def take(self, session: boto3.Session, service: str, region: str) -> Any | None:
        if session is not self.session:
            return None
        return self.clients.pop((service, region), None)


def prepare_clients(
    session: boto3.Session,
    settings: InUseSettings,
    collect: CollectSettings,
    *,
    regions: list[str],
    endpoint_url: str | None = None,
) -> PreparedClients:
    """The clients :func:`discover` makes for ``session``'s own account's AWS sources,
    made now. The caller makes sure nothing else builds clients from ``session``
    meanwhile (a boto3 session must not build clients from several threads at once)."""
    config = _client_config(collect)
    clients = {
        (service, region): session.client(
            service, region_name=region, endpoint_url=endpoint_url, config=config
        )
        for region in list(settings.regions) or list(regions)
        for source in AWS_SOURCES
        if source in settings.aws_sources
        for service in SOURCE_SERVICES[source]
    }
    return PreparedClients(session, settings, collect, endpoint_url, clients)


def _client_config(settings: CollectSettings) -> BotoConfig:
    return BotoConfig(
        retries={"mode": settings.retry_mode, "max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        user_agent_extra="registry-hygiene",
    )


def assume_role(
    sts: Any, role_arn: str, *, attach: Callable[[boto3.Session], None] | None = None
) -> AwsAccount:
    """A session with the role's temporary credentials (``sts`` is the scanner's client)."""
    parts = role_arn.split(":")
    account = parts[4] if len(parts) > 4 and parts[4] else role_arn
    try:
        credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=ROLE_SESSION_NAME)[
            "Credentials"
        ]
    except AWS_ERRORS as exc:
        error = aws_error("AssumeRole", exc)
        return AwsAccount(account, None, f"{role_arn}: {error}", refused_code=error.refused_code)
    assumed = new_session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    if attach is not None:
        attach(assumed)
    return AwsAccount(account, assumed)


def _aws_job(
    source: str,
    session: boto3.Session,
    region: str,
    prefix: str,
    *,
    endpoint_url: str | None,
    config: BotoConfig,
    running_only: bool,
    prepared: PreparedClients | None = None,
) -> Job:
    """The source's reader, its clients built here, in the calling thread (a boto3
    session must not build clients from several threads at once; clients themselves are
    thread-safe), or taken from ``prepared``."""

    def client(service: str) -> Any:
        made = prepared.take(session, service, region) if prepared is not None else None
        if made is not None:
            return made
        return session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)

    if source == "ecs":
        ecs_client = client("ecs")
        events = None if running_only else client("events")
        return lambda: ecs.read_ecs(ecs_client, events, prefix=prefix, running_only=running_only)
    if source == "lambda":
        lambda_client = client("lambda")
        return lambda: lambda_.read_lambda(lambda_client, prefix=prefix)
    batch_client = client("batch")
    return lambda: batch.read_batch(batch_client, prefix=prefix)


def discover(
    session: boto3.Session | None,
    settings: InUseSettings,
    collect: CollectSettings,
    *,
    regions: list[str],
    in_use_file: Path | None = None,
    endpoint_url: str | None = None,
    attach: Callable[[boto3.Session], None] | None = None,
    running_only: bool = False,
    sts: Any = None,
    accounts: Sequence[AwsAccount] | None = None,
    prepared: PreparedClients | None = None,
) -> Discovery:
    """Read every configured source (concurrently) into one :class:`Discovery`.

    ``session`` is the scanner's boto3 session (None: no AWS source is read and each is
    reported failed — the caller could not build one). ``attach`` registers the API call
    counter on sessions made here (assumed roles); ``sts`` is the STS client that assumes
    them (default: one from ``session``). ``accounts`` replaces the scanner's own account
    (with several registry accounts: each one's scanner role, in its regions); the roles
    of ``in_use.assume_roles`` are added either way. ``prepared``: clients made ahead
    (:func:`prepare_clients`), used when made with the same settings and endpoint. Never
    raises for a source's failure: it is recorded in the source's status.
    """
    regions = list(settings.regions) or list(regions)
    config = _client_config(collect)
    if prepared is not None and (
        prepared.settings != settings
        or prepared.collect != collect
        or prepared.endpoint_url != endpoint_url
    ):
        prepared = None
    names: list[tuple[str, str]] = []  # (status name, source) in report order
    owners: dict[str, str] = {}  # status name → the workloads' account (other accounts)
    jobs: dict[str, Job] = {}
    preset: dict[str, SourceStatus] = {}
    refused: dict[str, str] = {}  # status name → the code IAM refused it with
    aws_sources = [s for s in AWS_SOURCES if s in settings.aws_sources]
    if running_only:
        aws_sources = [s for s in aws_sources if s == "ecs"]

    if aws_sources:
        accounts = list(accounts) if accounts is not None else [AwsAccount("", session)]
        if settings.assume_roles and sts is None and session is not None:
            sts = session.client("sts", endpoint_url=endpoint_url, config=config)
        for role in settings.assume_roles:
            if sts is None:
                accounts.append(AwsAccount(role.split(":")[4], None, "no AWS session"))
                continue
            accounts.append(assume_role(sts, role, attach=attach))
        many_regions = len({r for a in accounts for r in (a.regions or regions)}) > 1
        for account in accounts:
            for region in settings.regions or account.regions or regions:
                place = f"{account.label}/{region}" if account.label else region
                prefix = "".join(
                    f"{part}/" for part in (account.label, region if many_regions else "") if part
                )
                for source in aws_sources:
                    name = f"{source} {place}"
                    names.append((name, source))
                    if account.label:
                        owners[name] = account.label
                    if account.session is None:
                        why = account.error or "no AWS session"
                        preset[name] = SourceStatus(
                            name, source, "failed", why, account=account.label or None
                        )
                        if account.refused_code:
                            refused[name] = account.refused_code
                        continue
                    jobs[name] = _aws_job(
                        source,
                        account.session,
                        region,
                        prefix,
                        endpoint_url=endpoint_url,
                        config=config,
                        running_only=running_only,
                        prepared=prepared,
                    )
    for unread in AWS_SOURCES:
        if unread not in settings.aws_sources and not running_only:
            names.append((unread, unread))
            preset[unread] = SourceStatus(unread, unread, "not-configured", "in_use.aws_sources")

    k8s = settings.kubernetes
    for context in k8s.contexts:
        name = f"kubernetes {context}"
        names.append((name, "kubernetes"))
        target = kubernetes.KubernetesTarget(
            context=context,
            kubeconfig=k8s.kubeconfig,
            namespaces=tuple(k8s.namespaces),
            connect_timeout=k8s.connect_timeout,
            read_timeout=k8s.read_timeout,
            page_size=k8s.page_size,
        )
        jobs[name] = _kubernetes_job(target, running_only)
    if not k8s.contexts and not running_only:
        names.append(("kubernetes", "kubernetes"))
        preset["kubernetes"] = SourceStatus(
            "kubernetes", "kubernetes", "not-configured", "in_use.kubernetes.contexts"
        )

    if in_use_file is not None:
        name = f"file {in_use_file.name}"
        names.append((name, "file"))
        path = in_use_file
        jobs[name] = lambda: file.read_file(path)
    elif not running_only:
        names.append(("file", "file"))
        preset["file"] = SourceStatus(
            "file", "file", "not-configured", "protections.in_use_images_file"
        )

    discovery = Discovery(refused=refused)
    results: dict[str, SourceResult | SourceError] = {}
    if jobs:
        with ThreadPoolExecutor(
            max_workers=min(MAX_WORKERS, len(jobs)), thread_name_prefix="in-use"
        ) as pool:
            futures = {name: pool.submit(_guarded, job) for name, job in jobs.items()}
            results = {name: future.result() for name, future in futures.items()}
    for name, kind in names:
        if name in preset:
            discovery.statuses.append(preset[name])
            continue
        outcome = results[name]
        if isinstance(outcome, SourceError):
            log.warning("in-use source %s could not be read: %s", name, outcome)
            discovery.statuses.append(
                SourceStatus(name, kind, "failed", str(outcome), account=owners.get(name))
            )
            if outcome.refused_code:
                discovery.refused[name] = outcome.refused_code
            continue
        uses = list(dict.fromkeys(outcome.uses))  # a pod's spec and status repeat images
        discovery.uses += uses
        discovery.calls.update(outcome.calls)
        discovery.statuses.append(
            SourceStatus(name, kind, "ok", references=len(uses), account=owners.get(name))
        )
    return discovery


def _kubernetes_job(target: kubernetes.KubernetesTarget, running_only: bool) -> Job:
    return lambda: kubernetes.read_kubernetes(target, running_only=running_only)


def _guarded(job: Job) -> SourceResult | SourceError:
    """Run a source; its :class:`SourceError` becomes a value (the pool must not lose it).

    Anything else is a bug and propagates.
    """
    try:
        return job()
    except SourceError as exc:
        return exc
