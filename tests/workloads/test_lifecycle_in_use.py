"""A lifecycle policy never expires what runs: plan, apply and the nightly finding, end to
end on the embedded AWS (moto server: ECR, ECS, Batch), the local Kubernetes API server,
the in-use file, and the store on SQLite and PostgreSQL.

ECR carries out a lifecycle policy by itself, daily, with no re-check. The plan shields
each image in use by a tag that workloads name (an exact-tag rule ahead of every other),
proposes nothing when an image in use cannot be shielded (named by digest only), apply
previews the policy on the live repository and asks the workloads again right before
the put, and RP004 flags a deployed policy (anyone's) that would expire an image in use.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hygiene.apply import apply
from hygiene.lifecycle import parse_policy
from hygiene.model import Action, ProposalState
from hygiene.scan import collect, evaluate, open_registry
from hygiene.store import Store
from hygiene.wiring import in_use_check
from hygiene_demo.kubernetes_api import KubernetesApi
from hygiene_demo.workloads import WorkloadSeeder
from tests import builders
from tests.apply.registry import Seeder
from tests.builders import NOW

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
ADMIN = builders.ADMIN


KEEP_ONE = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "keep one",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)


def lifecycle_policy(**changes: Any) -> dict[str, Any]:
    """The shipped policy, lifecycle keeping the newest 2 tagged images, RP rules only."""
    policy = builders.shipped_policy()
    policy["selection"] = {"select": ["RP002", "RP004"]}
    policy["lifecycle"]["keep_tagged"] = [{"patterns": ["*"], "keep": 2}]
    policy["lifecycle"]["overrides"] = []
    for key, value in changes.items():
        policy[key] = {**policy.get(key, {}), **value}
    return policy


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hygiene.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    with Store(url) as opened:
        yield opened


def scan(ecr: Any, config: Any) -> Any:
    handle = open_registry(config, endpoint_url=ecr.endpoint_url, session=ecr.session())
    inventory = collect(handle, config, now=NOW, progress=False)
    assert inventory.run.complete, inventory.run.errors
    return evaluate(inventory, config, NOW)


def lifecycle_proposals(result: Any) -> dict[str, Any]:
    return {p.repository: p for p in result.proposals if p.action is Action.PUT_LIFECYCLE_POLICY}


@pytest.fixture
def registry(ecr: Any, aws: WorkloadSeeder) -> dict[str, str]:
    """``lc/api``: five releases, the oldest run by a service by tag; ``lc/web``: an
    untagged image a task runs by digest (its tag moved on); ``lc/idle``: nothing runs."""
    images = Seeder(ecr, NOW)
    for name in ("lc/api", "lc/web", "lc/idle"):
        images.repo(name)
    d = {
        "v1": images.image("lc/api", "v1", days_old=400),
        "v2": images.image("lc/api", "v2", days_old=300),
        "v3": images.image("lc/api", "v3", days_old=200),
        "v4": images.image("lc/api", "v4", days_old=20),
        "v5": images.image("lc/api", "v5", days_old=10),
        "web-old": images.image("lc/web", None, days_old=300),
        "web-new": images.image("lc/web", "current", days_old=5),
        "idle-1": images.image("lc/idle", "a", days_old=300),
        "idle-2": images.image("lc/idle", "b", days_old=200),
        "idle-3": images.image("lc/idle", "c", days_old=100),
    }
    aws.cluster("prod")
    aws.service("prod", "api", aws.task_definition("api", f"{HOST}/lc/api:v1"))
    web = aws.task_definition("web", f"{HOST}/lc/web:current")
    aws.service("prod", "web", web)
    aws.task("prod", web, [d["web-old"]], service="web")  # still runs the old digest
    return d


# --------------------------------------------------------------------------- plan


def test_an_image_in_use_by_tag_is_shielded_and_one_by_digest_stops_the_policy(ecr, registry):
    d = registry
    config = builders.config(lifecycle_policy())
    result = scan(ecr, config)
    proposals = lifecycle_proposals(result)

    # lc/api: the generated policy would expire v1, v2 and v3; v1 runs in prod/service/api
    api = proposals["lc/api"]
    rules = parse_policy(api.target["policy"]).ordered()
    shields = [r for r in rules if r.tag_pattern_list == ("v1",)]
    assert len(shields) == 1
    [shield] = shields
    assert shield.count_type == "imageCountMoreThan"
    assert shield.rule_priority < min(r.rule_priority for r in rules if r.rule_priority >= 100)
    assert sorted(api.evidence["preview"]["digests"]) == sorted([d["v2"], d["v3"]])
    assert api.evidence["in_use_shielded"] == [
        {
            "digest": d["v1"],
            "action": "expire",
            "tags": ["v1"],
            "in_use": ["in-use:ecs:prod/service/api"],
            "shield_tags": ["v1"],
        }
    ]
    assert api.evidence["in_use_checked"] == [
        "ecs us-east-1",
        "lambda us-east-1",
        "batch us-east-1",
    ]
    assert "1 image in use kept by tag shield(s) v1 (in-use:ecs:prod/service/api)" in api.summary
    assert api.rule_codes == ("RP002",)

    # lc/web: its untagged rule would expire the digest a task still runs: no proposal
    assert "lc/web" not in proposals
    # lc/idle: nothing runs, the policy is proposed as before (no shield, no shielded list)
    idle = proposals["lc/idle"]
    assert "in_use_shielded" not in idle.evidence
    assert sorted(idle.evidence["preview"]["digests"]) == [d["idle-1"]]
    assert "v1" not in idle.target["policy"]


def test_the_plan_says_which_image_in_use_stopped_a_policy(ecr, registry):
    from hygiene.lifecycle import plan_lifecycle

    config = builders.config(lifecycle_policy())
    handle = open_registry(config, endpoint_url=ecr.endpoint_url, session=ecr.session())
    inventory = collect(handle, config, now=NOW, progress=False)
    plan = plan_lifecycle(inventory, config, NOW)

    [line] = [s for s in plan.skipped if s.startswith("lc/web:")]
    assert line == (
        "lc/web: the policy would expire 1 image in use that no tag shield can keep (named by "
        f"digest only): {registry['web-old'][:19]} (untagged; in-use:ecs:prod/service/web); "
        "no proposal"
    )
    assert [h.digest for h in plan.in_use_refused["lc/web"]] == [registry["web-old"]]


def test_without_in_use_discovery_the_same_policies_would_expire_what_runs(ecr, registry):
    """The control: with no workload read, lc/api's policy expires v1 and lc/web's the
    digest a task runs."""
    config = builders.config(lifecycle_policy(in_use={"aws_sources": []}))
    proposals = lifecycle_proposals(scan(ecr, config))
    assert registry["v1"] in proposals["lc/api"].evidence["preview"]["digests"]
    assert proposals["lc/web"].evidence["preview"]["digests"] == [registry["web-old"]]


def kubernetes_config(k8s_api: KubernetesApi, tmp_path: Path) -> Any:
    """The lifecycle configuration with the local Kubernetes API server's context ``lab``
    as the one in-use source."""
    kubeconfig = k8s_api.kubeconfig(tmp_path / "kubeconfig")
    return builders.config(
        lifecycle_policy(
            in_use={"kubernetes": {"kubeconfig": str(kubeconfig), "contexts": ["lab"]}}
        )
    )


def test_no_policy_is_proposed_while_a_source_cannot_be_read(ecr, registry, k8s_api, tmp_path):
    from hygiene_demo.kubernetes_api import status

    k8s_api.fail("pods", 500, status(500, "InternalError", "etcdserver: request timed out"))
    config = kubernetes_config(k8s_api, tmp_path)
    # someone's policy on lc/web keeps one image: the task running web-old by digest
    ecr.client().put_lifecycle_policy(repositoryName="lc/web", lifecyclePolicyText=KEEP_ONE)
    handle = open_registry(config, endpoint_url=ecr.endpoint_url, session=ecr.session())
    inventory = collect(handle, config, now=NOW, progress=False)
    assert inventory.run.in_use_failed
    result = evaluate(inventory, config, NOW)
    assert lifecycle_proposals(result) == {}
    # what the sources that were read name is still said: ECS runs web-old
    [finding] = [f for f in result.findings if f.code == "RP004"]
    assert finding.repository == "lc/web"
    assert finding.details["images"][0]["in_use"] == "in-use:ecs:prod/service/web"


# --------------------------------------------------------------------------- apply


def approve(store: Store, config: Any, proposals: list[Any]) -> None:
    builders.deployed(store, config)
    builders.store_proposals(store, proposals, NOW)
    store.mark_notified(NOW - timedelta(days=8), ids=[p.id for p in proposals])
    store.approve([p.id for p in proposals], ADMIN, now=NOW)


def run_apply(ecr: Any, store: Store, config: Any) -> Any:
    handle = open_registry(config, endpoint_url=ecr.endpoint_url, session=ecr.session())
    return apply(
        store, handle.client, config, NOW, actor=ADMIN, in_use=in_use_check(handle, config)
    )


def deployed_policy(ecr: Any, repository: str) -> str | None:
    client = ecr.client()
    try:
        return str(client.get_lifecycle_policy(repositoryName=repository)["lifecyclePolicyText"])
    except client.exceptions.LifecyclePolicyNotFoundException:
        return None


def test_the_shielded_policy_is_put_and_the_next_scan_finds_nothing_to_say(
    ecr, registry, store: Store
):
    config = builders.config(lifecycle_policy())
    proposals = lifecycle_proposals(scan(ecr, config))
    api, idle = proposals["lc/api"], proposals["lc/idle"]
    approve(store, config, [api, idle])

    result = run_apply(ecr, store, config)

    assert result.states[api.id] == ("applied", "put lifecycle policy")
    assert result.states[idle.id] == ("applied", "put lifecycle policy")
    assert json.loads(deployed_policy(ecr, "lc/api") or "") == json.loads(api.target["policy"])
    # the next night: the tool's own shielded policy is in place; nothing to propose, and
    # it expires nothing a workload runs (no RP004)
    again = scan(ecr, config)
    assert "lc/api" not in lifecycle_proposals(again)
    assert not [f for f in again.findings if f.code == "RP004"]


def test_an_image_that_started_running_after_the_plan_stops_the_put(
    ecr, registry, aws: WorkloadSeeder, store: Store
):
    config = builders.config(lifecycle_policy())
    api = lifecycle_proposals(scan(ecr, config))["lc/api"]
    approve(store, config, [api])
    # between plan and apply: a rollback to v2, which the approved policy expires
    aws.service("prod", "rollback", aws.task_definition("rollback", f"{HOST}/lc/api:v2"))

    result = run_apply(ecr, store, config)

    assert deployed_policy(ecr, "lc/api") is None  # never put
    state, detail = result.states[api.id]
    assert state == ProposalState.SKIPPED
    assert detail == (
        "in use now: the policy would expire or archive 1 image(s) a workload runs: "
        f"{registry['v2'][:19]} (in-use:ecs:prod/service/rollback); not put"
    )
    rows = store.audit_log(proposal_id=api.id)
    assert [(e.outcome, e.detail) for e in rows if e.outcome != "approved"][-1] == (
        "skipped",
        detail,
    )
    assert not [e for e in rows if e.outcome in ("intent", "applied")]
    assert store.get(api.id).state == ProposalState.SKIPPED


def test_a_pod_that_started_after_the_plan_stops_the_put(
    ecr, registry, k8s_api: KubernetesApi, tmp_path: Path, store: Store
):
    config = kubernetes_config(k8s_api, tmp_path)
    idle = lifecycle_proposals(scan(ecr, config))["lc/idle"]
    approve(store, config, [idle])
    pod = copy.deepcopy(k8s_api.objects["pods"]["items"][0])
    pod["metadata"]["name"] = "debug-1"
    pod["spec"]["containers"][0]["image"] = f"{HOST}/lc/idle:a"
    pod["spec"].pop("initContainers", None)
    pod.pop("status", None)
    k8s_api.objects["pods"]["items"].append(pod)

    result = run_apply(ecr, store, config)

    assert deployed_policy(ecr, "lc/idle") is None
    state, detail = result.states[idle.id]
    assert state == ProposalState.SKIPPED
    assert f"{registry['idle-1'][:19]} (in-use:kubernetes:lab/ml/pod/debug-1)" in detail


def test_a_name_added_to_the_in_use_file_after_the_plan_stops_the_put(
    ecr, registry, tmp_path: Path, store: Store
):
    listed = tmp_path / "in-use.txt"
    listed.write_text("# nothing yet\n", encoding="utf-8")
    config = builders.config(lifecycle_policy(protections={"in_use_images_file": str(listed)}))
    idle = lifecycle_proposals(scan(ecr, config))["lc/idle"]
    approve(store, config, [idle])
    listed.write_text("# nothing yet\nlc/idle@" + registry["idle-1"] + "\n", encoding="utf-8")

    result = run_apply(ecr, store, config)

    assert deployed_policy(ecr, "lc/idle") is None
    assert result.states[idle.id][0] == ProposalState.SKIPPED
    assert "(in-use:file:in-use.txt:2)" in result.states[idle.id][1]


def test_nothing_is_put_while_a_source_cannot_be_read_at_apply(
    ecr, registry, k8s_api: KubernetesApi, tmp_path: Path, store: Store
):
    from hygiene_demo.kubernetes_api import status

    config = kubernetes_config(k8s_api, tmp_path)
    idle = lifecycle_proposals(scan(ecr, config))["lc/idle"]
    approve(store, config, [idle])
    k8s_api.fail("pods", 500, status(500, "InternalError", "etcdserver: request timed out"))

    result = run_apply(ecr, store, config)

    assert deployed_policy(ecr, "lc/idle") is None
    assert store.get(idle.id).state == ProposalState.APPROVED  # tried again next time
    state, detail = result.states[idle.id]
    assert state == ProposalState.APPROVED
    assert detail.startswith("in-use source(s) could not be read: kubernetes lab: list pods")
    assert [e.outcome for e in store.audit_log(proposal_id=idle.id, outcome="retry")] == ["retry"]


def _approved_and_not_put(ecr: Any, store: Store, config: Any, forged: Any) -> None:
    """``forged`` (a put-lifecycle-policy proposal whose target is not what the deployed
    configuration generates), approved and applied: skipped, and no policy put."""
    approve(store, config, [forged])

    result = run_apply(ecr, store, config)

    assert deployed_policy(ecr, "lc/api") is None
    assert result.states[forged.id] == (
        "skipped",
        "not the lifecycle policy the deployed configuration generates for lc/api now",
    )


def test_a_forged_shield_that_is_not_an_exact_tag_is_not_put(ecr, registry, store: Store):
    """The exact-tag shields are the only rules apply accepts beyond the generated
    policy: a 'shield' with a wildcard or a small count is a forged target."""
    from hygiene.lifecycle import generate_policy, preview_policy
    from hygiene.lifecycle.generate import with_in_use_shields
    from hygiene.lifecycle.propose import build_proposal

    config = builders.config(lifecycle_policy())
    generated = with_in_use_shields(generate_policy(config, repository="lc/api"), ["v1"])
    data = json.loads(generated.text)
    [forged_rule] = [r for r in data["rules"] if r["selection"].get("tagPatternList") == ["v1"]]
    forged_rule["selection"]["countNumber"] = 1
    forged_rule["selection"]["tagPatternList"] = ["v*"]
    forged = build_proposal(
        account=ecr.account,
        region="us-east-1",
        repository="lc/api",
        namespace="lc",
        generated=generated.__class__(
            generated.scope, generated.policy, json.dumps(data), generated.settings
        ),
        current=None,
        preview=preview_policy(generated.policy, builders.inventory().images, now=NOW),
    )
    _approved_and_not_put(ecr, store, config, forged)


def test_a_real_shield_does_not_carry_another_change_past_apply(ecr, registry, store: Store):
    """Exact-tag shields are the only difference apply accepts: a target with a genuine
    shield and a keep rule made to expire more is not put."""
    from hygiene.lifecycle import generate_policy
    from hygiene.lifecycle.generate import with_in_use_shields

    config = builders.config(lifecycle_policy())
    api = lifecycle_proposals(scan(ecr, config))["lc/api"]
    generated = with_in_use_shields(generate_policy(config, repository="lc/api"), ["v1"])
    assert json.loads(api.target["policy"]) == json.loads(generated.text)
    data = json.loads(api.target["policy"])
    [keep] = [r for r in data["rules"] if r["rulePriority"] == 300]
    keep["selection"]["countNumber"] = 1
    forged = dataclasses.replace(api, target={"policy": json.dumps(data)}, id="p-" + "f" * 12)
    _approved_and_not_put(ecr, store, config, forged)


def test_the_permissions_of_a_lifecycle_put_list_every_read_it_makes(ecr, registry, store: Store):
    """The put is preceded by the repository's re-read and the workloads' (ECS with its
    scheduled tasks, Lambda, Batch): every call is listed for put-lifecycle-policy."""
    from hygiene.apply import PERMISSIONS
    from tests.iam_recorder import recording

    config = builders.config(lifecycle_policy())
    idle = lifecycle_proposals(scan(ecr, config))["lc/idle"]
    approve(store, config, [idle])

    with recording() as recorder:
        result = run_apply(ecr, store, config)

    assert result.states[idle.id][0] == ProposalState.APPLIED
    called = set(recorder.calls)
    assert {
        "ecs:ListClusters",
        "lambda:ListFunctions",
        "batch:DescribeJobDefinitions",
        "ecr:DescribeImages",
        "ecr:PutLifecyclePolicy",
    } <= called
    assert called - set(PERMISSIONS[Action.PUT_LIFECYCLE_POLICY]) == set()


# --------------------------------------------------------------------------- nightly


def test_a_deployed_policy_that_would_expire_an_image_in_use_is_an_error_finding(
    ecr, registry, aws: WorkloadSeeder
):
    """Anyone's policy: here a hand-written one on lc/idle keeping one tagged image, while
    a Batch job definition runs `b` and a task runs `a` by digest."""
    ecr.client().put_lifecycle_policy(repositoryName="lc/idle", lifecyclePolicyText=KEEP_ONE)
    aws.job_definition("etl", f"{HOST}/lc/idle:b")
    config = builders.config(lifecycle_policy())
    result = scan(ecr, config)

    [finding] = [f for f in result.findings if f.code == "RP004"]
    assert finding.repository == "lc/idle"
    assert str(finding.severity) == "error"
    assert finding.details["images"] == [
        {
            "digest": registry["idle-2"],
            "tags": ["b"],
            "action": "expire",
            "in_use": "in-use:batch:etl:1",
        }
    ]
    assert "would expire or archive 1 image(s) a workload runs" in str(finding.message)
    # lc/api has no policy: RP002, not RP004
    assert {f.repository for f in result.findings if f.code == "RP004"} == {"lc/idle"}
