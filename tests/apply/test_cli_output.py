"""What the admin commands print: apply's totals and waiting items, bulk rejection, and
tables that fit the terminal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.model import Action, FixSafety, ProposalState
from hygiene.store import Store
from tests import builders
from tests.apply.registry import OCI_MANIFEST, Seeder
from tests.authz.world import ADMIN_ROLE, DEVELOPER_ROLE, OWNER_OF_SUPORTE, signed_in, sts_as


def _common(ecr: Any, monkeypatch: Any, seeded: dict[str, Any]) -> list[str]:
    """Signed in as an admin (IAM Identity Center, AdministratorAccess); the CLI options."""
    signed_in(monkeypatch, sts_as(ecr, ADMIN_ROLE, "alice@lsd.ufcg.edu.br"))
    return list(seeded["common"])


def waiting_proposals(count: int) -> list[Any]:
    """Unsafe proposals nobody approved, each with its own grace date."""
    now = datetime.now(UTC)
    return [
        builders.proposal(
            Action.DELETE_IMAGES,
            f"ml/r{n:02d}",
            target={"digests": [f"sha256:{n:064x}"]},
            evidence={"images": [{"digest": f"sha256:{n:064x}", "tags": [], "bytes": 1}]},
            rule_codes=("IM002",),
            fix_safety=FixSafety.UNSAFE,
            bytes=1,
            state=ProposalState.PROPOSED,
            grace_until=now + timedelta(days=n + 1),
        )
        for n in range(15)
    ][:count]


def test_dry_run_says_would_delete_and_totals_what_it_would_do(
    seeded, ecr, monkeypatch, capsys
) -> None:
    common = _common(ecr, monkeypatch, seeded)
    assert run_cli(cli, ["approve", seeded["id"], *common]) == 0
    capsys.readouterr()
    assert run_cli(cli, ["apply", "--dry-run", *common]) == 0
    out = capsys.readouterr().out
    assert f"{seeded['id']}  suporte/api: would delete 2 image(s), " in out
    assert ": applied" not in out
    assert out.strip().splitlines()[-1].startswith("dry run: would delete 2 image(s) (")
    assert "in 1 proposal(s); skipped 0 images; 0 failed; 0 not applied now" in out


def test_apply_totals_deleted_skipped_by_reason_and_bytes(
    seeded, seeder: Seeder, ecr, monkeypatch, capsys
) -> None:
    common = _common(ecr, monkeypatch, seeded)
    assert run_cli(cli, ["approve", seeded["id"], *common]) == 0
    # one of the two images got a tag after the proposal: apply keeps it
    tagged = seeded["digests"][0]
    seeder.backend.put_image(seeded["repo"], seeder.manifests[tagged], "v9", OCI_MANIFEST, tagged)
    capsys.readouterr()
    assert run_cli(cli, ["apply", *common]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("deleted 1 image(s) (") and "in 1 proposal(s)" in summary
    assert "skipped 1 image(s) (1 tagged since the proposal)" in summary
    assert summary.endswith("0 failed; 0 not applied now")
    assert seeder.live_digests(seeded["repo"]) == {tagged, seeded["kept"]}


def test_every_waiting_proposal_is_listed_with_its_date(seeded, ecr, monkeypatch, capsys) -> None:
    store: Store = seeded["store"]
    waiting = waiting_proposals(15)
    now = datetime.now(UTC)
    store.upsert_proposals(waiting, now, complete=False)
    for n, proposal in enumerate(waiting[:10]):  # owners told on different days
        store.mark_notified(now - timedelta(days=n), ids=[proposal.id])
    common = _common(ecr, monkeypatch, seeded)
    assert run_cli(cli, ["apply", "--dry-run", *common]) == 0
    out = capsys.readouterr().out
    assert "not applied now (16):" in out  # 15 + the seeded one, none hidden
    lines = [line for line in out.splitlines() if "grace until" in line]
    assert len(lines) == 16
    for proposal in waiting:
        assert any(proposal.id in line for line in lines)
    assert "… and" not in out
    dates = [line.split("grace until ")[1][:16] for line in lines if "no date" not in line]
    assert dates == sorted(dates)  # soonest first


def test_admins_reject_a_whole_rule_of_a_namespace(seeded, ecr, monkeypatch, capsys) -> None:
    store: Store = seeded["store"]
    common = _common(ecr, monkeypatch, seeded)
    code = run_cli(
        cli, ["reject", "--namespace", "suporte", "--rule", "IM002", "--reason", "no", *common]
    )
    assert code == 0, capsys.readouterr().err
    assert f"rejected {seeded['id']}" in capsys.readouterr().out
    assert store.get(seeded["id"]).state == ProposalState.REJECTED
    (decision,) = store.approvals(seeded["id"])
    assert decision["approver"].endswith("/alice@lsd.ufcg.edu.br")


def test_owners_object_by_id_not_by_whole_rules(seeded, ecr, monkeypatch, capsys) -> None:
    store: Store = seeded["store"]
    signed_in(monkeypatch, sts_as(ecr, DEVELOPER_ROLE, OWNER_OF_SUPORTE))  # owns suporte
    args = ["reject", "--namespace", "suporte", "--reason", "x", *seeded["common"]]
    assert run_cli(cli, args) == 4
    assert store.get(seeded["id"]).state == ProposalState.PROPOSED
    assert run_cli(cli, ["reject", seeded["id"], "--reason", "x", *seeded["common"]]) == 0


def test_rejecting_a_finished_proposal_says_nothing_was_rejected(
    seeded, ecr, monkeypatch, capsys
) -> None:
    store: Store = seeded["store"]
    store.set_state(seeded["id"], ProposalState.APPLIED, "done")
    common = _common(ecr, monkeypatch, seeded)
    assert run_cli(cli, ["reject", seeded["id"], "--reason", "late", *common]) == 2
    err = capsys.readouterr().err
    assert "nothing was rejected" in err and "rejectd" not in err


@pytest.mark.parametrize("command", [["proposals"], ["audit"], ["runs"]])
def test_tables_fit_an_80_column_terminal(seeded, ecr, monkeypatch, capsys, command) -> None:
    store: Store = seeded["store"]
    store.upsert_proposals(waiting_proposals(3), datetime.now(UTC), complete=False)
    store.audit("approve", "ok", detail="a long detail " * 10)
    common = _common(ecr, monkeypatch, seeded)
    monkeypatch.setenv("COLUMNS", "80")
    assert run_cli(cli, [*command, *common]) == 0
    out = capsys.readouterr().out
    assert out.strip()
    too_wide = [line for line in out.splitlines() if len(line) > 80]
    assert too_wide == []
    if command == ["proposals"]:
        assert seeded["id"] in out  # ids are never cut
        assert "widen the terminal" in out  # the columns left out are named
