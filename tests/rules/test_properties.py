"""Property tests over generated registries: the safety promises of the engine.

* no protected image is ever in a deletion unit (protections recomputed here from the
  raw rows with plain Python, independently of the engine's vectorised columns);
* the index/child unit is never split: nothing is deleted while an index that stays
  lists it, and every child of a deleted index goes with it unless an index that stays
  also lists it;
* referrers follow their subject: a referrer is never deleted while its subject stays;
* every image is in at most one unit, and every unit starts with its finding's image.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hygiene.rules import evaluate
from tests import builders
from tests.builders import NOW, digest_of, tag_of
from tests.conftest import examples

TAG_POOL = ["1.0.0", "1.1.0", "v2", "latest", "main", "prod", "prod-eu", "release-1", "dev", "x"]
PROTECTED = ["latest", "main", "master", "stable", "prod*", "release*"]


@st.composite
def registries(draw: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    images: list[dict[str, Any]] = []
    repositories = []
    for r in range(draw(st.integers(1, 3))):
        name = f"suporte/repo{r}"
        repositories.append(
            {
                "name": name,
                "resource_tags": {"hygiene:keep": "true"} if draw(st.booleans()) and r else {},
                "scan_error": "throttled" if draw(st.integers(0, 5)) == 0 else None,
            }
        )
        names: list[str] = []
        indexes: list[str] = []
        for u in range(draw(st.integers(1, 8))):
            alias = f"r{r}u{u}"
            kind = draw(st.sampled_from(["image", "image", "index", "referrer", "legacy"]))
            row: dict[str, Any] = {
                "repository": name,
                "digest": alias,
                "pushed_days_ago": draw(st.integers(0, 400)),
                "pulled_days_ago": draw(st.one_of(st.none(), st.integers(0, 400))),
                "tags": draw(st.lists(st.sampled_from(TAG_POOL), max_size=2, unique=True)),
            }
            if kind == "index":
                children = [f"{alias}c{i}" for i in range(draw(st.integers(1, 3)))]
                for child in children:
                    images.append(
                        {
                            "repository": name,
                            "digest": child,
                            "pushed_days_ago": row["pushed_days_ago"],
                            "pulled_days_ago": draw(st.one_of(st.none(), st.integers(0, 400))),
                        }
                    )
                # sometimes share a child of an earlier index
                if indexes and draw(st.booleans()):
                    children.append(f"{draw(st.sampled_from(indexes))}c0")
                row["children"] = children
                indexes.append(alias)
            elif kind == "referrer":
                row["tags"] = []
                row["subject"] = draw(st.sampled_from([*names, "missing"])) if names else "gone"
            elif kind == "legacy":
                target = draw(st.sampled_from([*names, "missing"])) if names else "gone"
                row["tags"] = [f"sig:{target}"]
            names.append(alias)
            images.append(row)
    policy = {
        "protections": {
            "keep_newest": draw(st.integers(0, 3)),
            "pulled_within_days": draw(st.integers(0, 60)),
        },
        "rules": {
            "IM001": {"min_age_days": draw(st.integers(0, 30))},
            "IM002": {"days": draw(st.integers(1, 200)), "keep_newest": draw(st.integers(0, 3))},
            "IM003": {"max_images": draw(st.integers(1, 4))},
            "IM004": {"min_age_days": draw(st.integers(0, 3))},
        },
        "selection": {"select": ["IM"]},
    }
    return images, repositories, policy


def _oracle_protected(
    images: list[dict[str, Any]], repositories: list[dict[str, Any]], policy: dict[str, Any]
) -> set[str]:
    """Digests docs/rules.md ("Protections and "kept because"") says must never be deleted,
    worked out here row by row, independently of the engine's vectorised code."""
    repo = {r["name"]: r for r in repositories}
    listed_by: dict[str, list[str]] = defaultdict(list)
    for row in images:
        for child in row.get("children", []):
            listed_by[digest_of(child)].append(digest_of(row["digest"]))
    present = {digest_of(r["digest"]) for r in images}
    window = policy["protections"]["pulled_within_days"]
    protected = set()
    tagged_top: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for row in images:
        d = digest_of(row["digest"])
        settings_row = repo[row["repository"]]
        tags = [tag_of(t) for t in row.get("tags", [])]
        if (
            settings_row["resource_tags"].get("hygiene:keep") == "true"
            or settings_row["scan_error"]
        ):
            protected.add(d)
        if any(fnmatch.fnmatchcase(t, p) for t in tags for p in PROTECTED):
            protected.add(d)
        pulled = row.get("pulled_days_ago")
        if window and pulled is not None and pulled <= window:
            protected.add(d)
        subject = row.get("subject") or (
            tags[0].replace("sha256-", "sha256:").rsplit(".", 1)[0]
            if tags and tags[0].startswith("sha256-")
            else None
        )
        subject_digest = digest_of(subject) if subject and ":" not in subject else subject
        is_referrer = subject_digest is not None and subject_digest in present
        if tags and not listed_by.get(d) and not is_referrer and subject_digest is None:
            tagged_top[row["repository"]].append((row["pushed_days_ago"], d))
    keep = policy["protections"]["keep_newest"]
    for entries in tagged_top.values():
        # unambiguously among the newest K, whatever order equal push times take
        protected |= {
            d
            for age, d in entries
            if sum(1 for other, o in entries if other <= age and o != d) < keep
        }
    return protected


