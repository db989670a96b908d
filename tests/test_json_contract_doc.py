"""docs/json-contract.md's example is what the code writes: same keys, and a finding's
rule name, severity, fix and fix safety are the rule's."""

from __future__ import annotations

import json
import re
from typing import Any

from hygiene.inventory import RunInfo
from hygiene.messages import Message, message_json
from hygiene.model import Action, FixSafety
from hygiene.rules import RULES
from tests import builders
from tests.builders import REPO_ROOT


def example() -> dict[str, Any]:
    text = (REPO_ROOT / "docs" / "json-contract.md").read_text(encoding="utf-8")
    block = re.search(r"```json\n(.*?)\n```", text, re.S)
    assert block is not None
    return dict(json.loads(block.group(1)))


def test_the_example_has_the_keys_the_code_writes() -> None:
    doc = example()
    finding = builders.finding("IM002", "suporte/api", digest="a", message=Message("x"))
    assert set(doc["findings"][0]) == set(finding.to_json())
    proposal = builders.proposal(Action.DELETE_IMAGES, "suporte/api", fix_safety=FixSafety.UNSAFE)
    assert set(doc["proposals"][0]) == set(proposal.to_json())
    run = RunInfo(id="r", started_at=builders.NOW).to_json()
    assert set(doc["run"]) == set(run)
    assert set(doc["mute_warnings"][0]) == set(message_json(Message("x")))
    assert set(doc) == {
        "run", "inventory", "findings", "kept", "proposals", "mute_warnings", "snapshot",
    }  # fmt: skip


def test_the_example_finding_is_what_its_rule_says() -> None:
    for item in example()["findings"]:
        rule = RULES[item["code"]]
        assert item["rule"] == rule.name
        assert item["severity"] == rule.severity.value
        assert item["fix_safety"] == rule.fix_safety.value
        assert item["fix"] == rule.fix
        assert item["message"] == Message(item["message_template"], item["message_params"]).render()


def test_the_example_mute_warning_renders_to_its_message() -> None:
    warning = example()["mute_warnings"][0]
    rendered = Message(warning["message_template"], warning["message_params"]).render()
    assert rendered == warning["message"]
