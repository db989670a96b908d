"""Per-rule data-driven cases: ``tests/rules/cases/<CODE>.yaml``.

Each file holds ``cases``; a case has ``images`` (and optionally ``repositories``)
rows, a ``config`` merged into an empty policy (selection defaults to the file's rule),
optional ``projects`` (registered namespaces), optional ``in_use`` (references the
workloads reported, :func:`tests.builders.inventory_of`) and ``expect``:

* ``findings``: every finding of the codes mentioned (default: the file's rule),
  matched without regard to order; each expected entry may give ``code``,
  ``repository``, ``namespace``, ``digest``, ``unit`` (aliases, exact order),
  ``bytes``, ``message`` (substring), ``details`` (subset) and ``fix_safety``;
* ``kept``: ``digest`` → exact ``reasons`` (checked when given; a digest inside a
  reason, as in ``referrer-of:<digest>``, is written as its alias);
* ``mute_warnings``: substrings, one per expected warning;
* ``proposals``: every proposal :func:`hygiene.plan.plan` makes from the case's findings,
  matched without regard to order; each entry may give ``action``, ``repository``,
  ``fix_safety``, ``rule_codes`` (exact), ``digests`` (aliases, any order), ``summary``
  (substring) and ``evidence`` (subset).

The rule is the one source of its fix: when a case flags with a rule that declares an
action and gives no ``proposals``, the plan must still propose that action for the
rule's findings (an empty ``proposals: []`` says on purpose that it does not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hygiene.messages import render_message
from hygiene.model import Finding, Proposal
from hygiene.plan import plan
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


def _proposal_matches(
    expected: dict[str, Any], proposal: Proposal, aliases: dict[str, str]
) -> bool:
    digests = [aliases.get(d, d) for d in proposal.target.get("digests", [])]
    checks = {
        "action": lambda v: proposal.action.value == v,
        "repository": lambda v: proposal.repository == v,
        "fix_safety": lambda v: proposal.fix_safety.value == v,
        "rule_codes": lambda v: list(proposal.rule_codes) == v,
        "digests": lambda v: sorted(digests) == sorted(v),
        "summary": lambda v: v in proposal.summary,
        "evidence": lambda v: _subset(v, proposal.evidence),
    }
    unknown = set(expected) - set(checks)
    assert not unknown, f"unknown proposal expectation keys {unknown}"
    return all(checks[k](v) for k, v in expected.items())


def _describe_proposal(proposal: Proposal, aliases: dict[str, str]) -> str:
    digests = [aliases.get(d, d) for d in proposal.target.get("digests", [])]
    return (
        f"{proposal.action.value} {proposal.repository} {proposal.fix_safety.value} "
        f"{list(proposal.rule_codes)} {digests} {proposal.summary}"
    )


def _check_proposals(
    code: str, expect: dict[str, Any], proposals: list[Proposal], aliases: dict[str, str]
) -> None:
    listing = "\n".join(_describe_proposal(p, aliases) for p in proposals) or "(none)"
    if "proposals" not in expect:
        rule = RULES[code]
        flags = any(e.get("code", code) == code for e in expect.get("findings", []))
        if rule.action is not None and flags:
            assert any(p.action is rule.action and code in p.rule_codes for p in proposals), (
                f"{code} flags but the plan proposes no {rule.action.value}; got:\n{listing}"
            )
        return
    remaining = list(proposals)
    for entry in expect["proposals"]:
        match = next((p for p in remaining if _proposal_matches(entry, p, aliases)), None)
        assert match is not None, f"no proposal matches {entry}; got:\n{listing}"
        remaining.remove(match)
    assert not remaining, "unexpected proposals:\n" + "\n".join(
        _describe_proposal(p, aliases) for p in remaining
    )


def _alias_reason(reason: str, aliases: dict[str, str]) -> str:
    kind, sep, rest = reason.partition(":")
    return f"{kind}:{aliases[rest]}" if sep and rest in aliases else reason


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
    inventory = builders.inventory_of(
        case.get("images", []), case.get("repositories", []), in_use=case.get("in_use", [])
    )
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
            aliases.get(k.image_digest, k.image_digest): [
                _alias_reason(r, aliases) for r in k.reasons
            ]
            for k in evaluation.kept
        }
        assert kept == {str(k["digest"]): k["reasons"] for k in expect["kept"]}
    if "mute_warnings" in expect:
        assert len(evaluation.mute_warnings) == len(expect["mute_warnings"])
        for text, warning in zip(expect["mute_warnings"], evaluation.mute_warnings, strict=True):
            assert text in str(warning)
    _check_proposals(code, expect, plan(evaluation, inventory, config, builders.NOW), aliases)


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


def test_every_rule_with_a_fix_has_a_case_showing_its_proposal() -> None:
    """A rule that declares an action has a flagging case whose ``expect.proposals``
    lists a proposal of that action from that rule (the case test checks it is made)."""
    shown: set[str] = set()
    for path in CASES_DIR.glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        rule = RULES[data["rule"]]
        for case in data["cases"]:
            for entry in case.get("expect", {}).get("proposals", []):
                codes = entry.get("rule_codes", [])
                action = rule.action.value if rule.action is not None else None
                if entry.get("action") == action and rule.code in codes:
                    shown.add(rule.code)
    wanted = {code for code, rule in RULES.items() if rule.action is not None}
    assert wanted - shown == set(), f"no case shows the proposal of {sorted(wanted - shown)}"


def test_every_action_a_rule_declares_has_a_proposer() -> None:
    from hygiene.plan import PROPOSERS

    for code, rule in RULES.items():
        if rule.action is not None:
            assert rule.action in PROPOSERS, f"{code}: nothing proposes {rule.action.value}"
