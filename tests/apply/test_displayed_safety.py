"""A proposal's safety is shown as apply takes it, not as the ``fix_safety`` column says.

The column decides whether a fix runs without an approval or a grace period, and a
writer of the store (the owner's login, see cron/postgres/grants.sql) can set it. Apply
runs a proposal as a safe fix only when a rule whose fix is safe makes it one
(:mod:`hygiene.fixsafety`); every reader (``hygiene proposals`` in its three formats,
``approve``'s message, the reports and their exports) shows that, and names the stored
column in ``altered``. The store is real (SQLite and the embedded PostgreSQL, tampered
with SQL); the identity comes from the moto server's STS.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from typing import Any

import pytest

from hygiene.authz.decisions import verify_approval
from hygiene.authz.policy import TrustPolicy
from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.fixsafety import content_safety, shown_safety
from hygiene.model import Action, FixSafety, ProposalState
from hygiene.report.render import render_nightly
from hygiene.scan import evaluate_rules, plan_all
from hygiene.store import Store
from hygiene_demo.lab import plan_lab_registry
from tests import builders
from tests.apply.tamper import tamper as _tamper
from tests.apply.test_approve_cli import _world
from tests.report import sample

SAFE_WORDING = "applies at the next hand-run `hygiene apply`"
UNSAFE_WORDING = "applies once a notice has reached its owners and its grace period has passed"


def _listed(world: dict[str, Any], fmt: str, capsys: Any) -> tuple[str, str]:
    assert run_cli(cli, ["proposals", "--format", fmt, *world["common"]]) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_a_deletion_marked_safe_in_the_store_is_shown_unsafe_everywhere(
    tmp_path, seeder, ecr, monkeypatch, capsys, store_url
) -> None:
    world = _world(tmp_path, seeder, ecr, monkeypatch, url=store_url)
    store: Store = world["store"]
    deletion, honest_safe = world["unsafe"], world["safe"]
    _tamper(store, deletion, fix_safety=FixSafety.SAFE.value)
    stored = store.get(deletion)
    assert stored is not None and stored.proposal.fix_safety is FixSafety.SAFE  # as stored
    assert stored.safety is FixSafety.UNSAFE and stored.altered == ("fix_safety",)

    out, err = _listed(world, "json", capsys)
    listed = {p["id"]: p for p in json.loads(out)}
    assert listed[deletion]["fix_safety"] == "unsafe"
    assert listed[deletion]["altered"] == ["fix_safety"]
    assert listed[honest_safe]["fix_safety"] == "safe" and listed[honest_safe]["altered"] == []
    assert f"warning: {deletion}: the stored fix_safety differ(s)" in err
    assert "fix_safety: stored safe, shown unsafe" in err
    assert honest_safe not in err

    out, _ = _listed(world, "csv", capsys)
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(out))}
    assert (rows[deletion]["fix_safety"], rows[honest_safe]["fix_safety"]) == ("unsafe", "safe")

    monkeypatch.setenv("COLUMNS", "250")  # wide enough for the safety column
    out, _ = _listed(world, "table", capsys)
    (line,) = [row for row in out.splitlines() if deletion in row]
    cells = [cell.strip() for cell in line.split("│")]
    assert "unsafe" in cells and "safe" not in cells

    # approve says when apply will really run it: an unsafe fix waits for its grace period
    assert run_cli(cli, ["approve", deletion, *world["common"]]) == 0
    captured = capsys.readouterr()
    assert f"); {UNSAFE_WORDING}; " in captured.out, captured.out
    assert SAFE_WORDING not in captured.out
    assert "fix_safety: stored safe, shown unsafe" in captured.err
    # the approval is recorded on the proposal as stored, and counts (nothing else changes)
    approved = store.get(deletion)
    assert approved is not None and approved.state is ProposalState.APPROVED
    policy = TrustPolicy.from_config(world["config"])
    verdict = verify_approval(
        approved.proposal, store.decisions([deletion])[deletion], policy, None
    )
    assert verdict.counts, verdict.why


def test_an_honest_safe_fix_is_still_shown_and_announced_safe(
    tmp_path, seeder, ecr, monkeypatch, capsys
) -> None:
    world = _world(tmp_path, seeder, ecr, monkeypatch)
    safe = world["safe"]
    stored = world["store"].get(safe)
    assert stored.safety is FixSafety.SAFE and stored.altered == ()  # type: ignore[union-attr]
    assert run_cli(cli, ["approve", safe, *world["common"]]) == 0
    captured = capsys.readouterr()
    assert SAFE_WORDING in captured.out and "warning" not in captured.err


def test_a_safe_fix_marked_unsafe_is_shown_unsafe_as_apply_takes_it(
    tmp_path, seeder, ecr, monkeypatch
) -> None:
    """Apply never runs a fix as safer than its column says: one marked unsafe (or manual)
    waits for an approval and its grace period, so it is shown as marked (the column is
    what it shows: not altered)."""
    world = _world(tmp_path, seeder, ecr, monkeypatch)
    store: Store = world["store"]
    _tamper(store, world["safe"], fix_safety=FixSafety.UNSAFE.value)
    stored = store.get(world["safe"])
    assert stored is not None and stored.safety is FixSafety.UNSAFE and stored.altered == ()
    _tamper(store, world["safe"], fix_safety=FixSafety.MANUAL.value)
    stored = store.get(world["safe"])
    assert stored is not None and stored.safety is FixSafety.MANUAL and stored.altered == ()


def test_the_reports_and_exports_show_the_safety_apply_takes(
    tmp_path, seeder, ecr, monkeypatch, config
) -> None:
    """The nightly report reads tonight's proposals through ``as_stored`` (the stored
    ``fix_safety``): the report's groups and its proposals export show the derived one."""
    world = _world(tmp_path, seeder, ecr, monkeypatch)
    store: Store = world["store"]
    deletion = world["unsafe"]
    honest = [s.proposal for s in store.proposals()]
    _tamper(store, deletion, fix_safety=FixSafety.SAFE.value)
    tonight = store.as_stored(honest)
    assert {p.id: p.fix_safety for p in tonight}[deletion] is FixSafety.SAFE  # as stored
    # tonight's report of a sample registry, with these proposals (made as jobs.py makes
    # the report's: each proposal's JSON)
    data = replace(sample.report_data(), proposals=[p.to_json() for p in tonight])
    shown = {p["id"]: p for p in data.proposals}
    assert shown[deletion]["fix_safety"] == "unsafe"
    assert shown[deletion]["altered"] == ["fix_safety"]
    assert shown[world["safe"]]["fix_safety"] == "safe" and "altered" not in shown[world["safe"]]
    report = render_nightly(data, config)
    exported = {row["id"]: row["fix_safety"] for row in report.proposals}
    assert exported == {deletion: "unsafe", world["safe"]: "safe"}


