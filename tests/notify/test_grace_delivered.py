"""Grace starts when the notice was delivered, not when the job started, and the report
never promises more than the store enforces.

A weekly job end to end: the embedded registry, a real SMTP relay that takes 25 minutes
(on the job's clock) to accept each message, a real SQLite store. The clock is passed in
(``Wired.clock``); nothing reads the wall clock.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hygiene.apply.notice import trusted_grace
from hygiene.config import load_config
from hygiene.jobs import run_weekly
from hygiene.store import Store
from hygiene.wiring import build_job_deps
from tests.apply.registry import Seeder
from tests.authz.world import mailing_rules, stale_release

OWNER = "joao.silva@lsd.ufcg.edu.br"  # suporte's owner (rules/projects.yaml)
SLOW = timedelta(minutes=25)


class Clock:
    """A clock the test moves; every reading is recorded."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.readings: list[datetime] = []

    def __call__(self) -> datetime:
        self.readings.append(self.now)
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@pytest.mark.parametrize(
    "step",
    [SLOW, -SLOW],
    ids=["a relay that takes 25 minutes", "the clock stepped back 25 minutes while sending"],
)
def test_grace_starts_at_delivery_and_the_report_promises_no_later_date(
    step: timedelta, ecr: Any, tmp_path: Path, smtp_server: Any, monkeypatch: Any, now: datetime
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", ecr.endpoint_url)
    seeder = Seeder(ecr, now)
    stale_release(seeder, "suporte/api")
    clock = Clock(now + timedelta(hours=1))  # the job started an hour before it reports
    with smtp_server() as smtp:
        smtp.on_message = lambda: clock.advance(step)
        directory = mailing_rules(
            tmp_path / "rules",
            smtp,
            tmp_path / "out",
        )
        config = load_config(directory)
        store = Store(f"sqlite:///{tmp_path / 'hygiene.db'}")
        deps = build_job_deps(config, store_url=str(store.url), out_dir=tmp_path / "out")
        wired = deps.context
        wired.clock = clock

        result = run_weekly(deps, config, now, namespace="suporte", stop=threading.Event())

        assert result.exit_code == 0, result
        (message,) = smtp.messages
    assert message.rcpt_tos[0] == OWNER
    (delivery,) = [d for d in wired.deliveries if d.report == "weekly-suporte"]
    rendered = now + timedelta(hours=1)
    assert delivery.ok and delivery.at == rendered + step  # when it was sent
    grace = timedelta(days=config.policy.apply.grace_days)
    stored = {s.id: s.proposal.grace_until for s in deps.store.proposals()}
    # from the delivery; never before the moment the report's dates count from
    assert stored and set(stored.values()) == {max(delivery.at, rendered) + grace}
    (report,) = [r for r in wired.reports if r.namespace == "suporte"]
    promised = {p["id"]: datetime.fromisoformat(p["grace_until"]) for p in report.proposals}
    assert set(promised) == set(stored)
    for proposal_id, date in promised.items():
        assert date <= stored[proposal_id]  # never a later date than apply enforces
        assert date == rendered + grace  # rendered before it was sent
    # each notice is on record, naming the weekly run that sent it, and apply trusts it
    (run,) = deps.store.runs(kind="weekly")
    notices = deps.store.notices(stored)
    assert {n.run_id for rows in notices.values() for n in rows} == {run.id}
    for held in deps.store.proposals():
        trusted, doubt = trusted_grace(held, notices[held.id], {run.id: run}, grace.days)
        assert doubt is None and trusted.proposal.grace_until == stored[held.id]
