"""The IAM actions :data:`hygiene.apply.PERMISSIONS` lists for an action are the ECR
operations an apply of it really calls, re-check included.

The source-reading test (test_apply_stubbed) sees only calls written in hygiene/apply;
apply's last re-check reads the repository through the scan's own reader
(hygiene.collect.ecr), so these tests run the whole path against the embedded registry
(moto server) and compare the operations the run counted with the list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hygiene.apply import PERMISSIONS, apply
from hygiene.config import Config
from hygiene.model import Action
from hygiene.store import Store
from tests.apply.registry import Seeder
from tests.apply.test_apply_deletion_safety import _abandoned, newest
from tests.apply.test_apply_moto import ADMIN, approve_past_grace, propose

# the repository read again whole, as a scan reads it (hygiene.apply.recheck.read_now)
RE_CHECK = {
    "DescribeRepositories",
    "DescribeImages",
    "GetLifecyclePolicy",
    "GetRepositoryPolicy",
    "ListTagsForResource",
}


def listed(action: Action) -> set[str]:
    return {p.removeprefix("ecr:") for p in PERMISSIONS[action]}


def test_an_image_deletion_calls_only_what_its_permissions_list(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    repo = seeder.repo("suporte/api")
    newest(seeder, repo)
    stale = seeder.image(repo, tag="v0")
    (proposal,) = propose(store, seeder, config, now, [seeder.finding("IM002", repo, stale)])
    approve_past_grace(store, [proposal], now)

    result = apply(store, clients, config, now, actor=ADMIN)

    assert result.states[proposal.id][0] == "applied", result.to_json()
    called = set(result.api_calls)
    assert RE_CHECK | {"BatchGetImage", "BatchDeleteImage"} <= called  # the re-check ran
    assert called - listed(Action.DELETE_IMAGES) == set()


def test_an_abandoned_repository_deletion_calls_only_what_its_permissions_list(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    repo, digests = _abandoned(seeder)
    (proposal,) = propose(store, seeder, config, now, [seeder.finding("RP003", repo, digests[0])])
    approve_past_grace(store, [proposal], now)

    result = apply(store, clients, config, now, actor=ADMIN)

    assert result.states[proposal.id][0] == "applied", result.to_json()
    called = set(result.api_calls)
    assert RE_CHECK | {"BatchDeleteImage", "DeleteRepository"} <= called
    assert called - listed(Action.DELETE_REPOSITORY) == set()