# 40 examples (~3 s alone; registries of up to 24 units): the deletion safety property;
# the fast lane runs a tenth (tests/conftest.py).
@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(registries())
def test_protected_images_are_never_deletable_and_units_are_whole(
    registry: tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]],
) -> None:
    images, repositories, policy = registry
    inventory = builders.inventory_of(images, repositories)
    evaluation = evaluate(inventory, builders.config(policy), NOW)

    units = [f.details["unit"] for f in evaluation.findings if "unit" in f.details]
    unit_of: dict[str, int] = {}
    for i, (finding, unit) in enumerate(
        zip([f for f in evaluation.findings if "unit" in f.details], units, strict=True)
    ):
        assert unit[0] == finding.image_digest
        for d in unit:
            assert d not in unit_of, f"{d} is in two deletion units"
            unit_of[d] = i

    # 1. protected images (independent oracle and the engine's own columns) never deleted
    protected = _oracle_protected(images, repositories, policy)
    frame = evaluation.protections
    engine_protected = set(frame.loc[frame["protected"], "digest"].astype(str))
    deleted = set(unit_of)
    assert not (deleted & protected), f"protected images deleted: {deleted & protected}"
    assert not (deleted & engine_protected)

    # 2./3. nothing deleted while an owner (listing index, subject) stays; children of a
    # deleted index go with it unless an index that stays lists them too
    parents: dict[str, list[str]] = defaultdict(list)
    children: dict[str, list[str]] = defaultdict(list)
    for row in images:
        for child in row.get("children", []):
            parents[digest_of(child)].append(digest_of(row["digest"]))
            children[digest_of(row["digest"])].append(digest_of(child))
    subject_of = dict(
        zip(
            inventory.images["digest"].astype(str),
            inventory.images["subject_digest"].astype(object),
            strict=True,
        )
    )
    present = set(inventory.images["digest"].astype(str))
    for d, i in unit_of.items():
        for parent in parents.get(d, []):
            assert unit_of.get(parent) == i, f"{d} deleted while index {parent} stays"
        subject = subject_of.get(d)
        if isinstance(subject, str) and subject in present:
            assert unit_of.get(subject) == i, f"referrer {d} deleted while {subject} stays"
        for child in children.get(d, []):
            if child in unit_of:
                continue
            others = [p for p in parents[child] if p != d]
            assert others, f"child {child} of deleted index {d} left behind alone"
            kept = {k.image_digest: k.reasons for k in evaluation.kept}
            assert child in kept, f"child {child} left behind without a kept reason"
