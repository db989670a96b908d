"""What `hygiene approve` says and what it selects, against a real store.

- The line it prints says when the approved proposal will really be carried out: the
  nightly job's apply (``apply.apply_approved``) takes approved proposals only past their
  grace date, safe ones too; a hand-run ``hygiene apply`` takes an approved safe fix
  before (docs/approvals.md §4). In English and in the admins' language (pt_BR).
- ``--namespace NS [--rule CODE] --expect N`` approves (or rejects) nothing when the
  selection is not the N proposals the admin reviewed.

Identities come from the moto server's STS (an IAM Identity Center admin); the store is a
real SQLite file, and for ``--expect`` also a database on the embedded PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hygiene.apply.eligibility import eligibility
from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.config import load_config
from hygiene.model import FixSafety, ProposalState, selection_digest
from hygiene.plan import plan
from hygiene.store import Store
from hygiene.wiring import due_approved_with
from tests import builders
from tests.apply.registry import Seeder
from tests.authz.world import ADMIN_ROLE, deployed_store, rules, signed_in, sts_as


def _world(
    tmp_path: Path, seeder: Seeder, ecr: Any, monkeypatch: Any, url: str | None = None, **changes
) -> dict[str, Any]:
    """Deployed rules (``changes`` applied), a pinned store, and two proposals in
    ``suporte/api``: a safe one (IM001, untagged) and an unsafe deletion (IM002)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", ecr.endpoint_url)
    monkeypatch.delenv("HYGIENE_DEMO_TOKEN", raising=False)
    directory = rules(tmp_path / "rules", ["AdministratorAccess"], **changes)
    url = url or f"sqlite:///{tmp_path / 'hygiene.db'}"
    store = deployed_store(url, directory)
    config = load_config(directory)
    repo = seeder.repo("suporte/api")
    untagged, stale = seeder.image(repo), seeder.image(repo, tag="v1")
    seeder.image(repo, tag="latest")
    findings = [seeder.finding("IM001", repo, untagged), seeder.finding("IM002", repo, stale)]
    proposals = plan(builders.evaluation(findings), seeder.inventory(), config, seeder.now)
    builders.store_proposals(store, proposals, seeder.now - timedelta(days=10))
    by_safety = {p.fix_safety: p.id for p in proposals}
    signed_in(monkeypatch, sts_as(ecr, ADMIN_ROLE, "alice@lsd.ufcg.edu.br"))
    return {
        "store": store,
        "config": config,
        "safe": by_safety[FixSafety.SAFE],
        "unsafe": by_safety[FixSafety.UNSAFE],
        "common": ["--rules-dir", str(directory), "--store", url],
    }


def _notified(store: Store, proposal_id: str, grace_left: timedelta) -> str:
    """Start ``proposal_id``'s grace period so that ``grace_left`` of it remains (from
    the wall clock: the command reads it); its grace date as the CLI prints it."""
    days = timedelta(days=store.settings.grace_days)
    store.mark_notified(datetime.now(UTC) + grace_left - days, ids=[proposal_id])
    grace = store.get(proposal_id).proposal.grace_until  # type: ignore[union-attr]
    assert grace is not None
    return grace.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _approve(world: dict[str, Any], which: str, capsys: Any) -> str:
    proposal_id = world[which]
    assert run_cli(cli, ["approve", proposal_id, *world["common"]]) == 0, capsys.readouterr().err
    (line,) = capsys.readouterr().out.splitlines()
    summary = world["store"].get(proposal_id).proposal.summary
    prefix = {"en": "approved", "pt_BR": "aprovada"}[world["config"].policy.report.locale]
    head = f"{prefix} {proposal_id} ({summary}); "
    assert line.startswith(head), line
    return line.removeprefix(head)


FUTURE = timedelta(days=3)
PAST = timedelta(days=-2)

