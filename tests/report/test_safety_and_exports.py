"""Hostile names render escaped; exports (CSV/JSON) next to the HTML; data round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from hygiene.config import Config
from hygiene.report import (
    ReportData,
    RepositoryStat,
    generate,
    history_entry,
    render_nightly,
    render_weekly,
    write_report,
)
from hygiene.report.exports import COLUMNS
from hygiene.report.render import safe_name
from tests.report import sample
from tests.report.test_render import scan, visible

EVIL_NS = '<img src=x onerror="alert(1)">'
EVIL_REPO = "<script>alert('repo')</script>/x\"y"


def hostile_data() -> ReportData:
    data = sample.report_data()
    data.repositories.append(RepositoryStat(EVIL_REPO, EVIL_NS, 1, 10 * sample.MIB))
    data.findings.append(
        {
            **data.findings[0],
            "code": "NS004",
            "rule": "naming-convention</td><script>",
            "namespace": EVIL_NS,
            "repository": EVIL_REPO,
            "message": "<b>bad</b> name",
            "message_template": "",
            "message_params": {},
            "fix": '"quoted" & <i>fix</i>',
            "tags": ['=HYPERLINK("http://evil")', "<tag>"],
            "details": {"rename_map": {EVIL_REPO: "ok/name"}, "steps": ["<script>step</script>"]},
        }
    )
    data.proposals.append(
        {
            **data.proposals[0],
            "id": "p-<svg/onload=1>",
            "repository": EVIL_REPO,
            "namespace": EVIL_NS,
            "summary": "<script>alert(2)</script>",
        }
    )
    data.kept.append(
        {
            "account": "1",
            "region": "r",
            "repository": "ml/" + EVIL_REPO,
            "image_digest": "sha256:ab",
            "tags": ["<script>"],
            "reasons": ["protected-tag:<script>", "<b>custom</b>"],
        }
    )
    return data


def test_hostile_strings_are_escaped_in_html(config: Config) -> None:
    data = hostile_data()
    for report in (
        render_nightly(data, config),
        render_weekly(data, config, EVIL_NS),
        render_weekly(data, config, "ml"),
        render_weekly(data, config, "suporte", locale="pt_BR"),
    ):
        parsed = scan(report.html)
        tags = {tag for tag, _ in parsed.tags}
        assert not tags & {"script", "img", "svg", "b", "i"}, (report.name, tags)
        handlers = [k for _, attrs in parsed.tags for k in attrs if k.startswith("on")]
        assert handlers == []
        for raw in ("<script", "<img", "<svg", "<b>", "<i>", "</td><script>"):
            assert raw not in report.html, (report.name, raw)
        assert EVIL_REPO in visible(report.html) or report.namespace in ("ml", "suporte")
    # css-inline re-serialises the document: text keeps < > & escaped (quotes need not be)
    nightly = render_nightly(data, config).html
    assert "&lt;script&gt;alert('repo')&lt;/script&gt;/x\"y" in nightly
    assert '&lt;img src=x onerror="alert(1)"&gt;' in nightly
    weekly = render_weekly(data, config, EVIL_NS).html
    assert (
        "&lt;b&gt;bad&lt;/b&gt; name" in weekly
        and '"quoted" &amp; &lt;i&gt;fix&lt;/i&gt;' in weekly
    )
    assert "&lt;script&gt;step&lt;/script&gt;" in weekly
    ml = render_weekly(data, config, "ml").html
    assert "protected tag &lt;script&gt;" in ml and "&lt;b&gt;custom&lt;/b&gt;" in ml


def test_hostile_namespace_cannot_escape_the_output_directory(
    config: Config, tmp_path: Path
) -> None:
    assert safe_name("../../etc/passwd") == "_.._etc_passwd"
    assert safe_name("..") == "_"
    report = write_report(render_weekly(hostile_data(), config, EVIL_NS), tmp_path)
    for path in report.files.values():
        assert path.parent == tmp_path


def _with_exports(config: Config, exports: tuple[str, ...]) -> Config:
    report = config.policy.report.model_copy(update={"exports": exports})
    return config.model_copy(update={"policy": config.policy.model_copy(update={"report": report})})


def test_exports_are_csv_alone_by_default(config: Config, tmp_path: Path) -> None:
    assert config.policy.report.exports == ("csv",)
    [report] = generate(hostile_data(), config, "nightly", out_dir=tmp_path)
    exported = {key for key in report.files if key.endswith(("_csv", "_json"))}
    assert exported == {f"{kind}_csv" for kind in COLUMNS}
    assert not list(tmp_path.rglob("nightly-*.json"))


def test_exports_next_to_html(config: Config, tmp_path: Path) -> None:
    data = hostile_data()
    both = _with_exports(config, ("csv", "json"))
    [report] = generate(data, both, "nightly", out_dir=tmp_path)
    folder = tmp_path / "2026-11-28_r-20261128-0300"
    assert report.files["html"] == folder / "nightly.html"
    assert sorted(p.name for p in folder.iterdir()) == [
        "nightly-findings.csv",
        "nightly-findings.json",
        "nightly-images.csv",
        "nightly-images.json",
        "nightly-kept.csv",
        "nightly-kept.json",
        "nightly-proposals.csv",
        "nightly-proposals.json",
        "nightly-scores.csv",
        "nightly-scores.json",
        "nightly.html",
        "nightly.mail.html",
        "nightly.txt",
    ]
    assert sorted(p.name for p in (tmp_path / "latest").iterdir()) == sorted(
        p.name for p in folder.iterdir()
    )  # the stable copy of the newest report
    assert (folder / "nightly.html").read_text(encoding="utf-8") == report.html
    findings = json.loads((folder / "nightly-findings.json").read_text(encoding="utf-8"))
    assert findings == json.loads(json.dumps(list(data.findings), default=str))
    frame = pd.read_csv(folder / "nightly-findings.csv", keep_default_na=False)
    assert len(frame) == len(data.findings)
    assert list(frame.columns[:6]) == [
        "code",
        "rule",
        "severity",
        "namespace",
        "repository",
        "image_digest",
    ]
    evil = frame[frame["code"] == "NS004"].iloc[0]
    assert evil["tags"].startswith("'=HYPERLINK")  # no formula runs in a spreadsheet
    assert json.loads(evil["details"])["steps"] == ["<script>step</script>"]
    proposals = pd.read_csv(folder / "nightly-proposals.csv", keep_default_na=False)
    assert set(proposals["id"]) == {p["id"] for p in data.proposals}
    assert json.loads(proposals.iloc[0]["target"])["digests"]


def test_weekly_exports_hold_only_the_namespace(config: Config, tmp_path: Path) -> None:
    both = _with_exports(config, ("csv", "json"))
    reports = generate(sample.report_data(), both, "weekly", namespaces=["ml"], out_dir=tmp_path)
    assert [r.name for r in reports] == ["weekly-ml"]
    findings = json.loads(reports[0].files["findings_json"].read_text())
    assert {f["code"] for f in findings} == {"IM002", "IM003", "SC001"}
    proposals = json.loads(reports[0].files["proposals_json"].read_text())
    assert {p["repository"] for p in proposals} == {"ml/training"}  # applied SC001 fix is done
    scores = json.loads(reports[0].files["scores_json"].read_text())
    assert [(r["repository"], r["score"]) for r in scores] == [
        ("ml/training", 80),
        ("ml/notebooks", 85),
    ]
    kept = pd.read_csv(reports[0].files["kept_csv"], keep_default_na=False)
    assert list(kept["reasons"]) == ["protected-tag:prod*", "child-of-kept-index newest-3"]


def test_every_registered_namespace_gets_a_weekly_report(config: Config, tmp_path: Path) -> None:
    reports = generate(sample.report_data(), config, "weekly", out_dir=tmp_path)
    assert sorted(r.namespace or "" for r in reports) == config.namespaces
    languages = {r.namespace: r.locale for r in reports}
    assert languages["suporte"] == "pt_BR" and languages["ml"] == "en"


def test_report_data_json_round_trip() -> None:
    data = sample.report_data(incomplete=True)
    again = ReportData.from_json(json.loads(json.dumps(data.to_json())))
    assert again == data


def test_history_entry_for_the_store() -> None:
    data = sample.report_data(incomplete=True)
    entry = history_entry(data)
    assert entry.id == "r-20261128-0300" and entry.status == "incomplete"
    assert entry.bytes == data.totals["bytes"]
    assert entry.namespace_bytes["ml"] == 23 * sample.GIB
    assert entry.namespace_bytes[""] == 60 * sample.MIB  # nginx, outside any namespace
    assert entry.findings_by_code == {
        "NS003": 1,
        "NS001": 1,
        "IM002": 1,
        "IM003": 1,
        "IM001": 1,
        "SC001": 1,
        "TG002": 1,
    }
    assert entry.errors == ("AccessDenied: not authorised",)


def test_age_buckets_from_inventory() -> None:
    data = sample.report_data()
    # ml/training: pushed 3, 63, 123, 183, 243 days ago; ml/notebooks: 3, 63
    assert data.age_buckets["ml"] == {
        "lt7": 2,
        "lt30": 0,
        "lt90": 2,
        "lt180": 1,
        "lt365": 2,
        "ge365": 0,
    }
