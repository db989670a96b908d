"""Rendering: every section of the nightly and weekly reports from realistic data."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hygiene.config import Config
from hygiene.errors import ConfigError
from hygiene.report import (
    RenderedReport,
    ReportData,
    build_report_data,
    history_entry,
    render_nightly,
    render_weekly,
    templates_dir,
)
from hygiene.report.views import compliance_scores, reclaimable_bytes
from tests.report import sample


class Scan(HTMLParser):
    """Collects tags/attributes and the visible text of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("style", "script", "title"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


def scan(html: str) -> Scan:
    parser = Scan()
    parser.feed(html)
    return parser


def visible(html: str) -> str:
    return re.sub(r"[ \t\r\n]+", " ", " ".join(scan(html).text))


def test_nightly_totals_cost_and_reclaimable(nightly: RenderedReport, data: ReportData) -> None:
    text = visible(nightly.html)
    stored = sum(count * size for _, count, size in sample.REPOS)
    assert data.totals == {"repositories": 7, "images": 23, "bytes": stored}
    assert round(stored / sample.GIB, 1) == 26.2
    assert "26.2\u00a0GiB" in text
    assert "$2.62" in text  # 26.2 GiB at $0.10 per GB-month
    # ml/training's stale image is flagged by IM002 and IM003: counted once (4 GiB + 310 MiB)
    assert reclaimable_bytes(data.findings) == 4 * sample.GIB + 310 * sample.MIB
    assert "the cleanup rules flag would free 4.3\u00a0GiB ($0.43 per month)." in text


def test_nightly_changes_since_previous_run(nightly: RenderedReport) -> None:
    text = nightly.text
    assert "Compared with run r-20261127-0300" in text
    assert "Images: +2" in text  # 21 → 23
    assert "Storage: -2.8\u00a0GiB" in text  # 29 GiB → 26.2 GiB
    assert "IM002: 2 -> 1" in text and "NS003: 0 -> 1" in text


def test_nightly_groups_approvals_with_one_command_each(nightly: RenderedReport) -> None:
    waiting = [p for p in sample.proposals() if p.state.value == "proposed"]
    assert len(waiting) == 2
    text = visible(nightly.html)
    for command in (
        "hygiene approve --namespace ml --rule IM002 --expect 1",
        "hygiene approve --namespace suporte --rule RP002 --expect 1",
    ):  # --expect: the number the group shows (a later command approves no newcomer)
        assert text.count(command) == 1 and nightly.text.count(f"$ {command}") == 1
    assert "hygiene approve p-" not in nightly.text  # no list of ids to copy
    assert "2 proposals await an admin's approval" in nightly.text
    # the approved one waits for its date, listed with it
    approved = next(p for p in sample.proposals() if p.state.value == "approved")
    waiting_section = nightly.text.split("Approved, waiting for their grace date")[1]
    assert f"* {approved.id}  suporte/cloud/api" in waiting_section.splitlines()[1]
    assert "Not before Dec 5, 2026" in waiting_section.splitlines()[1]


def test_nightly_outcomes_incomplete_runs_and_warnings(nightly: RenderedReport) -> None:
    text = visible(nightly.html)
    assert "ImageReferencedByManifestList" in text
    assert "This scan is incomplete." in text and "(incomplete scan)" in nightly.subject
    assert "eureca/web ListImages — AccessDenied: not authorised" in text
    assert "us-east-1 DescribeImages throttled" in text  # an earlier incomplete run
    assert "mutelist entry 0 (suporte/legacy-*: IM002) expired on 2026-10-01" in text
    assert "could not be delivered by email to ana.costa@lsd.ufcg.edu.br: SMTP 451" in text
    assert "Namespaces not in the projects registry: suporte-cloud." in text


def test_nightly_largest_repositories_in_order(nightly: RenderedReport) -> None:
    section = nightly.text.split("Largest repositories")[1].split("Incomplete runs")[0]
    names = [line.split()[0] for line in section.splitlines() if "/" in line or "nginx" in line]
    assert names[:3] == ["ml/training", "ml/notebooks", "suporte/cloud/api"]


def test_charts_are_html_bars_scaled_to_the_largest(nightly: RenderedReport) -> None:
    bars = [
        attrs
        for tag, attrs in scan(nightly.html).tags
        if tag == "td" and attrs.get("width", "").endswith("%")
    ]
    widths = [float(a["width"].rstrip("%")) for a in bars]
    assert 100.0 in widths  # ml, the largest namespace; and the youngest age bucket
    expected_suporte = round((6 * 310 + 3 * 95) * sample.MIB / (23 * sample.GIB) * 100, 1)
    assert expected_suporte in widths
    # storage trend: one bar per day (5 earlier days + today), readable dates and deltas
    trend = nightly.text.split("Storage trend")[1].split("Image age")[0]
    days = [line for line in trend.splitlines() if line.startswith("Nov ")]
    assert [line.split(",")[0] for line in days] == [
        "Nov 23", "Nov 24", "Nov 25", "Nov 26", "Nov 27", "Nov 28"
    ]  # fmt: skip
    assert "25.0\u00a0GiB" in days[0] and "(" not in days[0]  # first day: no delta
    assert "26.0\u00a0GiB (+1.0\u00a0GiB)" in days[1]
    assert days[2].endswith("*")  # the incomplete scan of Nov 25
    assert "29.0\u00a0GiB (+1.0\u00a0GiB)" in days[4]
    assert "26.2\u00a0GiB (-2.8\u00a0GiB)" in days[5]


def test_html_is_mail_safe(nightly: RenderedReport, weekly: dict[str, RenderedReport]) -> None:
    for report in (nightly, *weekly.values()):
        parsed = scan(report.html)
        tags = {tag for tag, _ in parsed.tags}
        assert not tags & {"script", "link", "img", "iframe"}, tags
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", report.html)
        styled = [a for _, a in parsed.tags if a.get("style")]
        assert len(styled) > 50  # CSS inlined into style attributes
        # only the phone layout stays in <style>: @media rules, which cannot be inlined
        blocks = re.findall(r"<style[^>]*>(.*?)</style>", report.html, re.S)
        assert len(blocks) == 1 and blocks[0].lstrip().startswith("@media")
        assert blocks[0].count("{") == blocks[0].count("}")
        outside = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", blocks[0])
        assert outside.strip() == ""
    assert any(re.search(r"background:\s*#7c3aed", a.get("style") or "") for _, a in parsed.tags)


def test_weekly_suporte_in_portuguese_with_rename_map_and_objection(
    weekly: dict[str, RenderedReport],
) -> None:
    report = weekly["suporte"]
    assert report.locale == "pt_BR"
    assert report.subject == (
        "[registry-hygiene] Higiene do registro de imagens: relatório semanal de suporte"
    )
    text = visible(report.html)
    assert "Relatório semanal de suporte" in text
    assert "Responsáveis: joao.silva@lsd.ufcg.edu.br." in text
    assert "2,1\u00a0GiB" in text and "US$\u00a00,21" in text
    # NS003 filed under suporte-cloud belongs to project suporte: rename map and steps
    assert "suporte-cloud/monitor suporte/cloud/monitor" in text
    assert "Confira que NEW lista os mesmos digests e tags que OLD" in text  # step 3 of 5
    approved = next(p for p in sample.proposals() if p.repository == "suporte/cloud/api")
    assert approved.id in text and 'hygiene reject PROPOSAL_ID --reason "…"' in text
    assert "Nada é apagado antes de 5 de dez. de 2026 (fim do prazo de carência)." in text
    assert "Como se opor" in text and "responda a esta mensagem" in text
    assert "baixada recentemente" in text  # kept because pulled recently
    assert "exceção aceita (lista de exceções); em uso" in text
    assert "ml/training" not in text  # another project's data stays out


def test_a_lifecycle_policy_is_announced_to_its_owners_as_the_deletion_it_is(
    data: ReportData, config: Config
) -> None:
    """A lifecycle policy deletes images once ECR runs it: the owners' report (whose
    delivery starts its grace period) says how many, with the proposal to object to, and
    never lists it among the changes that delete nothing."""
    lifecycle = next(p for p in sample.proposals() if p.repository == "suporte/services/ldap")
    report = render_weekly(data, config, "suporte", locale="en")
    text = visible(report.html)
    section = text.split("Lifecycle policies that will delete images", 1)[1]
    assert lifecycle.id in section
    assert "suporte/services/ldap 2 64.0\u00a0MiB" in section
    assert "set lifecycle policy" not in text  # the label of the changes that delete nothing
    assert "Lifecycle policies that will delete images" in report.text
    assert f"{lifecycle.id} suporte/services/ldap: 2 images, 64.0\u00a0MiB" in report.text


def test_weekly_ml_in_english(weekly: dict[str, RenderedReport]) -> None:
    report = weekly["ml"]
    assert report.locale == "en"
    text = visible(report.html)
    assert "Weekly report for ml" in text
    assert "protected tag prod*" in text
    assert "part of a kept multi-platform image; among the 3 newest images of the repository" in (
        text
    )
    assert "Your namespace holds 88% of the registry's storage." in text
    assert 'hygiene reject PROPOSAL_ID --reason "…"' in report.text
    assert "How to object" in report.text
    assert "suporte" not in text.replace("registry", "")


def test_compliance_scores(data: ReportData) -> None:
    rows = {r["repository"]: r for r in compliance_scores(data)}
    assert rows["ml/training"]["score"] == 100 - 15 - 5  # IM002 warning + IM003 info
    assert rows["ml/training"]["codes"] == ["IM002", "IM003"]
    assert rows["nginx"]["score"] == 70  # NS001 error
    assert rows["suporte/services/ldap"]["score"] == 100
    assert rows["eureca/web"]["score"] is None  # not read completely: no score


def test_dates_in_the_project_time_zone(config: Config, data: ReportData) -> None:
    projects = dict(config.projects.projects)
    projects["ml"] = projects["ml"].model_copy(update={"timezone": "Asia/Tokyo"})
    cfg = config.model_copy(
        update={"projects": config.projects.model_copy(update={"projects": projects})}
    )
    tokyo = render_weekly(data, cfg, "ml")
    assert "finished Nov 28, 2026, 9:00:00\u202fPM (Asia/Tokyo)" in tokyo.text  # 12:00 UTC
    fortaleza = render_weekly(data, config, "ml")
    assert "finished Nov 28, 2026, 9:00:00\u202fAM (America/Fortaleza)" in fortaleza.text


def test_first_run_without_history(config: Config) -> None:
    report = render_nightly(sample.report_data(with_history=False), config)
    assert "This is the first recorded run" in report.text
    assert "This scan is incomplete." not in report.text


def test_locale_override(config: Config, data: ReportData) -> None:
    assert render_nightly(data, config, locale="pt_BR").subject.startswith(
        "[registry-hygiene] Higiene do registro de imagens: relatório noturno de 28 de nov. de 2026"
    )
    with pytest.raises(ConfigError, match="unknown report locale 'fr'"):
        render_nightly(data, config, locale="fr")


def test_templates_dir_from_config(config: Config, tmp_path: Path) -> None:
    assert (templates_dir(config) / "base.html").is_file()
    report = config.policy.report.model_copy(update={"templates_dir": tmp_path / "nowhere"})
    broken = config.model_copy(
        update={"policy": config.policy.model_copy(update={"report": report})}
    )
    with pytest.raises(ConfigError, match=r"report\.templates_dir"):
        templates_dir(broken)


def test_grace_date_shown_when_it_changes_day_in_the_zone(config: Config) -> None:
    data = sample.report_data()
    late = dict(data.proposals[0])
    late["grace_until"] = (sample.NOW + timedelta(days=7, hours=13)).isoformat()  # 01:00 UTC
    data.proposals = [late]
    text = render_weekly(data, config, "ml").text
    # 22:00 on Dec 5 in Fortaleza, not Dec 6
    assert "Not deleted before Dec 5, 2026 (end of the grace period)." in text


def test_long_tables_are_cut_at_max_rows(config: Config) -> None:
    data = sample.report_data()
    template = next(p for p in data.proposals if p["state"] == "proposed")
    data.proposals = [{**template, "id": f"p-{n:012x}"} for n in range(12)]
    report = config.policy.report.model_copy(update={"max_rows": 5})
    small = config.model_copy(
        update={"policy": config.policy.model_copy(update={"report": report})}
    )
    data.proposals = [
        {**template, "id": f"p-{n:012x}", "repository": f"ml/r{n:02d}"} for n in range(12)
    ]
    text = render_nightly(data, small).text
    # one group, one command, however many proposals
    assert text.count("$ hygiene approve --namespace ml --rule IM002") == 1
    assert "12 proposals" in text
    images = [line for line in text.splitlines() if line.startswith("    - ml/r")]
    assert len(images) == 5  # five image rows (max_rows), then the count of the rest
    assert "… and 7 more of 12 rows in nightly-images.csv." in text
    weekly = visible(render_weekly(data, small, "ml").html)
    assert "… and 7 more of 12 rows in weekly-ml-images.csv." in weekly


def test_scan_json_without_inventory_details(config: Config) -> None:
    """--from-json without a snapshot: no per-repository data, the report says so."""
    scan = sample.scan_json()
    data = build_report_data(scan, history=[*sample.history(), history_entry(sample.report_data())])
    assert [h.id for h in data.history] == [h.id for h in sample.history()]  # current run dropped
    report = render_nightly(data, config)
    assert report.text.count("No data for this run.") == 2  # storage by namespace, image age
    assert "26.2\u00a0GiB" in report.text  # totals still come from the scan summary


def test_nightly_says_at_the_top_when_no_channel_can_notify_anyone(config: Config) -> None:
    """The shipped config sends nothing: the report says so before anything else, in both
    parts and both languages; with a channel on, it does not."""
    assert config.policy.notify.enabled_channels == []
    data = sample.report_data(with_history=False)
    report = render_nightly(data, config)
    text = scan(report.html).text
    body = "".join(text)
    totals = body.index("repositories")  # the first figures of the report
    assert 0 <= body.index("Notifications are off.") < totals
    assert "no unsafe proposal will ever become eligible" in body
    assert report.text.index("Notifications are off.") < report.text.index("Repositories:")
    assert "As notificações estão desligadas." in render_nightly(data, config, locale="pt_BR").html
    notify = config.policy.notify.model_copy(update={"email": True})
    on = config.model_copy(update={"policy": config.policy.model_copy(update={"notify": notify})})
    assert "Notifications are off." not in render_nightly(data, on).html


def test_a_repository_name_in_two_accounts_is_named_with_its_account(config: Config) -> None:
    """With several accounts the same repository name exists in each: every report names
    a repository with its account; with one account, by its name alone."""
    from dataclasses import replace

    from tests.builders import ACCOUNT

    other = "222233334444"
    data = sample.report_data()
    twin = next(p for p in data.proposals if p["repository"] == "ml/training")
    data.proposals.append({**twin, "id": "p-0000000000b2", "account": other})
    stat = next(r for r in data.repositories if r.name == "ml/training")
    data.repositories.append(replace(stat, account=other))

    nightly = render_nightly(data, config)
    weekly = render_weekly(data, config, "ml")
    for report in (nightly, weekly):
        for text in (visible(report.html), report.text):
            assert f"ml/training ({ACCOUNT})" in text
            assert f"ml/training ({other})" in text
    # one account: names alone, as before
    single = render_weekly(sample.report_data(), config, "ml")
    assert "ml/training" in single.text and f"({ACCOUNT})" not in single.text
