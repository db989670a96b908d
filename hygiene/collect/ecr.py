"""The collector: every repository and image of the registry, read into the inventory.

All I/O of a scan happens here; it returns plain records that
:mod:`hygiene.inventory` types. Per repository it costs
``ceil(images/1000)`` DescribeImages pages, ``ceil(manifests_to_read/100)`` BatchGetImage
calls in at most two rounds (indexes and non-image artifacts without
``subjectManifestDigest``; then untagged images no index lists, and children an index
lists without a ``platform``, whose manifest may name a ``subject``), and one call each
for the lifecycle policy, repository policy and resource tags (none of which are in
DescribeRepositories).

Safety rule: a repository that cannot be read completely (an error after botocore's own
retries and after the later passes that read failed repositories again, an index whose
manifest cannot be read) is recorded with ``scan_error`` and its images are dropped, and
the run is marked incomplete. It is never reported as an empty repository, and an
incomplete run never feeds apply. A repository read again in a later pass is read whole,
from the start: nothing of a failed read is kept.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from hygiene.collect.scanconfig import registry_scan_rules, scan_frequency_for
from hygiene.config import CollectSettings
from hygiene.errors import CollectError
from hygiene.imageframes import ImageFrames
from hygiene.inventory import (
    IMAGE_DTYPES,
    INDEX_MEDIA_TYPES,
    Inventory,
    RunInfo,
    ScanError,
    build_repositories,
    namespace_of,
)

if TYPE_CHECKING:
    from hygiene.collect.shards import Shard

log = logging.getLogger(__name__)

BATCH_GET_LIMIT = 100
ACCEPTED_MEDIA_TYPES = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
]
# Config media types of ordinary container images: ECR reports them as artifactMediaType
# on every image, so only *other* artifact types can be referrers whose subject we need.
IMAGE_CONFIG_MEDIA_TYPES = frozenset(
    {
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    }
)
# Errors that mean "this registry cannot be read at all": fail the command, do not
# pretend the region is merely incomplete.
FATAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "AccessDeniedException",
    }
)


class RepositoryReadError(Exception):
    """A repository could not be read completely (wraps the operation that failed)."""

    def __init__(self, operation: str, message: str) -> None:
        super().__init__(f"{operation}: {message}")
        self.operation = operation
        self.message = message


@dataclass
class RepositoryData:
    record: dict[str, Any]
    images: list[dict[str, Any]]


ProgressCallback = Callable[[str, int, int], None]  # (repository, done, total)


def fixed_client(client: Any) -> Callable[[], Any]:
    """``ScanTarget.open`` for a client that is already made."""
    return lambda: client


@dataclass
class ScanTarget:
    """One account and region to read. ``open`` returns its ECR client; it raises a
    botocore error when the account cannot be opened (its role cannot be assumed).
    ``account`` is None for the tool's own credentials' account (no ``registry.accounts``),
    whose id ECR gives in every answer."""

    account: str | None
    region: str
    open: Callable[[], Any]
    # a new client for the same account and region (its own retry quota), for the
    # repositories read again in a later pass; None: they reuse ``open()``'s client
    fresh: Callable[[], Any] | None = None


def new_run_id(now: datetime) -> str:
    return f"r-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _error_text(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        return str(error.get("Code", "ClientError")), str(error.get("Message", exc))
    return type(exc).__name__, str(exc)


# --------------------------------------------------------------------------- repositories


def list_repositories(client: Any, page_size: int) -> list[dict[str, Any]]:
    paginator = client.get_paginator("describe_repositories")
    repositories: list[dict[str, Any]] = []
    for page in paginator.paginate(PaginationConfig={"PageSize": page_size}):
        repositories.extend(page.get("repositories", []))
    return repositories


def _optional_text(call: Callable[[], Mapping[str, Any]], key: str, missing: str) -> str | None:
    """Call a Get*Policy operation; the documented 'not found' error means 'none'."""
    try:
        return str(call()[key])
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == missing:
            return None
        raise


def _repository_record(repo: Mapping[str, Any], region: str) -> dict[str, Any]:
    name = repo["repositoryName"]
    encryption = repo.get("encryptionConfiguration") or {}
    exclusions = repo.get("imageTagMutabilityExclusionFilters") or []
    return {
        "account": repo.get("registryId"),
        "region": region,
        "name": name,
        "namespace": namespace_of(name),
        "arn": repo.get("repositoryArn"),
        "uri": repo.get("repositoryUri"),
        "created_at": repo.get("createdAt"),
        "tag_mutability": repo.get("imageTagMutability", "MUTABLE"),
        "tag_mutability_exclusions": [f.get("filter", "") for f in exclusions],
        "scan_on_push": bool((repo.get("imageScanningConfiguration") or {}).get("scanOnPush")),
        "encryption": encryption.get("encryptionType", "AES256"),
        "kms_key": encryption.get("kmsKey"),
    }


# --------------------------------------------------------------------------- images


def _registry(registry_id: str | None) -> dict[str, str]:
    """The ``registryId`` argument: none (the credentials' own registry, as a scan reads
    it) or the registry named, as apply's re-read does (it reads where it deletes)."""
    return {"registryId": registry_id} if registry_id else {}


