"""What a workload says it runs, as registry coordinates: :class:`ImageUse`.

Every source (ECS, Lambda, Batch, Kubernetes, the in-use file) turns the image strings
its workloads carry into :class:`ImageUse` records with :func:`parse_image`. Only images
in an Amazon ECR registry count: ``nginx:1.27`` or ``ghcr.io/org/app`` are someone else's
images, and the registry this tool cleans cannot hold them.

The forms a workload may carry (all seen in real API responses):

* ``<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:<tag>][@<digest>]``
  (``.amazonaws.com.cn`` in China, ``dkr.ecr-fips`` for FIPS endpoints,
  ``<account>.dkr-ecr.<region>.on.aws`` for dual-stack endpoints);
* Kubernetes ``imageID`` values with a runtime prefix: ``docker-pullable://<image>@<digest>``
  (dockershim) or the bare ``<image>@<digest>`` (containerd, CRI-O);
* ``sha256:<hex>`` alone as an ``imageID`` is the *image id* (config digest) of an image
  loaded without a registry: it names no manifest and is ignored.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

ECR_HOST = re.compile(
    r"^(?P<account>\d{12})\."
    r"(?:dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"|dkr-ecr(?:-fips)?\.(?P<region_ds>[a-z0-9-]+)\.on\.aws)$"
)
# Any other AWS host serving ECR (a VPC endpoint's own DNS name, a future form): the
# account cannot be told, so such a reference matches the repository in every registry
# read — over-protecting is the safe side. public.ecr.aws is another registry.
ECR_LIKE_HOST = re.compile(
    r"(?:^|\.)(?:dkr[.-]ecr|ecr)[.-].*\.(?:amazonaws\.com(?:\.cn)?|on\.aws)$"
)
AWS_REGION = re.compile(r"\.([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d)\.")
DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
RUNTIME_PREFIXES = ("docker-pullable://", "docker://", "containerd://", "cri-o://")


@dataclass(frozen=True, slots=True)
class ImageUse:
    """One workload's reference to an image of an ECR registry.

    ``account``/``region`` are the *registry's* (from the image host), None when the
    reference names no host (the in-use file's short form matches any registry).
    ``tag`` and ``digest`` may both be set (a task running ``api:v1`` reports the digest
    it pulled): each protects its own image. ``running`` marks what a running task or
    pod reported (re-read by apply right before deleting).
    """

    source: str  # ecs | lambda | batch | kubernetes | file
    where: str  # e.g. prod/service/api, resize:live, lab/ml/deployment/trainer
    repository: str
    tag: str | None = None
    digest: str | None = None
    account: str | None = None
    region: str | None = None
    running: bool = False

    @property
    def reason(self) -> str:
        """The keep reason shown in ``kept``, the reports and apply's skip detail."""
        return f"in-use:{self.source}:{self.where}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ParsedImage:
    repository: str
    tag: str | None
    digest: str | None
    account: str | None
    region: str | None


def parse_image(text: str | None, *, require_registry: bool = True) -> ParsedImage | None:
    """Registry coordinates of an image string, or None when it is not an ECR image.

    ``require_registry=False`` also accepts a bare ``repository[:tag][@digest]`` (the
    in-use file's short form, which means "this registry"); workload sources keep the
    default, because for a container runtime a bare name is a Docker Hub image.
    """
    if not text:
        return None
    text = text.strip()
    for prefix in RUNTIME_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    if not text or DIGEST.match(text):
        return None  # an image id (config digest): no registry, no manifest
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not DIGEST.match(digest):
            return None
    head, slash, rest = text.partition("/")
    account = region = None
    match = ECR_HOST.match(head) if slash else None
    if match and rest:
        account = match.group("account")
        region = match.group("region") or match.group("region_ds")
        text = rest
    elif slash and rest and head != "public.ecr.aws" and ECR_LIKE_HOST.search(head):
        found = AWS_REGION.search(f".{head}.")
        region = found.group(1) if found else None
        text = rest
    elif slash and ("." in head or ":" in head or head == "localhost"):
        return None  # another registry (docker.io, ghcr.io, registry:5000)
    elif require_registry:
        return None  # a bare name is Docker Hub for a container runtime
    tag = None
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        text, tag = text.rsplit(":", 1)
    if not text or (tag is not None and not tag):
        return None
    if tag is None and digest is None:
        tag = "latest"  # what a container runtime pulls for a bare name
    return ParsedImage(repository=text, tag=tag, digest=digest, account=account, region=region)


def image_uses(
    source: str,
    where: str,
    image: str | None,
    *,
    digest: str | None = None,
    running: bool = False,
) -> list[ImageUse]:
    """The :class:`ImageUse` of one image string (empty when it is not an ECR image).

    ``digest`` is a digest the workload reports separately (ECS ``imageDigest``): the
    image actually running, even if the tag has moved since.
    """
    parsed = parse_image(image)
    if parsed is None:
        return []
    extra = digest if digest and DIGEST.match(digest) else None
    return [
        ImageUse(
            source=source,
            where=where,
            repository=parsed.repository,
            tag=parsed.tag,
            digest=parsed.digest or extra,
            account=parsed.account,
            region=parsed.region,
            running=running,
        )
    ] + (
        [
            ImageUse(
                source=source,
                where=where,
                repository=parsed.repository,
                digest=extra,
                account=parsed.account,
                region=parsed.region,
                running=running,
            )
        ]
        if parsed.digest and extra and extra != parsed.digest
        else []
    )
