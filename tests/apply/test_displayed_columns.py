"""What is shown beside a proposal's id is what its fingerprinted content says.

``summary``, ``rule_codes`` and ``bytes`` are displayed by ``approve``, ``reject``,
``hygiene proposals`` and the reports, but the approval fingerprint covers the action,
repository, target and evidence (and ``fix_safety``), not them. A writer of the store
(a PostgreSQL operator login may update ``summary``) dresses a deletion up as something
harmless: every reader shows the values derived from the content
(:mod:`hygiene.proposaltext`) with a warning, and no decision changes. The store is a
real SQLite file, tampered with SQL; the identity comes from the moto server's STS.
"""

from __future__ import annotations

import json

from hygiene.authz.decisions import verify_approval
from hygiene.authz.policy import TrustPolicy
from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.model import Action, FixSafety, ProposalState
from hygiene.proposaltext import displayed
from hygiene.scan import evaluate_rules, plan_all
from hygiene.store import Store
from hygiene_demo.lab import plan_lab_registry
from tests import builders
from tests.apply.tamper import tamper as _tamper
from tests.apply.test_approve_cli import _world

HARMLESS = "enable scan on push for suporte/api"


def test_a_tampered_summary_is_shown_as_the_evidence_says_with_a_warning(
    tmp_path, seeder, ecr, monkeypatch, capsys
) -> None:
    world = _world(tmp_path, seeder, ecr, monkeypatch)
    store: Store = world["store"]
    deletion = world["unsafe"]
    honest = store.get(deletion)
    assert honest is not None and honest.altered == ()
    truth = honest.proposal.summary
    assert truth.startswith("delete 1 image(s) in 1 unit(s) from suporte/api")
    _tamper(store, deletion, summary=HARMLESS, rule_codes=["SC001"], bytes=0)

    # the listing: the derived values, the altered columns named, a warning on stderr
    assert run_cli(cli, ["proposals", "--format", "json", *world["common"]]) == 0
    captured = capsys.readouterr()
    (listed,) = [p for p in json.loads(captured.out) if p["id"] == deletion]
    assert listed["summary"] == truth and listed["rule_codes"] == ["IM002"]
    assert listed["bytes"] == honest.proposal.bytes > 0
    assert listed["altered"] == ["summary", "rule_codes", "bytes"]
    assert f"warning: {deletion}: the stored summary, rule_codes, bytes differ" in captured.err
    assert HARMLESS not in captured.out
    assert run_cli(cli, ["proposals", "--format", "csv", *world["common"]]) == 0
    assert HARMLESS not in capsys.readouterr().out

    # the rule codes select as the evidence says: SC001 does not reach the deletion
    sc001 = ["approve", "--namespace", "suporte", "--rule", "SC001", "--expect", "1"]
    assert run_cli(cli, [*sc001, *world["common"]]) == 2
    assert "but 0 proposed proposal(s) match" in capsys.readouterr().err
    assert store.get(deletion).state == ProposalState.PROPOSED  # type: ignore[union-attr]

    # approve shows the truth, warns, and records the same decision it would have
    assert run_cli(cli, ["approve", deletion, *world["common"]]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"approved {deletion} ({truth}); ")
    assert HARMLESS not in captured.out
    assert f"warning: {deletion}: the stored summary" in captured.err
    stored = store.get(deletion)
    assert stored is not None and stored.state == ProposalState.APPROVED
    policy = TrustPolicy.from_config(world["config"])
    verdict = verify_approval(stored.proposal, store.decisions([deletion])[deletion], policy, None)
    assert verdict.counts, verdict.why

    # reject (an admin's) shows and warns the same way
    reason = ["--reason", "kept", *world["common"]]
    assert run_cli(cli, ["reject", deletion, *reason]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"rejected {deletion} ({truth})\n"
    assert f"warning: {deletion}" in captured.err


def test_the_reports_proposals_are_as_their_content_says(tmp_path, seeder, ecr, monkeypatch):
    """The nightly report reads tonight's proposals through ``as_stored``: the shown
    summary, codes and bytes are the content's, not a tampered column's."""
    world = _world(tmp_path, seeder, ecr, monkeypatch)
    store: Store = world["store"]
    deletion = world["unsafe"]
    honest = store.get(deletion).proposal  # type: ignore[union-attr]
    _tamper(store, deletion, summary=HARMLESS, rule_codes=["SC001"], bytes=0)
    (shown,) = [p for p in store.as_stored([honest]) if p.id == deletion]
    assert (shown.summary, shown.rule_codes, shown.bytes) == (
        honest.summary,
        honest.rule_codes,
        honest.bytes,
    )


def test_a_tampered_safety_voids_the_approval(tmp_path, seeder, ecr, monkeypatch, capsys):
    """``fix_safety`` decides whether the nightly job may apply a fix without approval;
    the fingerprint covers it, so an approved deletion marked safe afterwards no longer
    counts (and apply decides safety from the deployed rules: tests/apply/test_safety_now)."""
    world = _world(tmp_path, seeder, ecr, monkeypatch)
    store: Store = world["store"]
    deletion = world["unsafe"]
    assert run_cli(cli, ["approve", deletion, *world["common"]]) == 0
    capsys.readouterr()
    _tamper(store, deletion, fix_safety=FixSafety.SAFE.value)
    stored = store.get(deletion)
    assert stored is not None and stored.proposal.fix_safety is FixSafety.SAFE
    policy = TrustPolicy.from_config(world["config"])
    verdict = verify_approval(stored.proposal, store.decisions([deletion])[deletion], policy, None)
    assert not verdict.counts and "changed after the approval" in verdict.why


def test_every_planned_proposal_says_what_its_content_says(config, now, tmp_path) -> None:
    """The derivation is the planners' own text: for every proposal the plan makes of the
    lab registry (image deletions, repository changes and deletions, lifecycle policies),
    stored and read back, nothing is altered."""
    manifest = plan_lab_registry(config.projects, now)
    inventory = builders.seeded_inventory(manifest, run_id="r-test", now=now)
    proposals = plan_all(evaluate_rules(inventory, config, now), inventory, config, now)
    assert {p.action for p in proposals} >= {
        Action.DELETE_IMAGES,
        Action.PUT_LIFECYCLE_POLICY,
        Action.ENABLE_SCAN_ON_PUSH,
    }
    for proposal in proposals:
        derived = displayed(
            proposal.action, proposal.repository, proposal.target, proposal.evidence
        )
        assert derived is not None, proposal.id
        assert (derived.summary, derived.rule_codes, derived.bytes) == (
            proposal.summary,
            proposal.rule_codes,
            proposal.bytes,
        ), proposal.id
    with Store(f"sqlite:///{tmp_path / 'lab.db'}") as store:
        builders.store_proposals(store, proposals, now)
        assert [s.id for s in store.proposals() if s.altered] == []
