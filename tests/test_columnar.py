"""The columnar fast paths give exactly what the straightforward code gives.

The engine keeps image findings as columns (:class:`hygiene.findingtable.Findings`), the
plan reads them without making objects, the JSON writer and the store build their rows
from them. Each is checked here against the object path on generated registries (the
property tests' generator: shared index children, referrers, legacy signatures, scan
errors, opt-outs) and on seeded synthetic registries.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.rules import bench_config, synthetic_inventory
from hygiene import findingtable
from hygiene.findingtable import (
    CLOCK_TABLE_FROM,
    NAT,
    Findings,
    iso_strings,
)
from hygiene.inventory import SourceStatus
from hygiene.jsonout import document_bytes
from hygiene.model import Action, KeptImage, Proposal, canonical_json, iso_utc, proposal_id
from hygiene.plan import plan
from hygiene.plancolumns import columnar_image_proposals
from hygiene.rules import Evaluation, evaluate, filter_exit
from hygiene.rules.columns import utc_iso_strings
from hygiene.scan import ScanResult, plan_all
from hygiene.timetext import offset_texts
from tests import builders
from tests.builders import NOW
from tests.conftest import examples
from tests.rules.test_properties import registries

SETTINGS = settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _objects(evaluation: Evaluation) -> Evaluation:
    """The same evaluation with its findings as a plain list of objects."""
    return Evaluation(
        findings=list(evaluation.findings),
        kept=evaluation.kept,
        mute_warnings=evaluation.mute_warnings,
        protections=evaluation.protections,
    )


def _check_findings(evaluation: Evaluation) -> None:
    findings = evaluation.findings
    assert isinstance(findings, Findings)
    objects = list(findings)
    assert len(objects) == len(findings)
    assert [row for chunk in findings.json_chunks(7) for row in chunk] == [
        f.to_json() for f in objects
    ]
    if objects:
        assert findings[0] == objects[0] and findings[-1] == objects[-1]
    assert findings.counts() == dict(sorted(Counter(f.code for f in objects).items()))
    assert evaluation.deletable_digests() == _objects(evaluation).deletable_digests()
    for level in ("info", "warning", "error"):
        assert filter_exit(findings, level) == filter_exit(objects, level)


@SETTINGS
@given(registries())
def test_columnar_findings_and_plan_equal_the_object_path(
    registry: tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]],
) -> None:
    images, repositories, policy = registry
    inventory = builders.inventory_of(images, repositories)
    config = builders.config(policy)
    evaluation = evaluate(inventory, config, NOW)
    _check_findings(evaluation)
    fast = plan(evaluation, inventory, config, NOW)
    slow = plan(_objects(evaluation), inventory, config, NOW)
    assert [p.to_json() for p in fast] == [p.to_json() for p in slow]


@pytest.mark.parametrize(("images", "repositories"), [(3_000, 30), (20_000, 150)])
def test_synthetic_registry_plan_and_findings_equal_the_object_path(
    images: int, repositories: int
) -> None:
    inventory = synthetic_inventory(images, repositories)
    config = bench_config()
    evaluation = evaluate(inventory, config, NOW, in_use=[])
    _check_findings(evaluation)
    found = evaluation.findings
    assert isinstance(found, Findings) and found.image is not None
    keep = np.ones(len(found.image), dtype=bool)
    assert columnar_image_proposals(found.image, keep, inventory) is not None  # no fallback
    fast = plan_all(evaluation, inventory, config, NOW)
    slow = plan_all(_objects(evaluation), inventory, config, NOW)
    assert [p.to_json() for p in fast] == [p.to_json() for p in slow]
    assert sum(p.action is Action.PUT_LIFECYCLE_POLICY for p in fast) > 0


@pytest.mark.parametrize("failed", [False, True], ids=["sources-read", "a-source-failed"])
def test_columnar_plan_records_in_use_sources_like_the_object_path(failed: bool) -> None:
    """Delete proposals name the in-use sources read; none when a source failed (the plan's
    own guard: the findings here were made before the failure was recorded)."""
    inventory = synthetic_inventory(3_000, 30)
    config = bench_config()
    evaluation = evaluate(inventory, config, NOW, in_use=[])
    inventory.run.in_use = [
        SourceStatus("ecs us-east-1", "ecs", "ok", references=2),
        SourceStatus("lambda us-east-1", "lambda", "failed" if failed else "ok"),
    ]
    fast = plan(evaluation, inventory, config, NOW)
    slow = plan(_objects(evaluation), inventory, config, NOW)
    assert [p.to_json() for p in fast] == [p.to_json() for p in slow]
    deletes = [p for p in fast if p.action is Action.DELETE_IMAGES]
    if failed:
        assert deletes == [] and fast  # the repository proposals remain
    else:
        assert deletes
        assert all(
            p.evidence["in_use_checked"] == ["ecs us-east-1", "lambda us-east-1"] for p in deletes
        )


def test_columnar_plan_declines_another_inventory_and_repeated_digests() -> None:
    inventory = synthetic_inventory(3_000, 30)
    evaluation = evaluate(inventory, bench_config(), NOW, in_use=[])
    found = evaluation.findings
    assert isinstance(found, Findings) and found.image is not None
    keep = np.ones(len(found.image), dtype=bool)
    other = synthetic_inventory(3_000, 30, seed=8)
    assert columnar_image_proposals(found.image, keep, other) is None
    found.image.unique_digests = False
    assert columnar_image_proposals(found.image, keep, inventory) is None


# --------------------------------------------------------------------------- JSON

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=25,
)


@SETTINGS
@given(st.dictionaries(st.text(max_size=6), json_values | st.lists(json_values, max_size=5)))
def test_streamed_document_is_byte_for_byte_the_standard_one(document: dict[str, Any]) -> None:
    from hygiene.jsonout import Chunks

    parts = [
        (key, Chunks([value[:2], value[2:]]) if isinstance(value, list) else value)
        for key, value in document.items()
    ]
    expected = json.dumps(document, indent=2, ensure_ascii=False).encode()
    assert document_bytes(parts) == expected


def test_scan_json_is_byte_for_byte_the_standard_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hygiene.scan.PROPOSAL_CHUNK", 7)  # several chunks of proposals
    monkeypatch.setattr("hygiene.scan.FINDINGS_CHUNK", 97)  # and of findings
    inventory = synthetic_inventory(3_000, 30)
    config = bench_config()
    evaluation = evaluate(inventory, config, NOW, in_use=[])
    result = ScanResult(
        inventory=inventory,
        findings=evaluation.findings,
        kept=evaluation.kept,
        proposals=plan_all(evaluation, inventory, config, NOW),
        mute_warnings=["a warning"],
    )
    import io

    stream = io.BytesIO()
    result.write_json(stream)
    expected = json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n"
    assert stream.getvalue() == expected.encode()
    assert len(result.findings) > 1000 and len(result.proposals) > 7 * 3


def test_a_del_character_gives_the_canonical_id() -> None:
    """DEL (0x7f) is ASCII; json.dumps escapes it (\\u007f), orjson does not (found by
    the property below)."""
    target, evidence = {"t": None}, {"e": {"\x7f": None}}
    expected = proposal_id(Action.DELETE_IMAGES, target, evidence)
    assert proposal_id(Action.DELETE_IMAGES, target, evidence, plain=True) == expected


@SETTINGS
@given(json_values, json_values)
def test_plain_proposal_ids_equal_canonical_ones(target: Any, evidence: Any) -> None:
    target, evidence = {"t": target}, {"e": evidence}
    expected = proposal_id(Action.DELETE_IMAGES, target, evidence)
    assert proposal_id(Action.DELETE_IMAGES, target, evidence, plain=True) == expected
    assert canonical_json([1, target]) == json.dumps(
        [1, target], sort_keys=True, separators=(",", ":")
    )


def test_to_json_of_proposals_and_kept_images_covers_every_field() -> None:
    import dataclasses

    proposal = builders.proposal(digests=["a", "b"])
    assert list(proposal.to_json()) == [f.name for f in dataclasses.fields(Proposal)]
    assert proposal.to_json()["evidence"] == proposal.evidence
    assert proposal.to_json()["evidence"] is not proposal.evidence  # a copy
    assert proposal.to_json(copy=False)["evidence"] is proposal.evidence
    kept = KeptImage("1", "r", "x", "sha256:a", ("t",), ("why",))
    assert list(kept.to_json()) == [f.name for f in dataclasses.fields(KeptImage)]


# --------------------------------------------------------------------------- times


@pytest.mark.parametrize("count", [5_000, CLOCK_TABLE_FROM + 1])  # each second, the table
def test_vectorised_times_equal_the_scalar_formatters(
    count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(findingtable, "_clock_tables", {})  # a process that made none yet
    monkeypatch.setattr(findingtable, "_clock_formatted", {})
    rng = np.random.default_rng(3)
    values = rng.integers(-(10**17), 4 * 10**18, count)
    values[::7] = values[::7] // 10**9 * 10**9
    values[::5] = values[::5] // 1000 * 1000
    values[::11] = NAT
    stamps = pd.Series(pd.DatetimeIndex(values.view("M8[ns]")).tz_localize("UTC"))
    assert offset_texts(values) == [iso_utc(t) for t in stamps]
    by_numpy = np.datetime_as_string(values.view("M8[ns]"), unit="s", timezone="UTC").tolist()
    assert iso_strings(values) == [None if t == "NaT" else t for t in by_numpy]
    assert utc_iso_strings(stamps) == iso_strings(values)  # the engine's column helper


def test_times_come_from_the_table_once_enough_were_formatted_in_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The exports format times a few thousand at a time: after CLOCK_TABLE_FROM of them
    the table serves (and gives the same text)."""
    monkeypatch.setattr(findingtable, "_clock_tables", {})
    monkeypatch.setattr(findingtable, "_clock_formatted", {})
    values = np.random.default_rng(5).integers(0, 4 * 10**18, 5_000)
    expected = np.datetime_as_string(values.view("M8[ns]"), unit="s", timezone="UTC").tolist()
    chunks = -(-CLOCK_TABLE_FROM // len(values))
    for chunk in range(chunks + 1):
        assert ("Z" in findingtable._clock_tables) == (chunk >= chunks)
        assert iso_strings(values) == expected


# --------------------------------------------------------------------------- exports


def test_report_exports_are_the_bytes_pandas_and_json_wrote(tmp_path: Any) -> None:
    """The nightly report's CSV and JSON exports, written in chunks with the csv module
    and orjson, are byte for byte what pandas' to_csv and json.dumps wrote."""
    from hygiene.report import exports
    from tests.report.synthetic import synthetic_report

    report = synthetic_report()
    for kind, rows, columns in (
        ("findings", report.findings, exports.FINDING_COLUMNS),
        ("proposals", report.proposals, exports.PROPOSAL_COLUMNS),
        ("kept", report.kept, exports.KEPT_COLUMNS),
        ("scores", report.scores, exports.SCORE_COLUMNS),
    ):
        assert rows, kind
        rows = list(rows)  # the findings are built when read (report.findingrows)
        old = tmp_path / f"{kind}-pandas.csv"
        exports.export_frame(rows, columns).to_csv(old, index=False, encoding="utf-8")
        new = exports.write_csv(tmp_path / f"{kind}.csv", rows, columns)
        assert new.read_bytes() == old.read_bytes(), kind
        expected = json.dumps(rows, ensure_ascii=False, indent=2, sort_keys=True, default=str)
        written = exports._export_json(tmp_path / f"{kind}.json", rows).read_bytes()
        assert written == (expected + "\n").encode(), kind
    assert len(report.findings) > 1000


def test_images_of_a_repository_equal_the_whole_registry_index() -> None:
    """An abandoned repository's evidence lists its images: made from its rows alone, the
    entries are those of the index of every image in the registry."""
    from collections import defaultdict

    from hygiene.planscope import Scope

    inventory = synthetic_inventory(3_000, 30)
    scope = Scope(inventory, bench_config(), NOW)
    expected: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for (account, region, repository, _), info in scope.images.items():
        expected[(account, region, repository)].append(info)
    assert len(expected) == 30
    for key in [*expected, ("000000000000", "us-east-1", "not-there")]:
        want = sorted(expected.get(key, []), key=lambda info: info["digest"])
        assert scope.images_of(key) == want


# --------------------------------------------------------------------------- fast paths


def test_columnar_plan_skips_unread_repositories_like_the_object_path() -> None:
    """Image findings in a repository not read completely propose nothing, on the columns
    as on objects (the plan asks per rule, and per finding only in such a repository)."""
    from hygiene.plancolumns import image_deletions

    inventory = synthetic_inventory(3_000, 30)
    config = bench_config()
    evaluation = evaluate(inventory, config, NOW, in_use=[])
    found = evaluation.findings
    assert isinstance(found, Findings) and found.image is not None
    flagged = sorted(set(found.image.repository))[:3]
    repositories = inventory.repositories
    unread = repositories["name"].astype(str).isin(flagged)
    repositories["scan_error"] = repositories["scan_error"].astype(object)
    repositories.loc[unread, "scan_error"] = "ThrottlingException"
    fast = plan(evaluation, inventory, config, NOW)
    slow = plan(_objects(evaluation), inventory, config, NOW)
    assert [p.to_json() for p in fast] == [p.to_json() for p in slow]
    assert not {p.repository for p in fast} & set(flagged)
    assert any(p.action is Action.DELETE_IMAGES for p in fast)

    image = found.image
    keys = list(zip(image.account, image.region, image.repository, strict=True))
    broken = {k for k in keys if k[2] in flagged}
    asked: list[tuple[str, tuple[str, str, str]]] = []

    def proposes(code: str, key: tuple[str, str, str]) -> Action | None:
        asked.append((code, key))
        return None if key in broken else Action.DELETE_IMAGES

    keep = image_deletions(found.image, proposes, broken)
    assert keep.tolist() == [k not in broken for k in keys]
    assert len(asked) == len(found.image.rules) + sum(k in broken for k in keys)


@SETTINGS
@given(registries(), st.randoms())
def test_repository_selection_of_the_lifecycle_plan_equals_tuples(
    registry: tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]],
    random: Any,
) -> None:
    from hygiene.plancolumns import in_keys

    inventory = builders.inventory_of(*registry[:2])
    images, repositories = inventory.images, inventory.repositories
    for frame, name in ((images, "repository"), (repositories, "name")):
        every = list(zip(frame["account"], frame["region"], frame[name], strict=True))
        keys = {k for k in every if random.random() < 0.5}
        keys.add(("000000000000", "nowhere", "none"))
        expected = [(str(a), str(r), str(n)) in keys for a, r, n in every]
        assert in_keys(frame, name, keys).tolist() == expected
        assert not in_keys(frame, name, set()).any()


