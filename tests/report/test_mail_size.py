"""The mailed report stays under Gmail's clipping size whatever the registry's size:
a summary, the actions and the first rows, with counts of the rest (the demo registry is
checked in tests/test_demo.py; this is a 100,000-image synthetic one)."""

from __future__ import annotations

import re

import pytest

from benchmarks.rules import NOW, bench_config, synthetic_inventory
from hygiene.report import build_report_data, render_nightly, render_weekly
from hygiene.report.render import MAIL_BUDGET_BYTES
from hygiene.rules import evaluate
from hygiene.scan import ScanResult, plan_all

GMAIL_CLIPS_ABOVE = 102 * 1024
MAILED_BODY_LIMIT = 100_000


@pytest.mark.integration  # builds, evaluates and plans a 100k-image registry (~15 s)
def test_mail_of_a_100k_image_registry_stays_under_100_kb() -> None:
    config = bench_config()
    inventory = synthetic_inventory(100_000, 1_000)
    evaluation = evaluate(inventory, config, NOW, in_use=[])
    proposals = plan_all(evaluation, inventory, config, NOW)
    scan = ScanResult(inventory, evaluation.findings, evaluation.kept, proposals).to_json()
    data = build_report_data(scan, inventory=inventory, now=NOW)
    assert len(data.findings) > 10_000 and len(data.proposals) > 1_000
    reports = [render_nightly(data, config)]
    reports += [render_weekly(data, config, ns) for ns in config.namespaces]
    assert MAIL_BUDGET_BYTES < MAILED_BODY_LIMIT < GMAIL_CLIPS_ABOVE
    for report in reports:
        html = report.mail_html.encode("utf-8")
        text = report.mail_text.encode("utf-8")
        assert len(html) < MAILED_BODY_LIMIT, (report.name, len(html))
        assert len(text) < MAILED_BODY_LIMIT, (report.name, len(text))
        # the rest is counted, not dropped silently
        assert re.search(r"… and [\d,]+ more", report.mail_text), report.name
    nightly = reports[0]
    assert len(nightly.html.encode()) > len(nightly.mail_html.encode())  # the full one on disk
    assert "hygiene approve --namespace" in nightly.mail_text  # the actions made it in
