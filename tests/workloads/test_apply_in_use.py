"""Apply asks the workloads again right before deleting (embedded AWS + store)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hygiene.apply import InUseCheck, InUseUnknownError, apply
from hygiene.collect.workloads import Discovery, ImageUse, SourceStatus
from hygiene.model import ProposalState
from hygiene.plan import plan
from hygiene.scan import open_registry
from hygiene.store import Store
from hygiene.wiring import in_use_check
from hygiene_demo.workloads import WorkloadSeeder
from tests import builders
from tests.apply.registry import Seeder
from tests.builders import NOW

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
ADMIN = builders.ADMIN


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'hygiene.db'}") as opened:
        yield opened


def approved(store: Store, seeder: Seeder, config: Any, findings: list[Any]) -> Any:
    (proposal,) = plan(builders.evaluation(findings), seeder.inventory(), config, NOW)
    builders.deployed(store, config)
    builders.store_proposals(store, [proposal], NOW)  # confirmed by a complete scan
    store.mark_notified(NOW - timedelta(days=8), ids=[proposal.id])
    store.approve([proposal.id], ADMIN, now=NOW)
    return proposal


def test_an_image_that_started_running_since_the_proposal_is_not_deleted(
    ecr, aws: WorkloadSeeder, store: Store, config
):
    seeder = Seeder(ecr, NOW)
    repo = seeder.repo("ml/api")
    stale, other = seeder.image(repo, "v1", days_old=400), seeder.image(repo, "v0", days_old=500)
    arm, amd = seeder.image(repo), seeder.image(repo)
    index = seeder.index(repo, [arm, amd], tag="v2", days_old=400)
    # the three newest releases (keep_newest: 3) stay whatever apply decides
    recent = {seeder.image(repo, f"r{n}", days_old=n) for n in (1, 2, 3)}
    proposal = approved(
        store,
        seeder,
        config,
        [
            seeder.finding("IM002", repo, stale),
            seeder.finding("IM002", repo, other),
            seeder.finding("IM002", repo, index, [index, arm, amd]),
        ],
    )
    # after the proposal: a rollback starts a task on v1, and an ARM task on the index
    aws.cluster("prod")
    rollback = aws.task_definition("api", f"{HOST}/ml/api:v1")
    aws.task("prod", rollback, [stale], service="api")
    aws.task("prod", aws.task_definition("multi", f"{HOST}/ml/api:arm-nightly"), [arm])

    handle = open_registry(config, endpoint_url=ecr.endpoint_url, session=ecr.session())
    check = in_use_check(handle, config)
    result = apply(store, handle.client, config, NOW, actor=ADMIN, in_use=check)

    assert seeder.live_digests(repo) == {stale, index, arm, amd, *recent}
    entries = {e.digest: e for e in store.audit_log(proposal_id=proposal.id)}
    assert entries[other].outcome == "deleted"
    assert entries[stale].outcome == "skipped"
    assert entries[stale].detail == "in use now: in-use:ecs:prod/service/api"
    # the whole unit stays: the index and both platform manifests
    assert entries[index].detail.startswith("unit member")
    assert {entries[d].outcome for d in (index, arm, amd)} == {"skipped"}
    state, detail = result.states[proposal.id]
    assert state == ProposalState.SKIPPED
    assert detail.startswith("deleted 1, already gone 0, skipped 4 (e.g. ")
    assert "in use now: in-use:ecs:prod/task/multi:1" in detail
    assert store.get(proposal.id).outcome == detail  # what `hygiene proposals` shows
    assert check.reads == 1  # every source read once, right before the first deletion


def test_nothing_is_deleted_while_a_source_cannot_be_read(
    ecr, aws: WorkloadSeeder, store: Store, config, k8s_api, tmp_path: Path
):
    from hygiene_demo.kubernetes_api import status

    seeder = Seeder(ecr, NOW)
    repo = seeder.repo("ml/api")
    stale = seeder.image(repo, "v1", days_old=400)
    # an API server having a bad night (a 403 is a refusal: tests/apply/test_in_use_refused)
    k8s_api.fail("pods", 500, status(500, "InternalError", "etcdserver: request timed out"))
    kubeconfig = k8s_api.kubeconfig(tmp_path / "kubeconfig")
    policy = builders.shipped_policy()
    policy["in_use"]["kubernetes"] = {"kubeconfig": str(kubeconfig), "contexts": ["lab"]}
    config = builders.config(policy)
    proposal = approved(store, seeder, config, [seeder.finding("IM002", repo, stale)])
    handle = open_registry(config, endpoint_url=ecr.endpoint_url, session=ecr.session())

    result = apply(
        store, handle.client, config, NOW, actor=ADMIN, in_use=in_use_check(handle, config)
    )

    assert seeder.live_digests(repo) == {stale}
    assert store.get(proposal.id).state == ProposalState.APPROVED  # tried again next time
    state, detail = result.states[proposal.id]
    assert state == ProposalState.APPROVED
    assert detail.startswith("in-use source(s) could not be read: kubernetes lab: list pods")
    [row] = [e for e in store.audit_log(proposal_id=proposal.id) if e.outcome == "retry"]
    assert row.detail == detail


# --------------------------------------------------------------------------- the check


def use(where: str, digest: str | None = None, tag: str | None = None, running=False):
    return ImageUse("ecs", where, "ml/api", tag, digest, "123456789012", "us-east-1", running)


class Reader:
    """Answers like discover(): a full read, then fast reads; records what was asked."""

    def __init__(self, full: list[ImageUse], fast: list[list[ImageUse]], fail: bool = False):
        self.full, self.fast, self.fail, self.asked = full, fast, fail, []

    def __call__(self, running_only: bool) -> Discovery:
        self.asked.append(running_only)
        if self.fail:
            return Discovery(statuses=[SourceStatus("ecs us-east-1", "ecs", "failed", "denied")])
        uses = self.fast.pop(0) if running_only else self.full
        return Discovery(uses=uses, statuses=[SourceStatus("ecs us-east-1", "ecs", "ok")])


def test_the_check_reads_everything_once_then_only_what_runs_when_stale():
    clock = iter([0.0, 10.0, 100.0, 101.0])
    service = use("prod/service/api", tag="v1")
    first_task = use("prod/service/api", digest="sha256:" + "1" * 64, running=True)
    later_task = use("prod/task/job:3", digest="sha256:" + "2" * 64, running=True)
    reader = Reader([service, first_task], [[later_task]])
    check = InUseCheck(reader, recheck_seconds=60, clock=lambda: next(clock))

    check.refresh()  # t=0: the full read
    assert check.reason("123456789012", "us-east-1", "ml/api", "sha256:x", ["v1"]) == (
        "in-use:ecs:prod/service/api"
    )
    check.refresh()  # t=10: fresh enough
    check.refresh()  # t=100: stale: running tasks and pods again
    assert reader.asked == [False, True]
    # the service (slow part) is still known; the task that stopped is not; the new one is
    assert check.reason("123456789012", "us-east-1", "ml/api", "sha256:" + "1" * 64, []) is None
    assert check.reason("123456789012", "us-east-1", "ml/api", "sha256:" + "2" * 64, []) == (
        "in-use:ecs:prod/task/job:3"
    )
    assert check.reason("123456789012", "us-east-1", "ml/api", "sha256:y", ["v1"]) is not None
    # another registry's image with the same name is not this one
    assert check.reason("123456789012", "sa-east-1", "ml/api", "sha256:y", ["v1"]) is None
    assert check.reads == 2


def test_the_check_refuses_to_answer_when_a_source_failed():
    reader = Reader([], [], fail=True)
    check = InUseCheck(reader)
    for _ in range(3):  # one failed read: every later proposal of the run fails fast
        with pytest.raises(InUseUnknownError, match="ecs us-east-1: denied"):
            check.refresh()
    assert reader.asked == [False]


def test_apply_without_deletions_reads_no_workloads(store: Store):
    reader = Reader([], [])
    config = builders.config()
    builders.deployed(store, config)
    result = apply(store, lambda a, r: None, config, NOW, actor=ADMIN, in_use=InUseCheck(reader))
    assert result.states == {} and reader.asked == []


# --------------------------------------------------------------------------- permissions


def test_the_permissions_of_an_image_deletion_list_the_in_use_reads(
    ecr, aws: WorkloadSeeder, store: Store, config
):
    """Apply reads the workloads with the role it runs as: every read of that re-check
    (ECS with its scheduled tasks, Lambda, Batch) is listed for delete-images and
    delete-repository, which deletes an abandoned repository's images first."""
    from hygiene.apply import PERMISSIONS
    from hygiene.model import Action
    from tests.iam_recorder import recording

    seeder = Seeder(ecr, NOW)
    repo = seeder.repo("ml/api")
    stale = seeder.image(repo, "v1", days_old=400)
    for n in (1, 2, 3):  # the three newest releases stay (keep_newest: 3)
        seeder.image(repo, f"r{n}", days_old=n)
    aws.cluster("prod")
    aws.task("prod", aws.task_definition("api", f"{HOST}/ml/api:r1"), [])
    aws.service("prod", "api", aws.task_definition("web", f"{HOST}/ml/web:v1"))
    aws.function("fn", [(f"{HOST}/ml/fn:v1", "sha256:" + "1" * 64)])
    aws.job_definition("job", f"{HOST}/ml/job:v1")
    proposal = approved(store, seeder, config, [seeder.finding("IM002", repo, stale)])
    handle = open_registry(config, endpoint_url=ecr.endpoint_url, session=ecr.session())

    with recording() as recorder:
        result = apply(
            store, handle.client, config, NOW, actor=ADMIN, in_use=in_use_check(handle, config)
        )

    assert result.states[proposal.id][0] == ProposalState.APPLIED, result.to_json()
    read = {action for action in recorder.calls if not action.startswith("ecr:")}
    assert {"ecs:ListClusters", "events:ListRuleNamesByTarget", "lambda:ListFunctions"} <= read
    assert "batch:DescribeJobDefinitions" in read
    for action in (Action.DELETE_IMAGES, Action.DELETE_REPOSITORY):
        assert read - set(PERMISSIONS[action]) == set(), action
