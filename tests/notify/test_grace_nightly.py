"""The nightly admin report prints the grace date of the proposals it announces.

Proposals no registered project owns (outside any namespace, or in a namespace that is
not in the projects registry) have the admins as their owners of record: the nightly
report is their notice and its delivery starts their grace (docs/approvals.md §5a). The
admins reading it must see when those become applicable, in the same words as the
owners' weekly report, and never a later date than the store enforces.

A nightly job end to end: the embedded registry, a real SMTP relay that takes 25 minutes
(on the job's clock) to accept the message, a real SQLite store; the rendered HTML is
read as the admins get it, in English and in Portuguese.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hygiene.config import load_config
from hygiene.jobs import run_nightly
from hygiene.report.i18n import gettext_for
from hygiene.report.render import formatter
from hygiene.store import Store
from hygiene.wiring import build_job_deps
from tests.apply.registry import Seeder
from tests.authz.world import mailing_rules, stale_release
from tests.notify.test_grace_delivered import Clock

SLOW = timedelta(minutes=25)
NOT_BEFORE = "Not deleted before %(date)s (end of the grace period)."
ENDS = "Grace period ends on %(date)s at the earliest."


def _group(html: str, namespace: str, rule: str = "IM002") -> str:
    """The approval group of ``namespace`` ('-': outside any namespace) and ``rule`` in the
    HTML, up to its command."""
    command = re.compile(
        rf"approve --namespace {re.escape(namespace)} --rule {rule} --expect 1:[0-9a-f]{{16}}<"
    )
    groups = re.split(r'<div class="group"[^>]*>', html)[1:]
    (found,) = [command.split(g)[0] for g in groups if command.search(g)]
    return found


@pytest.mark.parametrize("language", ["en", "pt_BR"])
def test_the_nightly_report_prints_the_grace_date_it_starts(
    language: str, ecr: Any, tmp_path: Path, smtp_server: Any, monkeypatch: Any, now: datetime
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", ecr.endpoint_url)
    seeder = Seeder(ecr, now)
    for name in ("nginx", "tcc-joao/app", "suporte/api"):
        stale_release(seeder, name)
    clock = Clock(now + timedelta(hours=1))  # the job reports an hour after it started
    with smtp_server() as smtp:
        smtp.on_message = lambda: clock.advance(SLOW)
        directory = mailing_rules(
            tmp_path / "rules",
            smtp,
            tmp_path / "out",
            report={"locale": language},
            apply={"auto_safe": False, "apply_approved": False},
        )
        config = load_config(directory)
        store = Store(f"sqlite:///{tmp_path / 'hygiene.db'}")
        deps = build_job_deps(config, store_url=str(store.url), out_dir=tmp_path / "out")
        wired = deps.context
        wired.clock = clock

        result = run_nightly(deps, config, now, stop=threading.Event())

        assert result.exit_code == 0, result
        assert len(smtp.messages) == 1
    (delivery,) = [d for d in wired.deliveries if d.report == "nightly"]
    rendered = now + timedelta(hours=1)
    assert delivery.ok and delivery.at == rendered + SLOW
    grace = timedelta(days=config.policy.apply.grace_days)
    stored = {
        s.proposal.repository: s.proposal.grace_until
        for s in deps.store.proposals()
        if s.proposal.action.value == "delete-images"
    }
    # the admins are the owners of record of nginx and tcc-joao/app: told by this report
    assert stored == {
        "nginx": delivery.at + grace,
        "tcc-joao/app": delivery.at + grace,
        "suporte/api": None,  # its owners are told by their weekly report
    }
    (report,) = [r for r in wired.reports if r.kind == "nightly"]
    html = report.files["html"].read_text()
    fmt = formatter(config, language)
    _ = gettext_for(language)
    date = fmt.date(rendered + grace)
    promised = _(NOT_BEFORE) % {"date": date}
    for namespace in ("-", "tcc-joao"):
        assert promised in _group(html, namespace), namespace
        # a lifecycle policy: not a deletion by apply, its date in the nightly's words
        assert _(ENDS) % {"date": date} in _group(html, namespace, "RP002")
        # a safe fix does not wait for a grace period once approved: no date
        assert date not in _group(html, namespace, "SC001")
    # its owners are told by their weekly report: no date yet
    assert date not in _group(html, "suporte")
    # the mail itself says it too (the variant the admins read first)
    assert promised in report.mail_html
    # never a later date than apply enforces
    by_repo = {p["repository"]: p.get("grace_until") for p in report.proposals}
    for repository in ("nginx", "tcc-joao/app"):
        shown = datetime.fromisoformat(by_repo[repository])
        assert shown == rendered + grace and shown <= stored[repository]
    assert by_repo["suporte/api"] is None