def test_json_rows_of_nested_parameters_and_details_are_copies() -> None:
    """Rows built from the columns equal ``Finding.to_json()`` when a message has a
    message as a parameter and the details nest, and no two rows (nor two calls) share
    a mutable value."""
    from hygiene.messages import Message

    inventory = synthetic_inventory(3_000, 30)
    evaluation = evaluate(inventory, bench_config(), NOW, in_use=[])
    found = evaluation.findings
    assert isinstance(found, Findings) and found.image is not None
    image = found.image
    image.message[0] = Message("outer %(inner)s", {"inner": Message("in %(n)s", {"n": 1})})
    image.message[1] = "plain text"
    image.details[2] = {"nested": {"list": [1, 2]}, "flat": "x"}
    image.details[3] = {"flat": "x", "count": 3}
    rows = image.json_rows(0, 6)
    before = [f.to_json() for f in image.findings(0, 6)]  # asdict's deep copies
    assert rows == before
    shared = image.json_rows(0, 6, copy=False)  # for a writer that only encodes them
    assert shared == before
    assert shared[4]["tags"] is image.tags[4] and rows[4]["tags"] is not image.tags[4]
    assert rows[0]["message_params"] == {"inner": {"template": "in %(n)s", "params": {"n": 1}}}
    assert rows[1]["message_template"] == "" and rows[1]["message_params"] == {}
    for row in rows:
        row["message_params"]["x"] = 1
        row["details"]["x"] = 1
        row["tags"].append("x")
    rows[2]["details"]["nested"]["list"].append(3)
    rows[0]["message_params"]["inner"]["params"]["n"] = 2
    assert image.json_rows(0, 6) == before
    assert [f.to_json() for f in image.findings(0, 6)] == before


@pytest.mark.parametrize("level", [1, 2, 3])
def test_list_items_at_any_level_are_the_standard_bytes(level: int) -> None:
    import orjson

    from hygiene.jsonout import list_items

    items: list[Any] = [{"a": [1, {"b": 'c\n"d'}], "e": {}}, [], "x", None, {"f": []}]
    nested: Any = items
    for _ in range(level - 1):
        nested = {"": nested}
    expected = json.dumps(nested, indent=2, ensure_ascii=False).encode()
    head = expected[: expected.index(b"[\n") + 2]
    body = b"".join(list_items([items[:2], [], items[2:]], level=level))
    closing = b"".join(b"\n" + b"  " * depth + b"}" for depth in reversed(range(level - 1)))
    assert head + body + b"\n" + b"  " * (level - 1) + b"]" + closing == expected
    with pytest.raises(ValueError, match="framing"):
        list(list_items([items], level=level, option=orjson.OPT_APPEND_NEWLINE))