def list_images(
    client: Any, repository: str, page_size: int, registry_id: str | None = None
) -> list[dict[str, Any]]:
    paginator = client.get_paginator("describe_images")
    details: list[dict[str, Any]] = []
    for page in paginator.paginate(
        **_registry(registry_id),
        repositoryName=repository,
        filter={"tagStatus": "ANY", "imageStatus": "ANY"},
        PaginationConfig={"PageSize": page_size},
    ):
        details.extend(page.get("imageDetails", []))
    return details


def read_manifests(
    client: Any, repository: str, digests: list[str], registry_id: str | None = None
) -> dict[str, dict[str, Any]]:
    """Parsed manifests by digest, ≤100 ids per BatchGetImage call.

    Any per-image failure raises: without an index's manifest we cannot know its
    children, and an unlisted child looks like a deletable untagged image.
    """
    manifests: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(digests)), BATCH_GET_LIMIT):
        response = client.batch_get_image(
            **_registry(registry_id),
            repositoryName=repository,
            imageIds=[{"imageDigest": d} for d in chunk],
            acceptedMediaTypes=ACCEPTED_MEDIA_TYPES,
        )
        for image in response.get("images", []):
            digest = image["imageId"]["imageDigest"]
            try:
                manifests[digest] = json.loads(image["imageManifest"])
            except (KeyError, ValueError) as exc:
                raise RepositoryReadError(
                    "BatchGetImage", f"manifest of {digest} is not JSON: {exc}"
                ) from exc
        failures = response.get("failures", [])
        if failures:
            first = failures[0]
            raise RepositoryReadError(
                "BatchGetImage",
                f"{len(failures)} manifest(s) unreadable, e.g. "
                f"{first.get('imageId', {}).get('imageDigest')}: {first.get('failureCode')} "
                f"{first.get('failureReason', '')}".strip(),
            )
    return manifests


def _image_record(detail: Mapping[str, Any], region: str, account: str) -> dict[str, Any]:
    repository = detail["repositoryName"]
    return {
        "account": detail.get("registryId", account),
        "region": region,
        "repository": repository,
        "namespace": namespace_of(repository),
        "digest": detail["imageDigest"],
        "tags": list(detail.get("imageTags") or []),
        "pushed_at": detail.get("imagePushedAt"),
        "last_pull": detail.get("lastRecordedPullTime"),
        "size_bytes": int(detail.get("imageSizeInBytes") or 0),
        "manifest_media_type": detail.get("imageManifestMediaType"),
        "artifact_media_type": detail.get("artifactMediaType"),
        "status": detail.get("imageStatus", "ACTIVE"),
        "subject_digest": detail.get("subjectManifestDigest"),
        "child_digests": [],
    }


