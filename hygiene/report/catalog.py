"""Maintain the message catalogs: ``python -m hygiene.report.catalog [--check]``.

Extracts every message of the templates and of the report/notify code, and updates each
``hygiene/locale/<locale>/LC_MESSAGES/hygiene.po`` (new messages appear untranslated,
obsolete ones are dropped). ``--check`` only reports missing or empty translations and
exits 1 if there are any (the tests run the same check).
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from hygiene.report.i18n import LOCALES, SOURCE_LOCALE, extract_messages, po_path, read_catalog
from hygiene.report.render import templates_dir


def missing_translations(template: Catalog, locale: str) -> list[str]:
    catalog = read_catalog(locale)
    missing = []
    for message in template:
        if not message.id:
            continue
        translated = catalog.get(message.id, context=message.context)
        strings = translated.string if translated is not None else None
        texts = strings if isinstance(strings, tuple | list) else (strings,)
        if translated is None or translated.fuzzy or not all(texts):
            missing.append(str(message.id))
    return missing


def update(locale: str, template: Catalog) -> Path:
    path = po_path(locale)
    catalog = read_catalog(locale) if path.is_file() else Catalog(locale=locale, domain="hygiene")
    catalog.update(template, no_fuzzy_matching=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog, width=100, omit_header=False, ignore_obsolete=True)
    return path


def main(argv: list[str]) -> int:
    template = extract_messages(templates_dir())
    status = 0
    for locale in LOCALES:
        if locale == SOURCE_LOCALE:
            continue
        if "--check" not in argv:
            print(f"updated {update(locale, template)}")
        missing = missing_translations(template, locale)
        for msgid in missing:
            print(f"{locale}: untranslated: {msgid!r}")
        status |= bool(missing)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
