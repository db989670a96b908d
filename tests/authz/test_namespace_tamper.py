"""A proposal moved to another namespace in the store's ``namespace`` column.

The approval fingerprint covers the repository, not that column; whoever can write the
store could move ``suporte/api``'s deletion to ``ml`` so that suporte's owners cannot
object and never read it in their weekly report (while ml's report starts its grace).
The namespace of a stored proposal is its repository's: the owner's objection still
blocks the delete, ml's owner cannot object for suporte, and the weekly report still
goes to suporte's owners. Real parts: the embedded registry and its STS, a SQLite store,
a local SMTP server.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from hygiene.apply import apply
from hygiene.authz.identity import Identity
from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.config import load_config
from hygiene.jobs import run_weekly
from hygiene.model import ProposalState
from hygiene.store import Store
from hygiene.wiring import build_job_deps
from tests.apply.registry import Seeder
from tests.authz.world import (
    ADMIN_ROLE,
    DEVELOPER_ROLE,
    MOTO_ACCOUNT,
    OWNER_OF_ML,
    OWNER_OF_SUPORTE,
    mailing_rules,
    signed_in,
    stale_release,
    sts_as,
)


def _moved(store: Store, proposal_id: str, namespace: str | None) -> None:
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE proposals SET namespace = :n WHERE id = :i"),
            {"n": namespace, "i": proposal_id},
        )


def test_the_owners_objection_still_blocks_the_delete(
    seeded, seeder: Seeder, ecr, clients, monkeypatch, capsys, now
) -> None:
    """Approved by an admin, then moved to ml in the column: ml's owner may not object
    for suporte; suporte's owner may, and apply deletes nothing."""
    store: Store = seeded["store"]
    common = seeded["common"]
    alice = Identity(f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/{ADMIN_ROLE}/alice", "sts")
    store.approve([seeded["id"]], alice, now=now)
    _moved(store, seeded["id"], "ml")

    signed_in(monkeypatch, sts_as(ecr, DEVELOPER_ROLE, OWNER_OF_ML))
    assert run_cli(cli, ["reject", seeded["id"], "--reason", "not yours", *common]) == 4
    assert "an owner or member of suporte" in capsys.readouterr().err
    assert store.get(seeded["id"]).state == ProposalState.APPROVED  # type: ignore[union-attr]

    signed_in(monkeypatch, sts_as(ecr, DEVELOPER_ROLE, OWNER_OF_SUPORTE))
    code = run_cli(cli, ["reject", seeded["id"], "--reason", "still used by CI", *common])
    assert code == 0, capsys.readouterr().err
    assert store.get(seeded["id"]).state == ProposalState.REJECTED  # type: ignore[union-attr]

    result = apply(store, clients, load_config(Path(common[1])), now, actor="cron")
    assert result.states == {} and result.events == []  # a rejection is never applied
    assert seeder.live_digests(seeded["repo"]) == {*seeded["digests"], seeded["kept"]}
    assert "deleted" not in {e.outcome for e in store.audit_log(proposal_id=seeded["id"])}


def test_the_weekly_report_still_goes_to_the_right_owners(
    ecr: Any, tmp_path: Path, smtp_server: Any, monkeypatch: Any, now: datetime
) -> None:
    """suporte/api's stale-image deletion, moved to ml in the column before the weekly
    job: suporte's report (to suporte's owner) announces it and starts its grace; ml's
    report (to ml's owner) does not show it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", ecr.endpoint_url)
    seeder = Seeder(ecr, now)
    stale_release(seeder, "suporte/api")
    train = seeder.repo("ml/train")
    seeder.image(train, "v1", days_old=1)
    with smtp_server() as smtp:
        directory = mailing_rules(
            tmp_path / "rules",
            smtp,
            tmp_path / "out",
        )
        config = load_config(directory)
        url = f"sqlite:///{tmp_path / 'hygiene.db'}"
        deps = build_job_deps(config, store_url=url, out_dir=tmp_path / "out")
        # a first weekly job, for ml only: suporte's proposal is stored, nobody told
        assert run_weekly(deps, config, now, namespace="ml", stop=threading.Event()).exit_code == 0
        store = deps.store
        (proposal,) = store.proposals(namespace="suporte", rule="IM002")
        assert proposal.notified_at is None
        _moved(store, proposal.id, "ml")
        smtp.messages.clear()

        deps = build_job_deps(config, store_url=url, out_dir=tmp_path / "out2")
        assert run_weekly(deps, config, now, stop=threading.Event()).exit_code == 0
        wired = deps.context
        shown = {r.namespace: {p["id"] for p in r.proposals} for r in wired.reports}
        assert proposal.id in shown["suporte"]
        assert proposal.id not in shown["ml"]
        to = {m.rcpt_tos[0]: m.message for m in smtp.messages}
        mail = to[OWNER_OF_SUPORTE].get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert proposal.id in mail
        assert proposal.id not in to[OWNER_OF_ML].get_body(("plain",)).get_content()  # type: ignore[union-attr]
        (delivered,) = [d for d in wired.deliveries if d.report == "weekly-suporte"]
        stored = store.get(proposal.id)
        assert stored is not None and stored.notified_at is not None
        assert stored.notified_at >= delivered.at  # grace started by suporte's report


def test_a_report_made_from_saved_json_routes_by_the_repository_too() -> None:
    """`hygiene report weekly --from-json`: the document's ``namespace`` field is data
    anyone could have edited; the repository decides whose report shows a proposal."""
    from types import SimpleNamespace

    from hygiene.report.contexts import namespace_proposals

    data: Any = SimpleNamespace(
        proposals=[
            {"id": "p-moved", "repository": "suporte/api", "namespace": "ml"},
            {"id": "p-train", "repository": "ml/train", "namespace": "ml"},
            {"id": "p-no-repository", "namespace": "ml"},
        ]
    )
    assert [p["id"] for p in namespace_proposals(data, "suporte")] == ["p-moved"]
    assert [p["id"] for p in namespace_proposals(data, "ml")] == ["p-train", "p-no-repository"]
