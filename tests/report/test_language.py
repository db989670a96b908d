"""pt_BR for real: every word a Portuguese report shows comes from the catalog, and
sentences never run together.

The reports are rendered with marking translation functions, Jinja's ``finalize`` and a
marking formatter (tests/report/audit.py), so each visible piece says where it came
from: a translation, the template itself, data, or the formatter. Finding messages,
fixes, the rename procedure and the kept reasons are translated like the template text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hygiene.config import Config
from hygiene.report import ReportData, build_report_data, render
from hygiene.report.i18n import read_catalog, translations
from tests.report import audit, sample

LOCALE = "pt_BR"
IDENTIFIER_KEYS_SKIPPED = {
    "message", "fix", "summary", "message_template", "template", "steps", "reasons", "kind",
    "errors", "error", "reason", "description", "schemes",
}  # fmt: skip


def _leaves(value: Any, key: str | None = None) -> Iterator[tuple[str | None, str]]:
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k), str(k)  # keys of maps are data too (rename maps, scheme counts)
            yield from _leaves(v, str(k))
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _leaves(v, key)


def allowed_data(data: ReportData, config: Config) -> tuple[set[str], set[str]]:
    """(tokens of identifiers the reader knows, texts shown verbatim: AWS errors, the
    projects' own descriptions, mutelist reasons)."""
    tokens: set[str] = set()
    verbatim: set[str] = set()
    document = data.to_json()
    for key, text in _leaves(document):
        if key in IDENTIFIER_KEYS_SKIPPED:
            if key in ("errors", "error", "reason", "description"):
                verbatim.add(text.strip())
            continue
        tokens.add(text)
        tokens.update(t.strip(".:") for t in audit.TOKEN_SPLIT.split(text) if t)
    # errors the scan met: AWS's words, shown as they came
    for error in document["run"].get("errors", []):
        for _, text in _leaves(error):
            tokens.update(t.strip(".:") for t in audit.TOKEN_SPLIT.split(text) if t)
    for kept in data.kept:
        for reason in kept.get("reasons", []):
            detail = reason.partition(":")[2]
            tokens.update(t for t in audit.TOKEN_SPLIT.split(detail) if t)
    for _, text in _leaves(config.projects.model_dump(mode="json")):
        tokens.update(t.strip(".:") for t in audit.TOKEN_SPLIT.split(text) if t)
        verbatim.add(text.strip())
    tokens.update(config.policy.notify.admin_emails)
    tokens.update({config.policy.report.timezone, *(
        p.timezone for p in config.projects.projects.values() if p.timezone
    )})  # fmt: skip
    for group in document["findings"]:
        for key, value in (group.get("message_params") or {}).items():
            if key in ("error", "reason"):
                verbatim.add(str(value))
    for warning in data.mute_warnings:
        params = warning.get("message_params", {}) if isinstance(warning, dict) else {}
        verbatim.update(str(v) for k, v in params.items() if k in ("reason", "source"))
    return tokens, verbatim


@pytest.fixture
def instrumented(monkeypatch: pytest.MonkeyPatch) -> audit.Recorder:
    catalog = read_catalog(LOCALE)
    known = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and m.string}
    real = translations(LOCALE)
    recorder = audit.Recorder(real.gettext, real.ngettext, known)
    monkeypatch.setattr(
        render, "language", lambda locale: render.Language(locale, recorder.gettext,
                                                            recorder.ngettext)
    )  # fmt: skip
    monkeypatch.setattr(render, "FINALIZE", audit.finalize)
    original = render.formatter
    monkeypatch.setattr(
        render, "formatter", lambda *a, **k: audit.MarkedFormatter(original(*a, **k))
    )
    return recorder


def _datasets() -> list[ReportData]:
    full = sample.report_data(incomplete=True)
    empty = build_report_data(
        {
            "run": sample.inventory().run.to_json(),
            "inventory": {"repositories": 0, "images": 0, "bytes": 0},
            "findings": [],
            "kept": [],
            "proposals": [],
        },
        now=sample.NOW,
    )
    return [full, empty]


