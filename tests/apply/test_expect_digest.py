"""``--expect N:DIGEST``: an approval by ``--namespace`` reaches exactly the proposals the
admin reviewed, not others of the same number.

A proposal's id is a hash of its action, target and evidence: new evidence in the same
repository gives a new id and the old proposal expires, so the count stays. The nightly
admin report prints ``--expect N:DIGEST`` (DIGEST: :func:`hygiene.model.selection_digest`
of the ids its command selects); a live selection with another digest decides nothing
(exit 2). Real store (SQLite and the embedded PostgreSQL), real STS (moto), the report
rendered by the real templates.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from typing import Any

import pytest

from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.cli.decisions import Expectation, what_changed
from hygiene.model import ProposalState, selection_digest
from hygiene.plan import plan
from hygiene.report import render_nightly
from hygiene.report.data import build_report_data
from hygiene.store import Store
from tests import builders
from tests.apply.test_approve_cli import _decisions_and_audit, _world
from tests.report import sample

EXPECT = re.compile(r"--expect (\d+):([0-9a-f]{16})")


def _rendered_commands(world: dict[str, Any]) -> tuple[list[list[str]], str]:
    """The approve commands the nightly admin report prints for the store's proposals
    (rendered by the real templates), and the report's text."""
    store: Store = world["store"]
    document = sample.scan_json()
    document["proposals"] = [s.proposal.to_json() for s in store.proposals()]
    data = build_report_data(document, inventory=sample.inventory())
    report = render_nightly(data, world["config"])
    lines = [line.strip() for line in report.text.splitlines()]
    commands = [line.removeprefix("$ ").split()[1:] for line in lines if line.startswith("$ ")]
    assert commands and all(c[0] == "approve" for c in commands), commands
    return commands, report.text


REPO = "suporte/api"


def _replanned(world: dict[str, Any], seeder: Any, findings: list[tuple[str, str]]) -> list[Any]:
    """Tonight's scan of suporte/api: ``findings`` as (rule, digest), planned and stored;
    returns the proposals. The digests ``"untagged"`` and ``"stale"`` stand for the
    images of the world's safe and unsafe proposals."""
    store: Store = world["store"]
    (untagged,) = store.get(world["safe"]).proposal.target["digests"]  # type: ignore[union-attr]
    (stale,) = store.get(world["unsafe"]).proposal.target["digests"]  # type: ignore[union-attr]
    named = {"untagged": untagged, "stale": stale}
    evaluation = builders.evaluation(
        [seeder.finding(rule, REPO, named.get(digest, digest)) for rule, digest in findings]
    )
    later = plan(evaluation, seeder.inventory(), world["config"], seeder.now)
    builders.store_proposals(store, later, seeder.now)
    return later


def _later_plan(world: dict[str, Any], seeder: Any) -> tuple[str, str]:
    """Tonight's scan: a second stale image in suporte/api. Its IM002 proposal gets a new
    id (new evidence) and the one the admin reviewed expires; IM001's stays. Returns
    (old IM002 id, new IM002 id)."""
    older = seeder.image(REPO, tag="v0")
    later = _replanned(world, seeder, [("IM001", "untagged"), ("IM002", "stale"), ("IM002", older)])
    (new,) = [p.id for p in later if "IM002" in p.rule_codes]
    return world["unsafe"], new


def test_the_reports_commands_approve_exactly_what_it_shows(
    store_url: str, tmp_path, seeder, ecr, monkeypatch, capsys
) -> None:
    world = _world(tmp_path, seeder, ecr, monkeypatch, url=store_url)
    store: Store = world["store"]
    commands, text = _rendered_commands(world)
    shown = {p.id for p in store.proposals(state="proposed") if p.id in text}
    assert shown == {world["safe"], world["unsafe"]}
    for command in commands:
        count, digest = EXPECT.search(" ".join(command)).groups()  # type: ignore[union-attr]
        assert int(count) == 1 and len(digest) == 16
        assert run_cli(cli, [*command, *world["common"]]) == 0, capsys.readouterr().err
    approved = {s.id for s in store.proposals(state="approved")}
    assert approved == shown
    decisions = store.decisions()
    assert set(decisions) == shown
    assert {d.decision for ds in decisions.values() for d in ds} == {"approved"}


