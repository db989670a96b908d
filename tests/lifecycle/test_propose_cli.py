"""Diff, proposals and the ``hygiene lifecycle`` commands on a snapshot."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.config import Config
from hygiene.inventory import Inventory, RunInfo, write_snapshot
from hygiene.lifecycle import (
    diff_policies,
    equivalent,
    generate_policy,
    normalise,
    plan_lifecycle,
    propose,
)
from hygiene.model import Action, FixSafety, proposal_id
from tests.builders import (
    ACCOUNT,
    REGION,
    RULES_DIR,
    digest_of,
    ecr_default_repository,
    image_row,
    inventory,
)

GB = 1024**3
CUSTOM_POLICY = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": 100,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)


def make_inventory(config: Config, now: datetime) -> Inventory:
    app = [
        image_row("old-untagged", "team/app", pushed_days_ago=40, size=3 * GB, now=now),
        image_row("young-untagged", "team/app", pushed_days_ago=2, size=GB, now=now),
        image_row("prod", "team/app", tags=["prod-1"], pushed_days_ago=900, size=GB, now=now),
        image_row("v1", "team/app", tags=["v1"], pushed_days_ago=300, size=2 * GB, now=now),
    ]
    app += [
        image_row(f"f{n}", "team/app", tags=[f"feature-{n}"], pushed_days_ago=1 + n, now=now)
        for n in range(52)
    ]
    done = [image_row("d1", "team/done", pushed_days_ago=100, now=now)]
    broken = [image_row("b1", "team/broken", pushed_days_ago=100, now=now)]
    custom = [image_row(f"k{n}", "team/custom", pushed_days_ago=20 + n, now=now) for n in range(3)]
    current = generate_policy(config, repository="team/done").text
    repositories = [
        ecr_default_repository("team/app", now=now),
        # same rules, other formatting and descriptions: equivalent
        ecr_default_repository(
            "team/done",
            lifecycle_policy=json.dumps(
                {"rules": [{**r, "description": "x"} for r in json.loads(current)["rules"]]}
            ),
            now=now,
        ),
        ecr_default_repository("team/broken", scan_error="AccessDenied on DescribeImages", now=now),
        ecr_default_repository("team/custom", lifecycle_policy=CUSTOM_POLICY, now=now),
    ]
    run = RunInfo(id="r-test", started_at=now, finished_at=now)
    return inventory(app + done + broken + custom, repositories, now=now, run=run)


def test_propose_builds_unsafe_put_with_preview(config: Config, now: datetime) -> None:
    inventory = make_inventory(config, now)
    proposals = propose(inventory, config, now)
    assert [p.repository for p in proposals] == ["team/app"]
    proposal = proposals[0]
    assert proposal.action is Action.PUT_LIFECYCLE_POLICY
    assert proposal.fix_safety is FixSafety.UNSAFE
    assert proposal.rule_codes == ("RP002",)
    expected = generate_policy(config, repository="team/app").text
    assert proposal.target == {"policy": expected}
    preview = proposal.evidence["preview"]
    # old untagged (40 d > 14 d) + the two oldest of 54 non-protected tagged images
    # (keep 50 counts v1 and the 52 features; prod-1 is shielded but still counted)
    expired = {digest_of("old-untagged"), digest_of("v1"), digest_of("f51"), digest_of("f50")}
    assert set(preview["digests"]) == expired
    assert preview["images"] == 4
    assert preview["bytes"] == 3 * GB + 2 * GB + 2 * 1000
    assert proposal.evidence["current_policy"] is None
    assert proposal.summary == "this policy would expire 4 images, 5.0 GiB (no policy yet)"
    identity = {"account": ACCOUNT, "region": REGION, "repository": "team/app"}
    assert proposal.id == proposal_id(
        Action.PUT_LIFECYCLE_POLICY, {**identity, **proposal.target}, proposal.evidence
    )
    # deterministic: same inputs, same id
    assert propose(inventory, config, now)[0].id == proposal.id


def test_identical_policies_for_two_repositories_get_two_ids(config: Config, now: datetime) -> None:
    repositories = [ecr_default_repository(f"team/empty-{x}", now=now) for x in "ab"]
    run = RunInfo(id="r-test", started_at=now, finished_at=now)
    proposals = propose(inventory([], repositories, now=now, run=run), config, now)
    assert [p.repository for p in proposals] == ["team/empty-a", "team/empty-b"]
    assert proposals[0].target == proposals[1].target  # same generated policy…
    assert proposals[0].id != proposals[1].id  # …but one proposal per repository


def test_existing_policies_are_replaced_only_when_asked(config: Config, now: datetime) -> None:
    inventory = make_inventory(config, now)
    plan = plan_lifecycle(inventory, config, now)
    assert plan.kept_existing == ["team/custom"]
    assert plan.unchanged == ["team/done"]
    assert plan.skipped == [
        "team/broken: not read completely (AccessDenied on DescribeImages); no proposal"
    ]
    replaced = propose(inventory, config, now, repository="team/custom", replace_existing=True)
    assert len(replaced) == 1
    proposal = replaced[0]
    assert proposal.rule_codes == ()
    assert proposal.evidence["current_policy"] == CUSTOM_POLICY
    # three untagged images 20-22 days old, older than 14 days
    assert (
        proposal.summary
        == "this policy would expire 3 images, 2.9 KiB (replaces the current policy)"
    )


def test_diff_and_equivalence(config: Config) -> None:
    generated = generate_policy(config, repository="team/app").text
    data = json.loads(generated)
    data["rules"].reverse()
    shuffled = json.dumps(data)
    assert equivalent(shuffled, generated)
    assert normalise(shuffled) == normalise(generated)
    assert not diff_policies(shuffled, generated, repository="team/app").changed
    data["rules"][0]["selection"]["countNumber"] = 7
    changed = diff_policies(json.dumps(data), generated, repository="team/app")
    assert changed.changed
    assert '-        "countNumber": 7\n' in changed.text
    assert changed.text.startswith("--- current/team/app\n+++ generated/team/app\n")
    new = diff_policies(None, generated, repository="team/app")
    assert new.changed and new.text.startswith("--- /dev/null")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_cli(cli, argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_commands_on_snapshot(
    tmp_path: Path, config: Config, now: datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = write_snapshot(make_inventory(config, now), tmp_path / "snap.parquet")
    common = ["--rules-dir", str(RULES_DIR), "--from-snapshot", str(snapshot)]
    when = ["--now", now.strftime("%Y-%m-%dT%H:%M:%S")]

    code, out, _ = _run(["lifecycle", "show", "team/app", "--rules-dir", str(RULES_DIR)], capsys)
    assert code == 0 and json.loads(out) == json.loads(generate_policy(config).text)

    code, out, _ = _run(
        ["lifecycle", "preview", "team/app", "--format", "json", *common, *when], capsys
    )
    assert code == 0
    assert json.loads(out)[0]["images"] == 4

    code, out, _ = _run(["lifecycle", "preview", "team/app", *common, *when], capsys)
    assert code == 0 and out.startswith("team/app: expire 4 images, 5.0 GiB")

    code, out, err = _run(["lifecycle", "diff", "--namespace", "team", *common], capsys)
    assert code == 0
    assert "+++ generated/team/app" in out and "team/done" not in out
    assert "team/done: current policy is equivalent" in err

    code, out, err = _run(["lifecycle", "propose", *common, *when], capsys)
    assert code == 0
    proposals = json.loads(out)
    assert [p["repository"] for p in proposals] == ["team/app"]
    assert proposals[0]["action"] == "put-lifecycle-policy"
    assert "skipped: team/broken: not read completely" in err
    assert "kept: team/custom: has its own policy" in err

    code, out, err = _run(["lifecycle", "propose", "--replace-existing", *common, *when], capsys)
    assert code == 0
    assert [p["repository"] for p in json.loads(out)] == ["team/app", "team/custom"]

    from hygiene.store import Store

    url = f"sqlite:///{tmp_path / 'store.db'}"
    with Store(url) as other, other.lock(holder="nightly@cron pid 7"):  # a run is planning
        code, out, err = _run(
            ["lifecycle", "propose", "--save", "--store", url, *common, *when], capsys
        )
        assert code == 5 and "nightly@cron pid 7" in err
        assert other.proposals() == []
    code, out, err = _run(
        ["lifecycle", "propose", "--save", "--store", url, *common, *when], capsys
    )
    assert code == 0 and "saved 1 proposal(s)" in err
    with Store(url) as store:
        (saved,) = store.proposals()
    assert saved.id == json.loads(out)[0]["id"] and saved.state.value == "proposed"

    code, _, err = _run(["lifecycle", "preview", "nope/none", *common], capsys)
    assert code == 2 and "no repository matches 'nope/none'" in err

    # a hand-written policy: previewed even when ECR would refuse it, with a note
    given = tmp_path / "given.json"
    rule = {
        "rulePriority": 1,
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 3},
        "action": {"type": "expire"},
    }
    given.write_text(json.dumps({"rules": [rule, dict(rule, rulePriority=2)]}, indent=2))
    argv = ["lifecycle", "preview", "team/app", "--policy", str(given), "--format", "json"]
    code, out, err = _run([*argv, *common, *when], capsys)
    assert code == 0
    assert json.loads(out)[0]["images"] == 56 - 3
    assert "note: team/app: ECR would refuse this policy: rules[0] (rulePriority 1)" in err

    code, _, err = _run([*argv[:3], "--policy", str(tmp_path / "missing.json"), *common], capsys)
    assert code == 2 and "cannot read" in err


def test_cli_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    rule = {
        "rulePriority": 1,
        "selection": {"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 0},
        "action": {"type": "expire"},
    }
    bad.write_text(json.dumps({"rules": [rule]}, indent=2))
    code, _, err = _run(["lifecycle", "validate", str(bad), "--rules-dir", str(RULES_DIR)], capsys)
    assert code == 2
    assert f"{bad}: rules[0] (rulePriority 1): selection: tagStatus 'tagged' requires" in err
    assert "selection.countNumber: must be a positive integer, got 0" in err
    assert err.rstrip().endswith("2 problems; ECR would refuse this policy")
    good = tmp_path / "good.json"
    good.write_text(generate_policy_text())
    code, out, _ = _run(["lifecycle", "validate", str(good), "--rules-dir", str(RULES_DIR)], capsys)
    assert code == 0 and out.startswith(f"OK: {good}: 8 rules")


def generate_policy_text() -> str:
    from hygiene.config import load_config

    return generate_policy(load_config(RULES_DIR)).text
