"""Referrers whose ECR metadata is absent, end to end: pushed into the embedded registry,
read by the collector, evaluated, planned.

Property: over generated registries whose referrers carry no ECR metadata, no referrer
of a kept image is ever proposed for deletion.

The registries are pushed into the embedded registry (moto) as real OCI manifests: a
referrer is an ordinary ``application/vnd.oci.image.manifest.v1+json`` with a ``subject``
field, sometimes with an ``artifactType``, sometimes with an ordinary image config type.
moto fills neither ``subjectManifestDigest`` nor ``artifactMediaType`` (pinned in
``tests/collect/test_moto_quirks.py``), exactly like images pushed before ECR's OCI 1.1
support or copied by other tools. The production collector reads them over HTTP, the
engine evaluates, the plan proposes; the property is checked against the manifests as
pushed (an oracle that never looks at the inventory).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hygiene.collect.ecr import collect_inventory
from hygiene.config import CollectSettings
from hygiene.model import Action
from hygiene.scan import RegistryAccess, collect, evaluate
from hygiene_demo.registry import EmbeddedRegistry
from tests import builders
from tests.builders import NOW
from tests.conftest import examples

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
COSIGN = "application/vnd.dev.cosign.artifact.sig.v1+json"
SBOM = "application/spdx+json"
TAGS = ["1.0.0", "1.1.0", "v2", "latest", "prod", "dev", "x"]
SETTINGS = CollectSettings(max_workers=2, max_attempts=1)


@dataclass
class Pushed:
    """What was pushed, as the oracle knows it (never read back from the registry)."""

    repository: str
    digest: str
    subject: str | None = None  # from the manifest's `subject`, or a legacy cosign tag
    children: list[str] = field(default_factory=list)


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _image_manifest(salt: str, config_type: str = OCI_CONFIG, **extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": _digest(salt + "c"), "size": 1000},
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": _digest(salt + "l"),
                "size": 1000,
            }
        ],
        **extra,
    }


@st.composite
def registries(draw: Any) -> list[dict[str, Any]]:
    """A list of push instructions; each later entry may refer to an earlier one."""
    pushes: list[dict[str, Any]] = []
    for r in range(draw(st.integers(1, 2))):
        repository = f"suporte/repo{r}"
        names: list[int] = []  # positions in `pushes` of this repository's images
        for u in range(draw(st.integers(1, 9))):
            kind = draw(
                st.sampled_from(
                    ["image", "image", "index", "referrer", "referrer", "legacy", "listing"]
                )
            )
            entry: dict[str, Any] = {
                "repository": repository,
                "salt": f"{r}-{u}",
                "kind": kind,
                "days_old": draw(st.integers(0, 400)),
                "pulled_days_ago": draw(st.one_of(st.none(), st.integers(0, 400))),
                "tags": draw(st.lists(st.sampled_from(TAGS), max_size=2, unique=True)),
            }
            if kind == "index":
                entry["children"] = draw(st.integers(1, 3))
            elif kind in ("referrer", "legacy", "listing"):
                entry["tags"] = []
                entry["referrers"] = draw(st.integers(1, 2))
                # a listing moved on: an older index, untagged, listing one more referrer
                # (which the newer listing may or may not list too)
                entry["older"] = draw(st.sampled_from([None, "dropped", "listed"]))
                entry["subject"] = draw(st.sampled_from([*names, "missing", "missing"]))
                entry["config_type"] = draw(st.sampled_from([OCI_EMPTY, OCI_CONFIG, COSIGN]))
                entry["artifact_type"] = draw(st.sampled_from([None, COSIGN, SBOM]))
                entry["subject_is_child"] = draw(st.booleans())
            names.append(len(pushes))
            pushes.append(entry)
    return pushes


def push_all(ecr: EmbeddedRegistry, pushes: list[dict[str, Any]]) -> list[Pushed]:
    """Create the repositories and push every manifest into moto (back-dated)."""
    backend = ecr.backend()
    client = ecr.client()
    for name in sorted({p["repository"] for p in pushes}):
        client.create_repository(repositoryName=name)
    pushed: list[Pushed] = []
    by_position: dict[int, Pushed] = {}
    used_tags: dict[str, set[str]] = {}

    def put(entry: dict[str, Any], document: dict[str, Any], media: str, tags: list[str]) -> str:
        text = json.dumps(document)
        digest = _digest(text)
        image = backend.put_image(entry["repository"], text, None, media, digest)
        taken = used_tags.setdefault(entry["repository"], set())
        for tag in tags:
            if tag not in taken:  # a moved tag would delete the image it left (moto)
                taken.add(tag)
                image.update_tag(tag)
        image.image_pushed_at = int((NOW - timedelta(days=entry["days_old"])).timestamp())
        if entry["pulled_days_ago"] is not None:
            image.last_recorded_pull_time = NOW - timedelta(days=entry["pulled_days_ago"])
        return digest

    for position, entry in enumerate(pushes):
        kind, salt = entry["kind"], entry["salt"]
        subject: str | None = None
        if kind in ("referrer", "legacy", "listing"):
            target = entry["subject"]
            if target == "missing":
                subject = _digest(salt + "missing-subject")
            else:
                owner = by_position[target]
                subject = (
                    owner.children[0] if owner.children and entry["subject_is_child"] else None
                ) or owner.digest
        if kind == "index":
            children = [
                put(
                    {**entry, "tags": []},
                    _image_manifest(f"{salt}-p{i}"),
                    OCI_MANIFEST,
                    [],
                )
                for i in range(entry["children"])
            ]
            document = {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {"mediaType": OCI_MANIFEST, "digest": c, "size": 500} for c in children
                ],
            }
            digest = put(entry, document, OCI_INDEX, entry["tags"])
            record = Pushed(entry["repository"], digest, children=children)
            pushed.extend(Pushed(entry["repository"], c) for c in children)
        elif kind == "referrer":
            assert subject is not None
            extra: dict[str, Any] = {
                "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 100}
            }
            if entry["artifact_type"]:
                extra["artifactType"] = entry["artifact_type"]
            document = _image_manifest(salt, entry["config_type"], **extra)
            digest = put(entry, document, OCI_MANIFEST, [])
            record = Pushed(entry["repository"], digest, subject=subject)
        elif kind == "legacy":
            assert subject is not None
            tag = "sha256-" + subject.removeprefix("sha256:") + ".sig"
            signed = tag not in used_tags.get(entry["repository"], set())
            digest = put(entry, _image_manifest(salt), OCI_MANIFEST, [tag])
            # a second signature of the same image finds its tag taken: it is pushed as
            # a plain untagged image (nothing says it signs anything), as in a registry
            record = Pushed(entry["repository"], digest, subject=subject if signed else None)
        elif kind == "listing":
            # the OCI referrers tag schema: an index tagged sha256-<hex> listing the
            # referrers of that image; when the tag is taken (a second listing of one
            # image) the index is pushed untagged and names no subject, like the index a
            # moved tag leaves behind, but what it lists still refers to the image
            assert subject is not None

            def signed(n: int, entry: dict[str, Any] = entry, subject: str = subject) -> str:
                extra = {"subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 100}}
                manifest = _image_manifest(f"{entry['salt']}-r{n}", entry["config_type"], **extra)
                child = put({**entry, "tags": []}, manifest, OCI_MANIFEST, [])
                pushed.append(Pushed(entry["repository"], child, subject=subject))
                return child

            def listing(children: list[str]) -> dict[str, Any]:
                return {
                    "schemaVersion": 2,
                    "mediaType": OCI_INDEX,
                    "manifests": [
                        {"mediaType": OCI_MANIFEST, "digest": c, "size": 500} for c in children
                    ],
                }

            children = [signed(n) for n in range(entry["referrers"])]
            if entry["older"] is not None:
                first = signed(99)
                old = put({**entry, "tags": []}, listing([first]), OCI_INDEX, [])
                pushed.append(Pushed(entry["repository"], old, children=[first]))
                if entry["older"] == "listed":
                    children.append(first)
            document = listing(children)
            tag = "sha256-" + subject.removeprefix("sha256:")
            listed = tag not in used_tags.get(entry["repository"], set())
            digest = put(entry, document, OCI_INDEX, [tag])
            record = Pushed(
                entry["repository"], digest, subject=subject if listed else None, children=children
            )
        else:
            digest = put(entry, _image_manifest(salt), OCI_MANIFEST, entry["tags"])
            record = Pushed(entry["repository"], digest)
        by_position[position] = record
        pushed.append(record)
    return pushed


# 20 examples (~1 s each: a push into moto, a scan over HTTP, evaluate, plan); the fast
# lane runs a tenth (tests/conftest.py).
@settings(
    max_examples=examples(20),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    pushes=registries(),
    min_age=st.integers(0, 30),
    keep_newest=st.integers(0, 2),
    pulled_within=st.integers(0, 60),
    max_images=st.integers(1, 4),
)
def test_no_referrer_of_a_kept_image_is_proposed(
    embedded_server: EmbeddedRegistry,
    pushes: list[dict[str, Any]],
    min_age: int,
    keep_newest: int,
    pulled_within: int,
    max_images: int,
) -> None:
    embedded_server.reset()
    try:
        pushed = push_all(embedded_server, pushes)
        inventory = collect_inventory({"us-east-1": embedded_server.client()}, SETTINGS, now=NOW)
    finally:
        embedded_server.reset()
    assert inventory.run.complete, inventory.run.errors
    config = builders.config(
        {
            "protections": {"keep_newest": keep_newest, "pulled_within_days": pulled_within},
            "rules": {
                "IM001": {"min_age_days": min_age},
                "IM002": {"days": 30, "keep_newest": keep_newest},
                "IM003": {"max_images": max_images},
                "IM004": {"min_age_days": 0},
            },
            "selection": {"select": ["IM"]},
        }
    )
    result = evaluate(inventory, config, NOW)

    present = {(p.repository, p.digest) for p in pushed}
    deletions = [p for p in result.proposals if p.action is Action.DELETE_IMAGES]
    for proposal in deletions:
        targets = set(proposal.target["digests"])
        for image in pushed:
            if image.repository != proposal.repository or image.digest not in targets:
                continue
            subject = image.subject
            if subject is not None and (image.repository, subject) in present:
                assert subject in targets, (
                    f"referrer {image.digest} proposed for deletion while its subject "
                    f"{subject} stays ({proposal.id}: {proposal.rule_codes})"
                )
    # and every orphaned referrer that is old enough is an IM004 finding, never IM001
    for finding in result.findings:
        if finding.code != "IM001":
            continue
        image = next(p for p in pushed if p.digest == finding.image_digest)
        assert image.subject is None, f"referrer {image.digest} reported as untagged (IM001)"


def test_a_referrer_without_ecr_metadata_is_found_counted_and_kept(ecr: EmbeddedRegistry) -> None:
    """One push of each kind, scanned through the production path (the API calls are
    counted by the session's hooks): the manifest read finds the referrers."""
    pushes = [
        {"kind": "image", "tags": ["1.0.0"]},
        {"kind": "referrer", "subject": 0, "config_type": COSIGN, "artifact_type": COSIGN},
        {"kind": "referrer", "subject": 1, "config_type": OCI_CONFIG, "artifact_type": None},
        {"kind": "referrer", "subject": "missing", "config_type": OCI_EMPTY,
         "artifact_type": SBOM},
        {"kind": "image", "tags": []},
    ]  # fmt: skip
    entries = [
        {
            "repository": "suporte/api",
            "salt": f"e{n}",
            "days_old": 100,
            "pulled_days_ago": None,
            "tags": [],
            "subject_is_child": False,
            **push,
        }
        for n, push in enumerate(pushes)
    ]
    release, signature, attestation, orphan, dangling = push_all(ecr, entries)
    access = RegistryAccess(
        endpoint_url=ecr.endpoint_url, session=ecr.session(), regions=("us-east-1",)
    )
    config = builders.config({"selection": {"select": ["IM"]}})
    inventory = collect(access.open(config), config, now=NOW, progress=False)

    # the four untagged images no index lists, in one BatchGetImage call
    assert inventory.run.api_calls["BatchGetImage"] == 1
    subjects = dict(
        zip(
            inventory.images["digest"].astype(str),
            inventory.images["subject_digest"].astype(object),
            strict=True,
        )
    )
    assert subjects[signature.digest] == release.digest
    assert subjects[attestation.digest] == signature.digest
    assert subjects[orphan.digest] == orphan.subject
    result = evaluate(inventory, config, NOW)
    kept = {k.image_digest: k.reasons for k in result.kept}
    assert f"referrer-of:{release.digest}" in kept[signature.digest]
    assert f"referrer-of:{signature.digest}" in kept[attestation.digest]
    flagged = {(f.code, f.image_digest) for f in result.findings}
    assert flagged == {("IM004", orphan.digest), ("IM001", dangling.digest)}
    proposed = {d for p in result.proposals for d in p.target.get("digests", [])}
    assert proposed == {orphan.digest, dangling.digest}