def _read_links(
    client: Any, repository: str, images: list[dict[str, Any]], registry_id: str | None = None
) -> None:
    """Fill ``child_digests`` and ``subject_digest`` from the manifests that decide them.

    First the indexes (their children are known only from the index manifest) and the
    artifacts ECR types as non-images without a subject; then every *untagged* image
    that no index lists and that still has no subject: a referrer whose ECR metadata is
    absent (pushed before ECR's OCI 1.1 support, an ordinary image config type, a copy
    made by another tool) looks exactly like an untagged image, and only its manifest's
    ``subject`` tells (docs/ecr-facts.md, "Multi-arch images, attestations,
    signatures"). Tagged images and platform manifests are never deletion candidates on
    their own, so their manifests are not read. A child an index lists *without* a
    ``platform`` is read too: that is how an index of the OCI referrers tag schema lists
    an image's signatures, and such an index, once its tag moved on, is an untagged
    index whose unit would otherwise take a present image's signature along.
    """
    first = [
        img["digest"]
        for img in images
        if img["manifest_media_type"] in INDEX_MEDIA_TYPES
        or (
            img["artifact_media_type"]
            and img["artifact_media_type"] not in IMAGE_CONFIG_MEDIA_TYPES
            and not img["subject_digest"]
        )
    ]
    manifests = read_manifests(client, repository, first, registry_id) if first else {}
    _link(images, manifests)
    children = {child for img in images for child in img["child_digests"]}
    unplatformed = {
        str(entry.get("digest"))
        for manifest in manifests.values()
        for entry in manifest.get("manifests", []) or []
        if isinstance(entry, Mapping) and not entry.get("platform")
    }
    second = [
        img["digest"]
        for img in images
        if not img["tags"]
        and not img["subject_digest"]
        and (img["digest"] not in children or img["digest"] in unplatformed)
        and img["digest"] not in manifests
    ]
    if second:
        _link(images, read_manifests(client, repository, second, registry_id))


def _link(images: list[dict[str, Any]], manifests: Mapping[str, Mapping[str, Any]]) -> None:
    for img in images:
        manifest = manifests.get(img["digest"])
        if manifest is None:
            continue
        if img["manifest_media_type"] in INDEX_MEDIA_TYPES:
            img["child_digests"] = [m["digest"] for m in manifest.get("manifests", [])]
        subject = (manifest.get("subject") or {}).get("digest")
        if subject and not img["subject_digest"]:
            img["subject_digest"] = str(subject)


def collect_repository(
    client: Any,
    repo: Mapping[str, Any],
    region: str,
    settings: CollectSettings,
    registry_id: str | None = None,
) -> RepositoryData:
    """Everything about one repository; raises RepositoryReadError on any failure.

    ``registry_id``: read that registry's repository (apply's re-read, which must read the
    registry it deletes from); None reads the credentials' own registry (a scan)."""
    name = repo["repositoryName"]
    record = _repository_record(repo, region)
    where = _registry(registry_id)
    step = "DescribeImages"
    try:
        details = list_images(client, name, settings.page_size, registry_id)
        images = [_image_record(d, region, record["account"]) for d in details]
        step = "BatchGetImage"
        _read_links(client, name, images, registry_id)
        step = "GetLifecyclePolicy"
        record["lifecycle_policy"] = _optional_text(
            lambda: client.get_lifecycle_policy(**where, repositoryName=name),
            "lifecyclePolicyText",
            "LifecyclePolicyNotFoundException",
        )
        step = "GetRepositoryPolicy"
        record["repository_policy"] = _optional_text(
            lambda: client.get_repository_policy(**where, repositoryName=name),
            "policyText",
            "RepositoryPolicyNotFoundException",
        )
        step = "ListTagsForResource"
        tags = client.list_tags_for_resource(resourceArn=record["arn"]).get("tags", [])
        record["resource_tags"] = {t["Key"]: t["Value"] for t in tags}
    except RepositoryReadError:
        raise
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        code, message = _error_text(exc)
        raise RepositoryReadError(step, f"{code}: {message}") from exc
    return RepositoryData(record=record, images=images)


# --------------------------------------------------------------------------- the scan


