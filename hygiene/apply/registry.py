"""Reading the live registry: the re-checks every apply decision rests on.

Nothing here writes. Image ids go to ECR at most :data:`MAX_IDS` per call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from hygiene.inventory import INDEX_MEDIA_TYPES, legacy_signature_subject
from hygiene.model import Proposal

MAX_IDS = 100  # image ids per DescribeImages / BatchGetImage / BatchDeleteImage call
ACCEPTED_MEDIA_TYPES = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
]
# Error codes (after botocore's own retries) that leave a proposal for the next apply.
THROTTLING = {
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailableException",
    "ServerException",
}


def chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    """``items`` in lists of at most ``size``, in order."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def error_code(exc: ClientError) -> str:
    """The AWS error code of ``exc`` (``ImageNotFoundException`` …), or ``""``."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def jsonable(value: Any) -> Any:
    """An ECR answer made JSON-safe for the audit log (datetimes as ISO text)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def listed_digests(client: Any, proposal: Proposal) -> set[str]:
    """Every digest in the proposal's repository now (``ListImages``, 1000 a page)."""
    paginator = client.get_paginator("list_images")
    pages = paginator.paginate(
        registryId=proposal.account,
        repositoryName=proposal.repository,
        filter={"tagStatus": "ANY"},
        PaginationConfig={"PageSize": 1000},
    )
    return {
        i["imageDigest"] for page in pages for i in page.get("imageIds", []) if "imageDigest" in i
    }


def describe_digests(
    client: Any, proposal: Proposal, digests: Sequence[str]
) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Live ``imageDetails`` by digest, and the digests that no longer exist.

    ECR answers a missing id with ``ImageNotFoundException`` for the whole call
    (DescribeImages has no ``failures[]``), and so does moto. On that exception the
    repository's digests are listed once (``ListImages``, 1000 a page) to tell which are
    gone, and the rest are described again; should the two disagree (a push or delete
    in between), the batch is split in halves until each missing digest is isolated. A
    digest silently left out of an answer counts as gone too.
    """
    live: dict[str, dict[str, Any]] = {}
    missing: set[str] = set()
    listing: list[set[str]] = []  # filled once, on the first ImageNotFoundException

    def listed() -> set[str]:
        if not listing:
            listing.append(listed_digests(client, proposal))
        return listing[0]

    def read(batch: list[str], trust_listing: bool = True) -> None:
        try:
            response = client.describe_images(
                registryId=proposal.account,
                repositoryName=proposal.repository,
                imageIds=[{"imageDigest": d} for d in batch],
            )
        except ClientError as exc:
            code = error_code(exc)
            if code == "RepositoryNotFoundException":
                missing.update(batch)
                return
            if code != "ImageNotFoundException":
                raise
            if trust_listing:
                present = [d for d in batch if d in listed()]
                missing.update(d for d in batch if d not in listed())
                if not present:
                    return
                if len(present) < len(batch):
                    read(present, trust_listing=False)
                    return
                # the listing says all are there: a race, isolate below
            if len(batch) == 1:
                missing.update(batch)
                return
            half = len(batch) // 2
            read(batch[:half], trust_listing=False)
            read(batch[half:], trust_listing=False)
            return
        for detail in response.get("imageDetails", []):
            live[detail["imageDigest"]] = detail
        missing.update(d for d in batch if d not in live)

    for batch in chunks(list(digests), MAX_IDS):
        read(batch)
    return live, missing - set(live)


def get_manifests(
    client: Any, proposal: Proposal, digests: Sequence[str]
) -> dict[str, dict[str, str]]:
    """``{digest: {"mediaType", "manifest"}}`` via BatchGetImage (≤ 100 ids a call)."""
    manifests: dict[str, dict[str, str]] = {}
    for batch in chunks(list(digests), MAX_IDS):
        response = client.batch_get_image(
            registryId=proposal.account,
            repositoryName=proposal.repository,
            imageIds=[{"imageDigest": d} for d in batch],
            acceptedMediaTypes=ACCEPTED_MEDIA_TYPES,
        )
        for image in response.get("images", []):
            digest = image["imageId"].get("imageDigest")
            if digest:
                manifests[digest] = {
                    "mediaType": image.get("imageManifestMediaType", ""),
                    "manifest": image.get("imageManifest", ""),
                }
    return manifests


@dataclass(frozen=True)
class Links:
    """The repository as it is now: which images exist and what depends on what."""

    present: set[str]  # every digest in the repository
    parents: dict[str, set[str]]  # child digest → image indexes listing it
    subjects: dict[str, str]  # referrer digest → its subject (subjects present only)


def repository_links(client: Any, proposal: Proposal) -> Links:
    """Read the repository now (:class:`Links`).

    A referrer here is what ECR says: ``subjectManifestDigest``, a legacy cosign tag
    ``sha256-<hex>.sig|att|sbom``, or an image index tagged ``sha256-<hex>`` (the OCI
    referrers tag schema). ECR may leave ``subjectManifestDigest`` out; the caller reads
    the manifests it is about to delete for their own ``subject``. Every image counts as
    present, archived ones included (``imageStatus: ANY``; without it DescribeImages
    lists only active images, docs/ecr-facts.md): an archived image's signature stays.
    """
    indexes: list[str] = []
    present: set[str] = set()
    subject_of: dict[str, str] = {}
    paginator = client.get_paginator("describe_images")
    pages = paginator.paginate(
        registryId=proposal.account,
        repositoryName=proposal.repository,
        filter={"tagStatus": "ANY", "imageStatus": "ANY"},
        PaginationConfig={"PageSize": 1000},
    )
    for page in pages:
        for detail in page.get("imageDetails", []):
            digest = detail["imageDigest"]
            present.add(digest)
            is_index = detail.get("imageManifestMediaType") in INDEX_MEDIA_TYPES
            if is_index:
                indexes.append(digest)
            subject = detail.get("subjectManifestDigest")
            if subject is None:
                legacy = {
                    legacy_signature_subject(t, is_index) for t in detail.get("imageTags", [])
                }
                found = sorted(s for s in legacy if s is not None)
                subject = found[0] if len(found) == 1 else None
            if subject:
                subject_of[digest] = str(subject)
    parents: dict[str, set[str]] = {}
    for digest, manifest in get_manifests(client, proposal, indexes).items():
        try:
            body = json.loads(manifest["manifest"])
        except ValueError:
            continue
        for child in body.get("manifests", []) or []:
            if child.get("digest"):
                parents.setdefault(child["digest"], set()).add(digest)
    subjects = {d: s for d, s in subject_of.items() if s in present}
    return Links(present=present, parents=parents, subjects=subjects)