# (safety, grace) → (English, pt_BR); {date} is the grace date, as the CLI prints dates
NIGHTLY_APPLIES_APPROVED = {
    ("safe", FUTURE): (
        "applies at the next hand-run `hygiene apply`; the nightly job's apply waits for its "
        "grace date ({date} UTC)",
        "será aplicada no próximo `hygiene apply` executado à mão; o apply da execução "
        "noturna espera o fim do prazo de carência ({date} UTC)",
    ),
    ("safe", None): (
        "applies at the next hand-run `hygiene apply`; the nightly job's apply waits for its "
        "grace date, which starts once a notice has reached its owners",
        "será aplicada no próximo `hygiene apply` executado à mão; o apply da execução "
        "noturna espera o fim do prazo de carência, que começa quando um aviso chega aos "
        "responsáveis",
    ),
    ("safe", PAST): (
        "applies at the next apply (a hand-run `hygiene apply`, or the nightly job's)",
        "será aplicada no próximo apply (um `hygiene apply` executado à mão, ou o da execução "
        "noturna)",
    ),
    ("unsafe", FUTURE): (
        "applies not before {date} UTC (its grace date)",
        "será aplicada não antes de {date} UTC (fim do prazo de carência)",
    ),
    ("unsafe", None): (
        "applies once a notice has reached its owners and its grace period has passed",
        "será aplicada quando um aviso tiver chegado aos responsáveis e o prazo de carência "
        "tiver terminado",
    ),
    ("unsafe", PAST): (
        "applies at the next apply (its grace date, {date} UTC, has passed)",
        "será aplicada no próximo apply (o prazo de carência terminou em {date} UTC)",
    ),
}


@pytest.mark.parametrize("locale", ["en", "pt_BR"])
@pytest.mark.parametrize(
    ("safety", "grace_left"),
    list(NIGHTLY_APPLIES_APPROVED),
    ids=[
        f"{s}-{ {FUTURE: 'future', None: 'none', PAST: 'past'}[g] }"
        for s, g in NIGHTLY_APPLIES_APPROVED
    ],
)
def test_approve_says_when_the_proposal_will_be_carried_out(
    locale: str,
    safety: str,
    grace_left: timedelta | None,
    tmp_path,
    seeder,
    ecr,
    monkeypatch,
    capsys,
) -> None:
    world = _world(
        tmp_path, seeder, ecr, monkeypatch,
        apply={"apply_approved": True}, report={"locale": locale},
    )  # fmt: skip
    date = _notified(world["store"], world[safety], grace_left) if grace_left else ""
    english, portuguese = NIGHTLY_APPLIES_APPROVED[(safety, grace_left)]
    expected = {"en": english, "pt_BR": portuguese}[locale].format(date=date)
    assert _approve(world, safety, capsys) == expected


def test_an_approved_safe_fix_waits_for_its_grace_date_in_the_nightly_apply_only(
    tmp_path, seeder, ecr, monkeypatch, capsys
) -> None:
    """What the message says is what apply does: the nightly job's selection leaves an
    approved safe fix out until its grace date; a hand-run apply may take it now."""
    world = _world(tmp_path, seeder, ecr, monkeypatch, apply={"apply_approved": True})
    store: Store = world["store"]
    _notified(store, world["safe"], FUTURE)
    assert "nightly job's apply waits for its grace date" in _approve(world, "safe", capsys)
    now = datetime.now(UTC)
    assert world["safe"] not in {p.id for p in due_approved_with(store)(now)}
    assert world["safe"] in {p.id for p in due_approved_with(store)(now + FUTURE * 2)}
    stored = store.get(world["safe"])
    assert stored is not None and stored.state == ProposalState.APPROVED
    assert eligibility(stored, world["config"], now)[0]  # hand-run apply: eligible now


@pytest.mark.parametrize("locale", ["en", "pt_BR"])
def test_with_apply_approved_off_only_a_hand_run_apply_carries_it_out(
    locale: str, tmp_path, seeder, ecr, monkeypatch, capsys
) -> None:
    """The shipped configuration: the nightly job applies no approved proposal."""
    world = _world(tmp_path, seeder, ecr, monkeypatch, report={"locale": locale})
    assert world["config"].policy.apply.apply_approved is False
    date = _notified(world["store"], world["unsafe"], FUTURE)
    safe, unsafe = _approve(world, "safe", capsys), _approve(world, "unsafe", capsys)
    if locale == "en":
        assert safe == (
            "applies at the next hand-run `hygiene apply` (apply.apply_approved is off: the "
            "nightly job applies no approved proposal)"
        )
        assert unsafe == (
            f"applies not before {date} UTC (its grace date); then by a hand-run "
            "`hygiene apply` only (apply.apply_approved is off: the nightly job applies no "
            "approved proposal)"
        )
    else:
        assert safe == (
            "será aplicada no próximo `hygiene apply` executado à mão (apply.apply_approved "
            "está desligado: a execução noturna não aplica propostas aprovadas)"
        )
        assert unsafe == (
            f"será aplicada não antes de {date} UTC (fim do prazo de carência); e então só "
            "por um `hygiene apply` executado à mão (apply.apply_approved está desligado: a "
            "execução noturna não aplica propostas aprovadas)"
        )


# --------------------------------------------------------------------------- --expect


