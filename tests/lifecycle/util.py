"""Build small inventories for lifecycle tests from readable image specs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from hygiene.inventory import INDEX_MEDIA_TYPES, build_images

REPOSITORY = "team/app"
ACCOUNT = "123456789012"
REGION = "us-east-1"
IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX_MANIFEST = sorted(INDEX_MEDIA_TYPES)[0]


def digest_of(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def image_record(spec: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """``{name, tags, pushed_days, pulled_days?, size?, children?, subject?, status?}``."""
    name = str(spec["name"])
    pulled = spec.get("pulled_days")
    children = [digest_of(c) for c in spec.get("children", [])]
    return {
        "account": ACCOUNT,
        "region": REGION,
        "repository": spec.get("repository", REPOSITORY),
        "namespace": str(spec.get("repository", REPOSITORY)).split("/")[0],
        "digest": digest_of(name),
        "tags": list(spec.get("tags", [])),
        "pushed_at": now - timedelta(days=float(spec["pushed_days"])),
        "last_pull": None if pulled is None else now - timedelta(days=float(pulled)),
        "size_bytes": int(spec.get("size", 1000)),
        "manifest_media_type": INDEX_MANIFEST if children else IMAGE_MANIFEST,
        "status": spec.get("status", "ACTIVE"),
        "child_digests": children,
        "subject_digest": digest_of(spec["subject"]) if spec.get("subject") else None,
    }


def make_images(specs: Iterable[Mapping[str, Any]], now: datetime) -> pd.DataFrame:
    """Typed images frame; ``archived_days`` specs add an ``archived_at`` column (the
    collector does not read lastArchivedAt yet, see docs/lifecycle.md)."""
    specs = list(specs)
    frame = build_images([image_record(s, now) for s in specs])
    if any(s.get("archived_days") is not None for s in specs):
        frame["archived_at"] = pd.to_datetime(
            [
                None if s.get("archived_days") is None else now - timedelta(days=s["archived_days"])
                for s in specs
            ],
            utc=True,
        )
    return frame


def names_by_digest(specs: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    return {digest_of(str(s["name"])): str(s["name"]) for s in specs}