def collect_region(
    client: Any,
    region: str,
    settings: CollectSettings,
    run: RunInfo,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    *,
    account: str | None = None,
    shard: Shard | None = None,
    fresh_client: Callable[[], Any] | None = None,
    on_read: Callable[[int, RepositoryData], None],
) -> tuple[list[dict[str, Any]], list[int]]:
    """All repositories of one region (of ``shard``'s share), read by a bounded pool: their
    records and the listing numbers of those read completely, by name; ``on_read(i, data)``
    as each read succeeds (in this thread). ``account`` goes on every :class:`ScanError`.

    Every worker of the first pass uses ``client``. A repository whose read failed is
    read again after the pool has drained, up to ``settings.read_passes`` passes in all,
    after a backoff; in those passes each read gets its own client from ``fresh_client``
    (a fresh botocore retry quota: under sustained faults the shared one runs out long
    before ``max_attempts``, docs/ecr-facts.md "Rate limits and retries").

    When ``stop`` is set (SIGTERM), repositories not yet started are cancelled and each
    is recorded as a ``stop`` error: the run is incomplete, never silently short.
    """
    try:
        repositories = list_repositories(client, settings.page_size)
    except botocore.exceptions.NoCredentialsError as exc:
        raise CollectError(
            "no AWS credentials found: run `aws sso login` and pass --profile NAME"
        ) from exc
    except botocore.exceptions.EndpointConnectionError as exc:
        raise CollectError(f"region {region}: cannot reach the ECR endpoint: {exc}") from exc
    except botocore.exceptions.ClientError as exc:
        code, message = _error_text(exc)
        if code in FATAL_CODES:
            raise CollectError(f"region {region}: DescribeRepositories: {code}: {message}") from exc
        run.errors.append(
            ScanError(region, None, "DescribeRepositories", f"{code}: {message}", account)
        )
        return [], []
    registry_id = account or next((str(r["registryId"]) for r in repositories), "")
    run.scopes.append((registry_id, region))
    if shard is not None:
        repositories = [
            r
            for r in repositories
            if shard.owns(str(r.get("registryId") or registry_id), region, r["repositoryName"])
        ]

    try:
        scan_rules = registry_scan_rules(client)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        code, message = _error_text(exc)
        run.errors.append(
            ScanError(
                region, None, "GetRegistryScanningConfiguration", f"{code}: {message}", account
            )
        )
        scan_rules = []

    read: dict[int, RepositoryData] = {}
    failed: dict[int, RepositoryReadError] = {}
    pending = list(range(len(repositories)))
    for number in range(1, settings.read_passes + 1):
        if number > 1:
            retry = [i for i in pending if failed[i].operation != "stop"]
            if not retry or (stop is not None and stop.is_set()):
                break
            delay = pass_delay(settings.pass_backoff_seconds, number)
            log.warning(
                "%s: reading %d repositories again (pass %d of %d) in %.1f s",
                region,
                len(retry),
                number,
                settings.read_passes,
                delay,
            )
            if stop is not None and stop.wait(delay):
                break
            if stop is None:
                time.sleep(delay)
            pending = retry
        clients = (lambda: client) if number == 1 or fresh_client is None else fresh_client
        pending = _read_pass(
            [(i, repositories[i]) for i in pending],
            clients,
            region,
            settings,
            read,
            failed,
            progress if number == 1 else None,
            stop,
            on_read,
        )

    records: list[dict[str, Any]] = []
    complete: list[int] = []
    for i in sorted(range(len(repositories)), key=lambda i: repositories[i]["repositoryName"]):
        repo = repositories[i]
        if i in read:
            records.append(read[i].record)
            complete.append(i)
            continue
        error = failed[i]
        name = repo["repositoryName"]
        log.warning("repository %s (%s) incomplete: %s", name, region, error)
        run.errors.append(ScanError(region, name, error.operation, error.message, account))
        record = _repository_record(repo, region)
        record["scan_error"] = f"{error.operation}: {error.message}"
        records.append(record)
    for record in records:
        record["registry_scan_frequency"] = scan_frequency_for(record["name"], scan_rules)
    return records, complete


def pass_delay(base: float, number: int) -> float:
    """Seconds to wait before pass ``number`` (2, 3 …): ``base`` doubled for each pass
    after the second, capped at five minutes, with jitter (half to all of it) so that
    shards started together do not come back together."""
    return min(base * 2 ** (number - 2), 300.0) * (0.5 + random.random() / 2)


