"""Translations for reports and notifications (gettext catalogs compiled in memory).

English is the source language of every message. Other languages live as gettext
``.po`` sources in ``hygiene/locale/<locale>/LC_MESSAGES/hygiene.po``; they are compiled
with Babel into memory the first time a language is used, so no binary ``.mo`` file has
to be committed or built (a ``.mo`` file next to the ``.po``, if present and newer, is
used instead).

Messages come from the templates in ``reports/`` (``{% trans %}``, ``_()``), from the
Python code of :mod:`hygiene.report`, :mod:`hygiene.notify`, :mod:`hygiene.rules` and
:mod:`hygiene.cli.decisions` (what ``hygiene approve`` prints) (``_()``, ``N_()``: the
rules' finding messages are templates with parameters, see :mod:`hygiene.messages`) and
from every rule's ``fix``; :func:`extract_messages` collects
them, and the tests assert that every one has a translation in every catalog.
"""

from __future__ import annotations

import functools
import gettext
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from hygiene.errors import ConfigError
from hygiene.messages import N_

__all__ = ["N_", "check_locale", "extract_messages", "translations"]

DOMAIN = "hygiene"
SOURCE_LOCALE = "en"
LOCALES: tuple[str, ...] = ("en", "pt_BR")
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def check_locale(locale: str) -> str:
    if locale not in LOCALES:
        raise ConfigError(f"unknown report locale {locale!r} (known: {', '.join(LOCALES)})")
    return locale


def read_catalog(locale: str) -> Catalog:
    path = po_path(locale)
    if not path.is_file():
        raise ConfigError(f"{path}: message catalog not found")
    with path.open("rb") as handle:
        return read_po(handle, locale=locale, domain=DOMAIN)


@functools.cache
def translations(locale: str) -> gettext.NullTranslations:
    """The gettext translations for ``locale`` (English: the source strings as they are)."""
    check_locale(locale)
    if locale == SOURCE_LOCALE:
        return gettext.NullTranslations()
    mo = po_path(locale).with_suffix(".mo")
    if mo.is_file() and mo.stat().st_mtime >= po_path(locale).stat().st_mtime:
        with mo.open("rb") as handle:
            return gettext.GNUTranslations(handle)
    buffer = BytesIO()
    write_mo(buffer, read_catalog(locale), use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def gettext_for(locale: str) -> Any:
    return translations(locale).gettext


def extract_messages(templates: Path) -> Catalog:
    """Every translatable message of the templates and of the report/notify code."""
    catalog = Catalog(domain=DOMAIN, locale=SOURCE_LOCALE)
    jinja_options = {"extensions": "jinja2.ext.i18n", "trimmed": "true"}
    sources: list[tuple[Path, list[tuple[str, str]], dict[str, dict[str, str]]]] = [
        (
            templates,
            [("**.html", "jinja2.ext:babel_extract"), ("**.txt", "jinja2.ext:babel_extract")],
            {"**.html": jinja_options, "**.txt": jinja_options},
        ),
        (PACKAGE_DIR / "report", [("**.py", "python")], {}),
        (PACKAGE_DIR / "notify", [("**.py", "python")], {}),
        (PACKAGE_DIR / "rules", [("**.py", "python")], {}),
        (PACKAGE_DIR / "cli", [("decisions.py", "python")], {}),  # what approve says
    ]
    keywords = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
    for directory, method_map, options in sources:
        for filename, lineno, message, comments, context in extract_from_dir(
            str(directory), method_map, options, keywords=keywords
        ):
            catalog.add(
                message, None, [(filename, lineno)], auto_comments=comments, context=context
            )
    from hygiene.rules import RULES  # the rules register themselves when imported

    for code, rule in sorted(RULES.items()):
        catalog.add(rule.fix, None, [(f"rules:{code}", 0)], auto_comments=[f"fix of {code}"])
    return catalog