def _decisions_and_audit(store: Store) -> tuple[Any, ...]:
    rows = store.proposals()
    return (
        {s.id: s.state for s in rows},
        store.decisions(),
        [(e.id, e.outcome, e.proposal_id) for e in store.audit_log()],
    )


def test_expect_n_approves_nothing_when_the_selection_has_another_size(
    store_url: str, tmp_path, seeder, ecr, monkeypatch, capsys
) -> None:
    """The admin reviewed one proposal of suporte (the report showed one); a second one
    appeared since. `--expect 1` refuses the lot, says how many matched, exit code 2."""
    world = _world(tmp_path, seeder, ecr, monkeypatch, url=store_url)
    store: Store = world["store"]
    before = _decisions_and_audit(store)
    args = ["approve", "--namespace", "suporte", "--expect", "1", *world["common"]]
    assert run_cli(cli, args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--expect 1, but 2 proposed proposal(s) match in namespace 'suporte'" in captured.err
    assert "nothing was decided" in captured.err
    assert "hygiene proposals --state proposed --namespace suporte" in captured.err
    assert _decisions_and_audit(store) == before
    assert set(before[0].values()) == {ProposalState.PROPOSED}

    # the count the admin reviewed, and a narrower selection that has it, go through
    args = ["approve", "--namespace", "suporte", "--rule", "IM002", "--expect", "1"]
    assert run_cli(cli, [*args, *world["common"]]) == 0
    assert capsys.readouterr().out.startswith(f"approved {world['unsafe']} ")
    assert store.get(world["unsafe"]).state == ProposalState.APPROVED  # type: ignore[union-attr]
    assert store.get(world["safe"]).state == ProposalState.PROPOSED  # type: ignore[union-attr]


def test_expect_holds_reject_too_and_goes_with_a_namespace_only(
    tmp_path, seeder, ecr, monkeypatch, capsys
) -> None:
    world = _world(tmp_path, seeder, ecr, monkeypatch)
    store: Store = world["store"]
    before = _decisions_and_audit(store)
    reject = ["reject", "--reason", "kept for the audit", *world["common"]]
    assert run_cli(cli, [*reject, "--namespace", "suporte", "--expect", "3"]) == 2
    err = capsys.readouterr().err
    assert "--expect 3, but 2 proposed/approved proposal(s) match" in err
    assert "--state proposed --state approved --namespace suporte" in err
    assert run_cli(cli, ["approve", world["safe"], "--expect", "1", *world["common"]]) == 2
    assert "--expect goes with --namespace" in capsys.readouterr().err
    assert run_cli(cli, [*reject, world["safe"], "--expect", "1"]) == 2
    assert "--expect goes with --namespace" in capsys.readouterr().err
    assert _decisions_and_audit(store) == before

    assert run_cli(cli, [*reject, "--namespace", "suporte", "--expect", "2"]) == 0
    assert {s.state for s in store.proposals()} == {ProposalState.REJECTED}


def test_the_admin_reports_command_expects_what_it_shows_by_repository(
    tmp_path, seeder, ecr, monkeypatch, capsys
) -> None:
    """The nightly report's command for a group carries --expect with the group's count,
    grouped by the repository's namespace (not a stored field that could say another);
    run after another proposal appeared, it approves nothing."""
    from hygiene.report.actions import approval_groups

    world = _world(tmp_path, seeder, ecr, monkeypatch)
    store: Store = world["store"]
    shown = [{**s.proposal.to_json(), "namespace": "ml"} for s in store.proposals()]
    commands = {g.rule: g.command for g in approval_groups(shown)}
    assert commands == {
        "IM001": "hygiene approve --namespace suporte --rule IM001 --expect 1:"
        + selection_digest([world["safe"]]),
        "IM002": "hygiene approve --namespace suporte --rule IM002 --expect 1:"
        + selection_digest([world["unsafe"]]),
    }
    repo = seeder.repo("suporte/web")  # tonight's scan: a stale image in another repository
    newcomer = seeder.image(repo, tag="v0")
    later = plan(
        builders.evaluation([seeder.finding("IM002", repo, newcomer)]),
        seeder.inventory(),
        world["config"],
        seeder.now,
    )
    builders.store_proposals(store, later, seeder.now)
    before = _decisions_and_audit(store)
    command = commands["IM002"].split()[1:]
    assert run_cli(cli, [*command, *world["common"]]) == 2
    err = capsys.readouterr().err
    assert f"--expect 1:{selection_digest([world['unsafe']])}, but 2 proposed" in err
    assert f"(new since: {later[0].id})" in err
    assert _decisions_and_audit(store) == before