def test_a_replaced_proposal_keeps_the_count_but_is_not_approved(
    store_url: str, tmp_path, seeder, ecr, monkeypatch, capsys
) -> None:
    """The admin read the report; tonight's scan replaced the IM002 proposal by one with
    new evidence (same count, 1). The report's command approves nothing, says which id
    is new and which is gone, exit 2; plain --expect 1 (a human's count) still passes."""
    world = _world(tmp_path, seeder, ecr, monkeypatch, url=store_url)
    store: Store = world["store"]
    commands, _ = _rendered_commands(world)
    (im002,) = [c for c in commands if "IM002" in c]
    old, new = _later_plan(world, seeder)
    assert old != new
    assert store.get(old).state == ProposalState.EXPIRED  # type: ignore[union-attr]
    assert len(store.proposals(state="proposed", namespace="suporte", rule="IM002")) == 1
    before = _decisions_and_audit(store)

    assert run_cli(cli, [*im002, *world["common"]]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "not the ones reviewed" in captured.err and "nothing was decided" in captured.err
    assert f"new since: {new}" in captured.err
    assert f"no longer proposed: {old} (expired)" in captured.err
    assert _decisions_and_audit(store) == before
    assert store.get(new).state == ProposalState.PROPOSED  # type: ignore[union-attr]

    plain = [*im002[:-1], "1"]  # --expect 1: the count only, as before
    assert run_cli(cli, [*plain, *world["common"]]) == 0, capsys.readouterr().err
    assert store.get(new).state == ProposalState.APPROVED  # type: ignore[union-attr]


def test_reject_holds_to_the_digest_too(tmp_path, seeder, ecr, monkeypatch, capsys) -> None:
    world = _world(tmp_path, seeder, ecr, monkeypatch)
    store: Store = world["store"]
    both = selection_digest([world["safe"], world["unsafe"]])
    reject = ["reject", "--reason", "kept for the audit", "--namespace", "suporte"]
    before = _decisions_and_audit(store)
    # the admin reviewed the safe one only: the unsafe one is new to them
    reviewed = selection_digest([world["safe"]])
    assert run_cli(cli, [*reject, "--expect", f"1:{reviewed}", *world["common"]]) == 2
    err = capsys.readouterr().err
    assert "2 proposed/approved proposal(s) match in namespace 'suporte'" in err
    assert f"(new since: {world['unsafe']})" in err
    # same count, a proposal the store does not know: what changed cannot be said
    wrong = selection_digest([world["safe"], "p-000000000000"])
    assert run_cli(cli, [*reject, "--expect", f"2:{wrong}", *world["common"]]) == 2
    err = capsys.readouterr().err
    assert "the 2 proposed/approved proposal(s) that match in namespace 'suporte' are not" in err
    assert "new since" not in err
    assert _decisions_and_audit(store) == before
    assert run_cli(cli, [*reject, "--expect", f"2:{both}", *world["common"]]) == 0
    assert {s.state for s in store.proposals()} == {ProposalState.REJECTED}


def test_the_reports_commands_run_top_to_bottom_approve_each_proposal_once(
    store_url: str, tmp_path, seeder, ecr, monkeypatch, capsys
) -> None:
    """IM002 flags the untagged image too: the safe proposal (IM001, IM002) is listed
    under IM001, and IM002's own command would also select it. Once IM001's command has
    approved it, that selection is no longer the one an --expect pinned (it would approve
    nothing), so the report approves IM002's group by its ids: every command it prints,
    run top to bottom, succeeds and approves each proposal once."""
    world = _world(tmp_path, seeder, ecr, monkeypatch, url=store_url)
    store: Store = world["store"]
    later = _replanned(
        world, seeder, [("IM001", "untagged"), ("IM002", "untagged"), ("IM002", "stale")]
    )
    both = {p.id for p in later}
    assert both == {s.id for s in store.proposals(state="proposed")} and len(both) == 2
    (shared,) = [p.id for p in later if set(p.rule_codes) == {"IM001", "IM002"}]
    commands, text = _rendered_commands(world)
    assert "Approved by id: this rule's own command would also select proposals" in text
    assert len(commands) == 2
    im001, by_id = commands
    assert im001[-1] == f"1:{selection_digest([shared])}" and "IM001" in im001
    assert by_id == ["approve", *sorted(both - {shared})]  # IM002's own, by id
    for command in commands:
        assert run_cli(cli, [*command, *world["common"]]) == 0, capsys.readouterr().err
    assert {s.id for s in store.proposals(state="approved")} == both
    decisions = store.decisions()
    assert {i: [d.decision for d in ds] for i, ds in decisions.items()} == {
        i: ["approved"] for i in both
    }


@pytest.mark.parametrize("value", ["1:", "1:abc", "1:" + "G" * 16, "x", "-1", "1:" + "a" * 17])
def test_a_malformed_expect_is_a_usage_error(
    value: str, tmp_path, seeder, ecr, monkeypatch, capsys
) -> None:
    world = _world(tmp_path, seeder, ecr, monkeypatch)
    before = _decisions_and_audit(world["store"])
    args = ["approve", "--namespace", "suporte", "--expect", value, *world["common"]]
    assert run_cli(cli, args) == 2
    assert "Invalid value for '--expect'" in capsys.readouterr().err  # a usage error
    assert _decisions_and_audit(world["store"]) == before


@pytest.mark.integration  # starts a shell
def test_the_digest_is_the_documented_one() -> None:
    """SHA-256 of the sorted ids joined by newlines, first 16 hex digits, as the shell
    line in docs/approvals.md computes it."""
    ids = ["p-91c0ffee1234", "p-3f2a9c1d0b7e", "p-0123456789ab"]
    text = "\n".join(sorted(ids)).encode()
    assert selection_digest(ids) == hashlib.sha256(text).hexdigest()[:16]
    assert selection_digest(reversed(ids)) == selection_digest(ids)
    shell = subprocess.run(
        ["sh", "-c", "printf '%s\\n' \"$@\" | LC_ALL=C sort | head -c -1 | sha256sum", "-", *ids],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout[:16] == selection_digest(ids)


def test_what_changed_finds_small_changes_only() -> None:
    reviewed = ["p-a", "p-b", "p-c"]
    expect = Expectation(3, selection_digest(reviewed))
    assert what_changed(["p-a", "p-b", "p-x"], ["p-c"], expect) == (["p-x"], ["p-c"])
    assert what_changed(["p-a", "p-b"], ["p-z", "p-c"], expect) == ([], ["p-c"])
    assert what_changed(["p-a", "p-b", "p-c", "p-x"], [], Expectation(3, expect.digest)) == (
        ["p-x"],
        [],
    )
    assert what_changed(["p-x", "p-y", "p-z"], ["p-q"], expect) is None  # not explained
    assert what_changed(["p-a"], ["p-b"], Expectation(1)) is None  # no digest: unknown
    assert Expectation.parse("12") == Expectation(12)
    assert str(Expectation.parse(f"3:{expect.digest}")) == f"3:{expect.digest}"