def _bodies(report: render.RenderedReport, prefix: str = "") -> Iterator[tuple[str, str]]:
    for label, html in (("html", report.html), ("mail html", report.mail_html)):
        text, attributes = audit.visible_html(html)
        yield label, text
        for value in attributes:
            yield f"{label} attribute", value
    yield "text", report.text
    yield "mail text", report.mail_text
    yield "subject", report.subject.removeprefix(prefix)  # the prefix is configuration


def _all_reports(config: Config) -> Iterator[tuple[render.RenderedReport, ReportData]]:
    for data in _datasets():
        yield render.render_nightly(data, config, locale=LOCALE), data
        for namespace in ("suporte", "ml", "unregistered-ns"):
            yield render.render_weekly(data, config, namespace, locale=LOCALE), data


def test_every_visible_string_of_a_pt_br_report_is_in_the_catalog(
    config: Config, instrumented: audit.Recorder
) -> None:
    checked = 0
    for report, data in _all_reports(config):
        tokens, verbatim = allowed_data(data, config)
        tokens.add(report.namespace or "")
        for label, body in _bodies(report, config.policy.notify.subject_prefix):
            where = f"{report.name} ({label})"
            assert audit.untranslated_words(body) == [], where
            assert audit.unknown_data(body, tokens, verbatim) == [], where
            checked += 1
    assert instrumented.missing == set()
    assert checked > 40


def test_finding_messages_fixes_steps_and_kept_reasons_are_translated(
    config: Config, instrumented: audit.Recorder
) -> None:
    """What the issue found in English: finding messages, fixes, the rename procedure and
    the kept reasons, and the words 'registry' and 'rename_map'."""
    data = sample.report_data()
    report = render.render_weekly(data, config, "suporte", locale=LOCALE)
    text = audit.strip_marks(report.text + audit.visible_html(report.html)[0])
    translated_by = translations(LOCALE).gettext
    for finding in data.findings:
        if finding["code"].startswith(("NS", "SC", "RP", "TG")) and finding.get("namespace") in (
            "suporte",
            "suporte-cloud",
        ):
            assert finding["message_template"], finding["code"]
            assert translated_by(finding["fix"]) != finding["fix"]
    assert "Para cada par antigo → novo" in text  # the five-step procedure
    assert "registry." not in text and "rename_map" not in text
    assert "pulled-recently" not in text and "newest-" not in text


def test_sentences_are_separated(config: Config, instrumented: audit.Recorder) -> None:
    problems = []
    for report, _ in _all_reports(config):
        for label, body in _bodies(report):
            problems += [(report.name, label, p) for p in audit.missing_spaces(body)]
    assert problems == []


def test_the_spacing_check_catches_sentences_run_together() -> None:
    t = audit.T_OPEN
    c = audit.T_CLOSE
    joined = f"{t}Seu namespace ocupa 10% do registro.{c}{t}Recuperável: 1 GiB.{c}"
    spaced = f"{t}Seu namespace ocupa 10% do registro.{c} {t}Recuperável: 1 GiB.{c}"
    assert audit.missing_spaces(joined) == ["upa 10% do registro.|Recuperável: 1 GiB."]
    assert audit.missing_spaces(spaced) == []
    data = f"{t}Tamanho: {c}{audit.D_OPEN}{audit.F_OPEN}1 GiB{audit.F_CLOSE}.{audit.D_CLOSE}"
    assert audit.missing_spaces(data + f"{t}Cada{c}") != []


def test_the_catalog_check_catches_english_left_in(config: Config) -> None:
    """The audit itself: an English sentence passed as data, a template's literal word
    and a message id the catalog lacks are all reported."""
    d, dc = audit.D_OPEN, audit.D_CLOSE
    tokens = {"suporte/api", "v1.0"}
    assert audit.unknown_data(f"{d}suporte/api{dc}", tokens) == []
    assert audit.unknown_data(f"{d}untagged image pushed 40 days ago{dc}", tokens) != []
    assert audit.untranslated_words(f"{audit.T_OPEN}Repositório{audit.T_CLOSE} Tags:") == ["Tags:"]
    recorder = audit.Recorder(lambda s: s, lambda s, p, n: s if n == 1 else p, {"known"})
    recorder.gettext("known")
    recorder.gettext("not in the catalog")
    recorder.gettext("%(problems)s")  # no words: a join of other messages
    assert recorder.missing == {"not in the catalog"}
