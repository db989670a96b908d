"""Generate the catalogue of docs/rules.md from the rule registry, so it never drifts.

``python -m hygiene.rules.docgen`` rewrites the part of docs/rules.md between the
catalogue markers (``--check`` only tells whether it is current); a test fails when the
committed catalogue differs from the generated one. Everything a rule says about itself
comes from its ``@rule(...)`` declaration and its docstring: code, name, severity, fix
safety, what it deletes, the action the plan proposes, What it flags, Fix, options.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from hygiene.rules.base import FAMILIES, RULES, Deletes, Rule, catalogue_order

BEGIN = (
    "<!-- catalogue: generated from the rule registry by `python -m hygiene.rules.docgen`;"
    " do not edit by hand -->"
)
END = "<!-- end of the generated catalogue -->"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
FAMILY_TITLES = {
    "naming": "Naming",
    "images": "Images",
    "tags": "Tags",
    "repositories": "Repositories",
    "compliance": "Compliance",
}


def _markdown(text: str) -> str:
    """A docstring section as Markdown: ````x```` → ```x```, wrapped lines joined."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip())]
    return "\n\n".join(p.replace("``", "`") for p in paragraphs if p)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def _rule(rule: Rule) -> str:
    sections = rule.doc_sections()
    facts = [f"severity **{rule.severity.value}**", f"fix **{rule.fix_safety.value}**"]
    if rule.deletes is not Deletes.NOTHING:
        facts.append(f"deletes {rule.deletes.value}")
    if rule.action is not None:
        facts.append(f"proposes `{rule.action.value}`")
    lines = [
        f"#### {rule.code} {rule.name}",
        "",
        f"*{rule.summary}* — {', '.join(facts)}.",
        "",
        _markdown(sections.get("What it flags", "")),
        "",
        f"Fix: {_markdown(sections.get('Fix', rule.fix))}",
        "",
    ]
    if rule.options:
        lines += ["| option | default | range | meaning |", "|---|---|---|---|"]
        lines += [
            f"| `{o.name}` | `{_value(o.default)}` | {o.describe_range()} | {o.help} |"
            for o in rule.options
        ]
        lines.append("")
    return "\n".join(lines)


def render() -> str:
    """The catalogue, markers included."""
    parts = [BEGIN, ""]
    for family, prefix in FAMILIES.items():
        rules = [RULES[c] for c in sorted(RULES, key=catalogue_order) if c.startswith(prefix)]
        if not rules:
            continue
        parts += [f"### {FAMILY_TITLES[family]} ({prefix})", ""]
        parts += [_rule(rule) for rule in rules]
    parts.append(END)
    return "\n".join(parts) + "\n"


def splice(document: str, catalogue: str) -> str:
    """``document`` with its catalogue (between the markers) replaced by ``catalogue``."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{DOCS}: no catalogue markers ({BEGIN!r} … {END!r})")
    return document[:start] + catalogue + document[end + len(END) + 1 :]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    current = DOCS.read_text(encoding="utf-8")
    wanted = splice(current, render())
    if "--check" in args:
        if wanted != current:
            print(f"{DOCS} is out of date: run python -m hygiene.rules.docgen", file=sys.stderr)
            return 1
        return 0
    DOCS.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
