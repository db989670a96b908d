"""Per-rule data-driven cases: ``tests/rules/cases/<CODE>.yaml``.

Each file holds ``cases``; a case has ``images`` (and optionally ``repositories``)
rows, a ``config`` merged into an empty policy (selection defaults to the file's rule),
optional ``projects`` (registered namespaces) and ``expect``:

* ``findings``: every finding of the codes mentioned (default: the file's rule),
  matched without regard to order; each expected entry may give ``code``,
  ``repository``, ``namespace``, ``digest``, ``unit`` (aliases, exact order),
  ``bytes``, ``message`` (substring), ``details`` (subset) and ``fix_safety``;
* ``kept``: ``digest`` → exact ``reasons`` (checked when given);
* ``mute_warnings``: substrings, one per expected warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hygiene.messages import render_message
from hygiene.model import Finding
from hygiene.rules import RULES, evaluate
from tests import builders
from tests.builders import PROJECTS, digest_of

CASES_DIR = Path(__file__).parent / "cases"


def load_cases() -> list[Any]:
    params = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in data["cases"]:
            params.append(pytest.param(data["rule"], case, id=f"{path.stem}:{case['name']}"))
    return params


def _subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list) and any(isinstance(e, dict) for e in expected):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_subset(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual)


def _unit_matches(expected: list[str], actual: list[str]) -> bool:
    """The unit's first digest is the image itself; the rest (children, referrers) in any
    order."""
    return actual[:1] == expected[:1] and sorted(actual[1:]) == sorted(expected[1:])


def _readable(details: dict[str, Any]) -> dict[str, Any]:
    """Details as a reader sees them in English: steps are messages (template and
    parameters, translated by the reports), shown rendered."""
    if "steps" not in details:
        return details
    return {**details, "steps": [render_message(step) for step in details["steps"]]}


def _matches(expected: dict[str, Any], finding: Finding, aliases: dict[str, str]) -> bool:
    checks = {
        "code": lambda v: finding.code == v,
        "repository": lambda v: finding.repository == v,
        "namespace": lambda v: finding.namespace == v,
        "account": lambda v: finding.account == v,
        "region": lambda v: finding.region == v,
        "digest": lambda v: finding.image_digest == (digest_of(v) if v else None),
        "unit": lambda v: _unit_matches(v, [aliases.get(d, d) for d in finding.details["unit"]]),
        "bytes": lambda v: finding.bytes == v,
        "message": lambda v: v in finding.message,
        "details": lambda v: _subset(v, _readable(finding.details)),
        "fix_safety": lambda v: finding.fix_safety.value == v,
        "severity": lambda v: finding.severity.value == v,
    }
    unknown = set(expected) - set(checks)
    assert not unknown, f"unknown expectation keys {unknown}"
    return all(checks[k](v) for k, v in expected.items())


def _describe(finding: Finding, aliases: dict[str, str]) -> str:
    unit = [aliases.get(d, d) for d in finding.details.get("unit", [])]
    image = aliases.get(finding.image_digest or "", finding.image_digest)
    return (
        f"{finding.code} {finding.repository or finding.namespace} {image} {unit} {finding.message}"
    )


@pytest.mark.parametrize(("code", "case"), load_cases())
def test_rule_case(code: str, case: dict[str, Any]) -> None:
    policy = dict(case.get("config") or {})
    policy.setdefault("selection", {"select": [code]})
    config = builders.config(policy, projects=case.get("projects", PROJECTS))
    inventory = builders.inventory_of(case.get("images", []), case.get("repositories", []))
    evaluation = evaluate(inventory, config, builders.NOW)

    expect = case.get("expect", {})
    aliases = builders.aliases(str(r["digest"]) for r in case.get("images", []))
    expected = expect.get("findings", [])
    codes = {e.get("code", code) for e in expected} | {code}
    actual = [f for f in evaluation.findings if f.code in codes]
    remaining = list(actual)
    for entry in expected:
        entry = {"code": code, **entry}
        match = next((f for f in remaining if _matches(entry, f, aliases)), None)
        assert match is not None, f"no finding matches {entry}; got:\n" + "\n".join(
            _describe(f, aliases) for f in actual
        )
        remaining.remove(match)
    assert not remaining, "unexpected findings:\n" + "\n".join(
        _describe(f, aliases) for f in remaining
    )
    if "kept" in expect:
        kept = {
            aliases.get(k.image_digest, k.image_digest): list(k.reasons) for k in evaluation.kept
        }
        assert kept == {str(k["digest"]): k["reasons"] for k in expect["kept"]}
    if "mute_warnings" in expect:
        assert len(evaluation.mute_warnings) == len(expect["mute_warnings"])
        for text, warning in zip(expect["mute_warnings"], evaluation.mute_warnings, strict=True):
            assert text in str(warning)


def test_every_rule_is_documented_and_has_flagging_and_passing_cases() -> None:
    by_code: dict[str, list[dict[str, Any]]] = {}
    for path in CASES_DIR.glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert path.stem == data["rule"]
        by_code[data["rule"]] = data["cases"]
    for code, rule in RULES.items():
        sections = rule.doc_sections()
        missing = {"What it flags", "Why it matters", "Example", "Fix"} - set(sections)
        assert not missing, f"{code} docstring lacks {missing}"
        assert rule.summary, f"{code} has no one-line summary"
        cases = by_code.get(code)
        assert cases, f"no tests/rules/cases/{code}.yaml"

        def flags(case: dict[str, Any], code: str = code) -> bool:
            found = case.get("expect", {}).get("findings", [])
            return any(f.get("code", code) == code for f in found)

        assert any(flags(c) for c in cases), f"{code}: no case where the rule flags"
        assert any(not flags(c) for c in cases), f"{code}: no case where the rule passes"
