"""Both languages: a complete pt_BR catalog, and pt_BR reports without English left in."""

from __future__ import annotations

import re
from typing import Any

import pytest

from hygiene.config import Config
from hygiene.report import (
    RenderedReport,
    ReportData,
    build_report_data,
    render_nightly,
    render_weekly,
    templates_dir,
)
from hygiene.report.catalog import missing_translations
from hygiene.report.i18n import LOCALES, extract_messages, read_catalog, translations
from tests.report import sample
from tests.report.test_render import visible

PLACEHOLDER = re.compile(r"%\(\w+\)s")


@pytest.fixture(scope="module")
def template_catalog():  # type: ignore[no-untyped-def]
    return extract_messages(templates_dir())


def test_every_message_has_a_pt_br_translation(template_catalog) -> None:  # type: ignore[no-untyped-def]
    ids = [m.id for m in template_catalog if m.id]
    assert len(ids) > 100  # templates + Python labels were really extracted
    assert missing_translations(template_catalog, "pt_BR") == []


def test_catalog_has_no_stale_messages_and_placeholders_match(template_catalog) -> None:  # type: ignore[no-untyped-def]
    catalog = read_catalog("pt_BR")
    used = {m.id if isinstance(m.id, str) else m.id[0] for m in template_catalog if m.id}
    stale = [
        m.id for m in catalog if m.id and (m.id if isinstance(m.id, str) else m.id[0]) not in used
    ]
    assert stale == []
    problems = [(m.id, errors) for m, errors in catalog.check() if errors]
    assert problems == []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        expected = set(PLACEHOLDER.findall(ids[-1]))
        for translated in strings:
            assert set(PLACEHOLDER.findall(translated)) == expected, message.id


def test_plural_forms_follow_pt_br() -> None:
    ngettext = translations("pt_BR").ngettext
    assert ngettext("%(count)s finding", "%(count)s findings", 1) == "%(count)s apontamento"
    assert ngettext("%(count)s finding", "%(count)s findings", 0) == "%(count)s apontamento"
    assert ngettext("%(count)s finding", "%(count)s findings", 2) == "%(count)s apontamentos"


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return (
            set().union(*(_strings(k) | _strings(v) for k, v in value.items())) if value else set()
        )
    if isinstance(value, list | tuple):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return set()


def _without_data(text: str, data: ReportData, config: Config) -> str:
    """The report's own words: every string that came from the data or config removed."""
    strings = _strings(data.to_json()) | _strings(config.projects.model_dump(mode="json"))
    for value in sorted(strings, key=len, reverse=True):
        if len(value) >= 3:
            text = text.replace(value, " ")
    return text


def _english_fragments(template_catalog) -> list[str]:  # type: ignore[no-untyped-def]
    catalog = read_catalog("pt_BR")
    fragments = []
    for message in template_catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        translated = catalog.get(message.id)
        strings = (
            translated.string if isinstance(translated.string, tuple) else (translated.string,)
        )
        for msgid in ids:
            if msgid in strings:
                continue  # identical in both languages ("Total", "Tags", "Namespace")
            for fragment in PLACEHOLDER.split(msgid):
                fragment = fragment.strip(" .:()…")
                if len(fragment) >= 5 and fragment not in " ".join(strings):
                    fragments.append(fragment)
    return fragments


def _all_reports(config: Config, locale: str) -> list[tuple[RenderedReport, ReportData]]:
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
    out = []
    for data in (full, empty):
        out.append((render_nightly(data, config, locale=locale), data))
        for namespace in ("suporte", "ml", "unregistered-ns"):
            out.append((render_weekly(data, config, namespace, locale=locale), data))
    return out


def test_pt_br_reports_contain_no_english_source_strings(config: Config, template_catalog) -> None:  # type: ignore[no-untyped-def]
    fragments = _english_fragments(template_catalog)
    assert len(fragments) > 100
    for report, data in _all_reports(config, "pt_BR"):
        assert report.locale == "pt_BR"
        for body in (visible(report.html), report.text, report.subject):
            own_words = _without_data(body, data, config)
            leftovers = [f for f in fragments if f in own_words]
            assert leftovers == [], (report.name, leftovers[:5])


@pytest.mark.parametrize("locale", LOCALES)
def test_every_template_renders_in_every_language(config: Config, locale: str) -> None:
    for report, _ in _all_reports(config, locale):
        for body in (report.html, report.text, report.subject):
            assert "%(" not in body and "{{" not in body and "{%" not in body
        assert f'lang="{locale.replace("_", "-")}"' in report.html