def _read_pass(
    repositories: list[tuple[int, Mapping[str, Any]]],
    client_for: Callable[[], Any],
    region: str,
    settings: CollectSettings,
    read: dict[int, RepositoryData],
    failed: dict[int, RepositoryReadError],
    progress: ProgressCallback | None,
    stop: threading.Event | None,
    on_read: Callable[[int, RepositoryData], None],
) -> list[int]:
    """Read ``repositories`` with a bounded pool; returns the indexes that failed."""

    def read_one(repo: Mapping[str, Any]) -> RepositoryData:
        if stop is not None and stop.is_set():
            raise RepositoryReadError("stop", "not read: the run was asked to stop")
        return collect_repository(client_for(), repo, region, settings)

    workers = max(1, min(settings.max_workers, len(repositories)))
    still_failed = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collect") as pool:
        futures = {pool.submit(read_one, repo): (i, repo) for i, repo in repositories}
        for done, future in enumerate(as_completed(futures), start=1):
            i, repo = futures[future]
            try:
                read[i] = future.result()
            except RepositoryReadError as exc:
                failed[i] = exc
                still_failed.append(i)
            else:
                failed.pop(i, None)
                on_read(i, read[i])
            if progress is not None:
                progress(repo["repositoryName"], done, len(repositories))
    return sorted(still_failed)


def collect_inventory(
    clients: Mapping[str, Any] | Sequence[ScanTarget],
    settings: CollectSettings,
    *,
    now: datetime | None = None,
    api_calls: Callable[[], dict[str, int]] | None = None,
    progress: ProgressCallback | None = None,
    source: str = "ecr",
    stop: threading.Event | None = None,
    shard: Shard | None = None,
    skipped_accounts: Mapping[str, str] | None = None,
    after_reads: Callable[[], None] | None = None,
) -> Inventory:
    """Scan every target (or every region of ``clients``, region → ECR client) into an
    :class:`Inventory`; with ``shard``, only the repositories of that shard.
    ``after_reads`` is called once the registry's last answer is in, before the frames
    are finished (the scan asks the workloads then, meanwhile): each repository's images
    became a piece of the frame as its read succeeded (:mod:`hygiene.imageframes`).

    An account that cannot be opened, or whose registry refuses the scanner role, is a
    :class:`ScanError` of that account (the run is incomplete for it alone). Without
    ``registry.accounts`` (account None) such errors still fail the whole scan
    (:class:`CollectError`), as they always did: nothing else would be read.
    """
    started = now or datetime.now(UTC)
    run = RunInfo(id=new_run_id(started), started_at=started, source=source)
    run.skipped_accounts = dict(skipped_accounts or {})
    if isinstance(clients, Mapping):
        targets = [
            ScanTarget(None, region, fixed_client(client)) for region, client in clients.items()
        ]
    else:
        targets = list(clients)
    repository_records: list[dict[str, Any]] = []
    frames = ImageFrames(IMAGE_DTYPES)
    pieces: list[tuple[int, int]] = []  # (target, number in its listing), in frame order
    for t, target in enumerate(targets):
        try:
            client = target.open()
            records, read = collect_region(
                client, target.region, settings, run, progress, stop, account=target.account,
                shard=shard, fresh_client=target.fresh,
                on_read=lambda i, data, t=t: frames.add((t, i), data.images),  # type: ignore[misc]
            )  # fmt: skip
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            if target.account is None:
                raise
            operation = str(getattr(exc, "operation", "") or "open")
            message = str(getattr(exc, "message", "") or exc)
            log.warning("account %s (%s) not read: %s", target.account, target.region, exc)
            run.errors.append(ScanError(target.region, None, operation, message, target.account))
            continue
        except CollectError as exc:
            if target.account is None:
                raise
            log.warning("account %s (%s) not read: %s", target.account, target.region, exc)
            run.errors.append(
                ScanError(target.region, None, "DescribeRepositories", exc.message, target.account)
            )
            continue
        repository_records.extend(records)
        pieces.extend((t, i) for i in read)
    if after_reads is not None:
        after_reads()
    images_frame = frames.frame(pieces)
    repositories_frame = build_repositories(repository_records, images_frame)
    run.finished_at = datetime.now(UTC)
    if api_calls is not None:
        run.api_calls = api_calls()
    return Inventory(images=images_frame, repositories=repositories_frame, run=run)
