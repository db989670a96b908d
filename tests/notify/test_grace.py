"""Grace starts only when a notice reached a person (Wired.notify over real deliveries).

* no channel configured: reports stay on disk, no grace date ever (the shipped config);
* a delivery that failed starts nothing;
* the weekly report delivered to a project's owners starts its namespace's grace;
* the nightly report delivered to the admins starts the grace of proposals with no other
  owner: outside any namespace, or in a namespace that is not a registered project.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from hygiene.config import Config
from hygiene.report.render import RenderedReport
from hygiene.scan import RegistryAccess
from hygiene.store import Store
from hygiene.wiring import Wired
from tests import builders
from tests.builders import NOW
from tests.notify.conftest import with_notify


def report(kind: str, namespace: str | None = None) -> RenderedReport:
    return RenderedReport(
        kind=kind,  # type: ignore[arg-type]
        namespace=namespace,
        locale="en",
        subject=f"{kind} {namespace or ''}",
        html="<html><body>report</body></html>",
        text="report",
    )


def wired(config: Config, tmp_path: Path) -> Wired:
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    proposals = [
        builders.proposal(repository=name, digests=["a"])
        for name in ("suporte/api", "suporte-cloud/api", "tcc-joao/x", "nginx")
    ]
    builders.store_proposals(store, proposals)
    wiring = Wired(config, store, RegistryAccess(), out_dir=tmp_path, send=True)
    wiring.proposals = proposals
    wiring.clock = lambda: NOW
    return wiring


def graces(wiring: Wired) -> dict[str, Any]:
    return {s.proposal.repository: s.proposal.grace_until for s in wiring.store.proposals()}


def test_with_no_channel_configured_no_grace_ever_starts(config: Config, tmp_path: Path) -> None:
    assert config.policy.notify.enabled_channels == []  # the shipped configuration
    wiring = wired(config, tmp_path)
    assert wiring.notify([report("nightly")]) == []
    assert wiring.notify([report("weekly", "suporte")]) == []
    assert set(graces(wiring).values()) == {None}


def test_a_failed_delivery_starts_nothing(config: Config, tmp_path: Path) -> None:
    cfg = with_notify(
        config,
        email=True,
        retries=0,
        admin_emails=["admin@lsd.ufcg.edu.br"],
        smtp={"host": "127.0.0.1", "port": 9, "security": "none", "username_env": None,
              "timeout": 2},
    )  # fmt: skip
    wiring = wired(cfg, tmp_path)
    (result,) = wiring.notify([report("nightly")])
    assert not result.ok
    assert set(graces(wiring).values()) == {None}


def test_delivered_notices_start_the_grace_of_their_owners(
    config: Config, tmp_path: Path, smtp_server
) -> None:
    with smtp_server() as server:
        cfg = with_notify(
            config,
            email=True,
            admin_emails=["admin@lsd.ufcg.edu.br"],
            smtp={"host": server.host, "port": server.port, "security": "none",
                  "username_env": None},
        )  # fmt: skip
        wiring = wired(cfg, tmp_path)
        (nightly,) = wiring.notify([report("nightly")])
        assert nightly.ok
        after_nightly = graces(wiring)
        (weekly,) = wiring.notify([report("weekly", "suporte")])
        assert weekly.ok
    grace = NOW + timedelta(days=cfg.policy.apply.grace_days)
    # the admins are the owners of record of what no registered project owns
    assert after_nightly == {
        "suporte/api": None,
        "suporte-cloud/api": grace,
        "tcc-joao/x": grace,
        "nginx": grace,
    }
    assert graces(wiring)["suporte/api"] == grace  # its owners' weekly report
    recipients = sorted(r for m in server.messages for r in m.rcpt_tos)
    assert recipients == ["admin@lsd.ufcg.edu.br", "joao.silva@lsd.ufcg.edu.br"]


def test_a_webhook_post_tells_the_admins_but_no_project_owner(
    config: Config, tmp_path: Path, slack_server, monkeypatch
) -> None:
    """An incoming webhook posts to the channel it was made for (the admins'): the
    nightly report it carries starts the grace of what the admins own; a weekly report
    it carries reached no owner of the project, so their grace does not start."""
    cfg = with_notify(config, slack=True, retries=0)
    monkeypatch.delenv("HYGIENE_SLACK_TOKEN", raising=False)
    with slack_server() as state:
        monkeypatch.setenv("HYGIENE_SLACK_WEBHOOK_URL", state.base + "hooks/T000/B000/XXXX")
        wiring = wired(cfg, tmp_path)
        (weekly,) = wiring.notify([report("weekly", "suporte")])
        after_weekly = graces(wiring)
        (nightly,) = wiring.notify([report("nightly")])
    assert (weekly.ok, weekly.reached) == (True, ("slack:webhook",))
    assert nightly.ok
    assert len(state.called("webhook")) == 2
    assert set(after_weekly.values()) == {None}
    grace = NOW + timedelta(days=cfg.policy.apply.grace_days)
    assert graces(wiring) == {
        "suporte/api": None,
        "suporte-cloud/api": grace,
        "tcc-joao/x": grace,
        "nginx": grace,
    }