def test_every_planned_proposal_is_shown_with_the_safety_the_plan_gave_it(config, now) -> None:
    """The derivation is the plan's: for every proposal the plan makes of the lab registry
    (safe and unsafe image deletions, scan on push, lifecycle policies, repository
    deletions), the content says the safety the plan stored, and nothing is altered."""
    manifest = plan_lab_registry(config.projects, now)
    inventory = builders.seeded_inventory(manifest, run_id="r-test", now=now)
    proposals = plan_all(evaluate_rules(inventory, config, now), inventory, config, now)
    assert {p.fix_safety for p in proposals} == {FixSafety.SAFE, FixSafety.UNSAFE}
    for p in proposals:
        assert content_safety(p.action, p.target, p.evidence) is p.fix_safety, p.id
        assert shown_safety(p.fix_safety, p.action, p.target, p.evidence) is p.fix_safety


@pytest.mark.parametrize(
    ("codes", "digests", "expected"),
    [
        ({"a": ["IM001"], "b": ["IM004"]}, ["a", "b"], FixSafety.SAFE),
        ({"a": ["IM001", "IM002"]}, ["a"], FixSafety.SAFE),  # the plan: safe wins a unit
        ({"a": ["IM001"], "b": ["IM002"]}, ["a", "b"], FixSafety.UNSAFE),  # b: unsafe only
        ({"a": ["IM001"]}, ["a", "b"], FixSafety.UNSAFE),  # b: no code at all
        ({}, [], FixSafety.UNSAFE),
        (["IM001"], ["a"], FixSafety.SAFE),  # a plain list: every image's codes
        (["IM001"], [], FixSafety.UNSAFE),  # deletes nothing: no safe fix of anything
        (["IM003"], ["a"], FixSafety.UNSAFE),
        ("IM001", ["a"], FixSafety.UNSAFE),  # not a shape a planner writes
    ],
)
def test_an_image_deletion_is_safe_when_a_safe_rule_flags_each_image(
    codes: Any, digests: list[str], expected: FixSafety
) -> None:
    evidence = {"rule_codes": codes}
    target = {"digests": digests}
    assert content_safety(Action.DELETE_IMAGES, target, evidence) is expected
    assert shown_safety(FixSafety.SAFE, Action.DELETE_IMAGES, target, evidence) is expected
    assert shown_safety(FixSafety.UNSAFE, Action.DELETE_IMAGES, target, evidence) is (
        FixSafety.UNSAFE
    )


@pytest.mark.parametrize("action", list(Action), ids=str)
def test_a_fix_is_safe_only_when_a_safe_rule_proposes_its_action(action: Action) -> None:
    """SC001 (safe) proposes scan on push, IM001 (safe) image deletions, IM002 (unsafe)
    image deletions: a safe rule's code beside another action does not make it safe."""
    target = {"digests": ["a"]}
    shown = {
        code: shown_safety(FixSafety.SAFE, action, target, {"rule_codes": [code]})
        for code in ("IM001", "SC001", "IM002", "RP003")
    }
    assert shown == {
        "IM001": FixSafety.SAFE if action is Action.DELETE_IMAGES else FixSafety.UNSAFE,
        "SC001": FixSafety.SAFE if action is Action.ENABLE_SCAN_ON_PUSH else FixSafety.UNSAFE,
        "IM002": FixSafety.UNSAFE,
        "RP003": FixSafety.UNSAFE,
    }
