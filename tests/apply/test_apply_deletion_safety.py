"""apply() against the embedded registry: the last re-read, and answers that get lost.

* Referrers pushed as real OCI manifests with a ``subject`` and no ECR metadata: apply
  reads each manifest right before deleting and refuses one whose subject is present
  and stays, whatever the proposal says; legacy cosign tags the same.
* A fault proxy in front of the registry performs the delete and then drops the
  connection or answers 500: the images are recorded ``deleted`` with
  ``response_lost``, in this run or the next, never ``gone``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from hygiene.apply import apply
from hygiene.config import Config
from hygiene.model import ProposalState
from hygiene.store import Store
from tests.apply.registry import Seeder
from tests.apply.test_apply_moto import ADMIN, approve_past_grace, propose
from tests.faults import FaultProxy


def newest(seeder: Seeder, repo: str) -> set[str]:
    """Three recent releases: the newest-3 protection keeps them, so apply's last look
    with the deployed rules (hygiene.apply.recheck) lets the older images go."""
    return {seeder.image(repo, tag=f"r{n}", days_old=n) for n in (1, 2, 3)}


def outcomes(store: Store, proposal_id: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for entry in store.audit_log(proposal_id=proposal_id):
        if entry.digest:
            out.setdefault(entry.digest, []).append(entry.outcome)
    return out


def test_a_referrer_whose_subject_stays_is_never_deleted_whatever_the_plan_said(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    repo = seeder.repo("suporte/api")
    release = seeder.image(repo, tag="1.0.0")
    signature = seeder.referrer(repo, release)  # no subjectManifestDigest from ECR
    legacy = seeder.signature(repo, release)
    dangling = seeder.image(repo)
    # a plan that got it wrong: the signatures as if they were unrelated leftovers
    findings = [seeder.finding("IM002", repo, d) for d in (signature, legacy, dangling)]
    (proposal,) = propose(store, seeder, config, now, findings)
    approve_past_grace(store, [proposal], now)

    result = apply(store, clients, config, now, actor=ADMIN)

    assert seeder.live_digests(repo) == {release, signature, legacy}
    rows = {e.digest: e for e in store.audit_log(proposal_id=proposal.id) if e.digest}
    assert rows[signature].outcome == "skipped"
    assert f"its subject {release} exists and is not being deleted" in rows[signature].detail
    assert rows[legacy].outcome == "skipped"
    assert release in rows[legacy].detail
    assert rows[dangling].outcome == "deleted"
    assert result.states[proposal.id][0] == "skipped"


def test_a_referrer_goes_after_its_subject_and_only_if_the_subject_went(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    repo = seeder.repo("suporte/api")
    recent = newest(seeder, repo)
    old = seeder.image(repo, tag="0.9")
    signature = seeder.referrer(repo, old)
    sbom = seeder.referrer(repo, signature, artifact_type=None)  # a referrer of a referrer
    findings = [seeder.finding("IM002", repo, old, [old, signature, sbom])]
    (proposal,) = propose(store, seeder, config, now, findings)
    approve_past_grace(store, [proposal], now)

    apply(store, clients, config, now, actor=ADMIN)

    assert seeder.live_digests(repo) == recent
    intents = [e for e in store.audit_log(proposal_id=proposal.id) if e.outcome == "intent"]
    batch_of = {d: n for n, i in enumerate(intents) for d in i.data["digests"]}
    assert batch_of[old] < batch_of[signature] < batch_of[sbom]
    saved = {d: m for i in intents for d, m in i.data["manifests"].items()}
    assert json.loads(saved[signature]["manifest"])["subject"]["digest"] == old


def test_a_referrers_tag_index_is_kept_while_its_subject_stays_and_goes_after_it(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    """The OCI referrers tag schema: an index tagged ``sha256-<hex>`` lists the
    referrers of that image. A plan that proposes the index alone is refused (its
    subject, named by the tag, stays); deleting the subject takes it along, after."""
    repo = seeder.repo("suporte/api")
    recent = newest(seeder, repo)
    release = seeder.image(repo, tag="1.0.0")
    signature = seeder.referrer(repo, release)
    tag = "sha256-" + release.removeprefix("sha256:")
    listing = seeder.index(repo, [signature], tag=tag)
    wrong = [seeder.finding("IM002", repo, listing)]
    (proposal,) = propose(store, seeder, config, now, wrong)
    approve_past_grace(store, [proposal], now)

    apply(store, clients, config, now, actor=ADMIN)

    assert seeder.live_digests(repo) == {release, signature, listing, *recent}
    (row,) = [e for e in store.audit_log(proposal_id=proposal.id) if e.digest]
    assert row.outcome == "skipped"
    assert f"its subject {release} exists and is not being deleted" in row.detail

    right = [seeder.finding("IM002", repo, release, [release, listing, signature])]
    (proposal,) = propose(store, seeder, config, now, right)
    approve_past_grace(store, [proposal], now)

    apply(store, clients, config, now, actor=ADMIN)

    assert seeder.live_digests(repo) == recent
    intents = [e for e in store.audit_log(proposal_id=proposal.id) if e.outcome == "intent"]
    batch_of = {d: n for n, i in enumerate(intents) for d in i.data["digests"]}
    assert batch_of[release] < batch_of[listing] < batch_of[signature]


@pytest.mark.parametrize("fault", ["drop", "500"])
def test_a_delete_whose_answer_is_lost_is_recorded_deleted_in_the_same_run(
    fault: str,
    store: Store,
    seeder: Seeder,
    proxy: FaultProxy,
    config: Config,
    now: datetime,
) -> None:
    """No retry: the call raises after ECR deleted; the run re-reads and knows."""
    repo = seeder.repo("suporte/api")
    recent = newest(seeder, repo)
    digests = [seeder.image(repo, tag=f"v{i}") for i in range(3)]
    (proposal,) = propose(
        store, seeder, config, now, [seeder.finding("IM002", repo, d) for d in digests]
    )
    approve_past_grace(store, [proposal], now)
    proxy.fail("BatchDeleteImage", fault)
    client = proxy.client(max_attempts=0)

    result = apply(store, lambda a, r: client, config, now, actor=ADMIN)

    assert seeder.live_digests(repo) == recent
    assert ("BatchDeleteImage", fault) in proxy.seen
    for digest in digests:
        assert outcomes(store, proposal.id)[digest] == ["deleted"]
    rows = [e for e in store.audit_log(proposal_id=proposal.id) if e.outcome == "deleted"]
    assert all(e.data["response_lost"] is True for e in rows)
    assert result.states[proposal.id][0] == "applied"


@pytest.mark.parametrize("fault", ["drop", "500"])
def test_a_retried_delete_that_finds_nothing_is_deleted_not_gone(
    fault: str,
    store: Store,
    seeder: Seeder,
    proxy: FaultProxy,
    config: Config,
    now: datetime,
) -> None:
    """botocore retries the lost call; the retry answers ImageNotFound for every image:
    this run deleted them (before the fix: 'gone, deleted by someone else')."""
    repo = seeder.repo("suporte/api")
    recent = newest(seeder, repo)
    digests = [seeder.image(repo, tag=f"v{i}") for i in range(3)]
    (proposal,) = propose(
        store, seeder, config, now, [seeder.finding("IM002", repo, d) for d in digests]
    )
    approve_past_grace(store, [proposal], now)
    proxy.fail("BatchDeleteImage", fault)
    client = proxy.client(max_attempts=3)

    apply(store, lambda a, r: client, config, now, actor=ADMIN)

    assert [s for s in proxy.seen if s[0] == "BatchDeleteImage"] == [
        ("BatchDeleteImage", fault),
        ("BatchDeleteImage", "ok"),
    ]
    rows = [e for e in store.audit_log(proposal_id=proposal.id) if e.digest]
    assert {e.digest for e in rows if e.outcome == "deleted"} == set(digests)
    assert not [e for e in rows if e.outcome == "gone"]
    assert seeder.live_digests(repo) == recent
    assert all(e.data["response_lost"] and e.data["retry_attempts"] == 1 for e in rows)


def test_when_even_the_re_read_fails_the_next_run_records_deleted_not_gone(
    store: Store,
    seeder: Seeder,
    proxy: FaultProxy,
    config: Config,
    now: datetime,
) -> None:
    repo = seeder.repo("suporte/api")
    recent = newest(seeder, repo)
    digests = [seeder.image(repo, tag=f"v{i}") for i in range(2)]
    (proposal,) = propose(
        store, seeder, config, now, [seeder.finding("IM002", repo, d) for d in digests]
    )
    approve_past_grace(store, [proposal], now)
    client = proxy.client(max_attempts=0)
    proxy.fail("BatchDeleteImage", "drop")
    # DescribeImages: the re-check by digest, the repository listing and the last look
    # with the deployed rules work; the re-read after the lost answer does not (the
    # network is down for a moment)
    proxy.fail("DescribeImages", "ok", "ok", "ok", "drop")

    first = apply(store, lambda a, r: client, config, now, actor=ADMIN)

    assert seeder.live_digests(repo) == recent
    assert all(outcomes(store, proposal.id)[d] == ["retry"] for d in digests)
    assert store.get(proposal.id).state == ProposalState.APPROVED
    assert "left for the next apply 2" in first.states[proposal.id][1]

    direct = seeder.ecr.client()
    second = apply(store, lambda a, r: direct, config, now, actor=ADMIN)

    for digest in digests:
        assert outcomes(store, proposal.id)[digest] == ["retry", "deleted"]
    rows = [e for e in store.audit_log(proposal_id=proposal.id) if e.outcome == "deleted"]
    assert all(e.data["response_lost"] is True for e in rows)
    assert all("whose answer was lost" in e.detail for e in rows)
    assert second.states[proposal.id][0] == "applied"
    assert "deleted 2, already gone 0" in second.states[proposal.id][1]


def test_an_image_someone_else_deleted_is_still_gone(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    """No intent was ever recorded for it: it was not this tool."""
    repo = seeder.repo("suporte/api")
    newest(seeder, repo)
    digests = [seeder.image(repo, tag=f"v{i}") for i in range(2)]
    (proposal,) = propose(
        store, seeder, config, now, [seeder.finding("IM002", repo, d) for d in digests]
    )
    approve_past_grace(store, [proposal], now)
    seeder.ecr.client().batch_delete_image(
        repositoryName=repo, imageIds=[{"imageDigest": digests[0]}]
    )

    apply(store, clients, config, now, actor=ADMIN)

    assert outcomes(store, proposal.id) == {digests[0]: ["gone"], digests[1]: ["deleted"]}


def _abandoned(seeder: Seeder) -> tuple[str, list[str]]:
    repo = seeder.repo("bigsea/spark-old")
    arm, amd = seeder.image(repo, days_old=400), seeder.image(repo, days_old=400)
    index = seeder.index(repo, [arm, amd], tag="2.0", days_old=400)
    release = seeder.image(repo, tag="1.0", days_old=500, pulled_days_ago=300)
    signature = seeder.referrer(repo, release, days_old=500)
    return repo, [index, arm, amd, release, signature]


def test_an_abandoned_repository_goes_after_its_images_each_manifest_saved(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    repo, digests = _abandoned(seeder)
    (proposal,) = propose(store, seeder, config, now, [seeder.finding("RP003", repo, digests[0])])
    assert proposal.action.value == "delete-repository"
    approve_past_grace(store, [proposal], now)

    dry = apply(store, clients, config, now, actor=ADMIN, dry_run=True)
    assert dry.states[proposal.id][0] == "would-apply"
    assert seeder.live_digests(repo) == set(digests)  # a dry run changes nothing

    result = apply(store, clients, config, now, actor=ADMIN)

    assert result.states[proposal.id][0] == "applied", result.to_json()
    names = [
        r["repositoryName"] for r in seeder.ecr.client().describe_repositories()["repositories"]
    ]
    assert repo not in names
    entries = store.audit_log(proposal_id=proposal.id)
    intents = [e for e in entries if e.outcome == "intent"]
    saved = {d: m for i in intents for d, m in (i.data.get("manifests") or {}).items()}
    assert set(saved) == set(digests)  # the whole repository, manifest by manifest
    assert json.loads(saved[digests[0]]["manifest"])["manifests"][0]["digest"] == digests[1]
    assert {e.digest for e in entries if e.outcome == "deleted"} == set(digests)
    last = intents[-1]
    assert (
        "digests" not in last.data and last.data["before"]["repository"]["repositoryName"] == repo
    )
    assert [e.outcome for e in entries][-1] == "applied"


def test_an_abandoned_repository_that_got_a_push_or_a_pull_is_left_alone(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    repo, digests = _abandoned(seeder)
    other = seeder.repo("bigsea/hadoop-old")
    lone = seeder.image(other, tag="1.0", days_old=500)
    findings = [seeder.finding("RP003", repo, digests[0]), seeder.finding("RP003", other, lone)]
    proposals = {p.repository: p for p in propose(store, seeder, config, now, findings)}
    pushed, pulled = proposals[repo], proposals[other]
    approve_past_grace(store, [pushed, pulled], now)
    # after the proposal: someone pushes to one repository and pulls from the other
    fresh = seeder.image(repo, tag="3.0", days_old=0)
    image = seeder.backend.repositories[other].images[0]
    image.last_recorded_pull_time = now

    result = apply(store, clients, config, now, actor=ADMIN)

    assert seeder.live_digests(repo) == {*digests, fresh}
    assert seeder.live_digests(other) == {lone}
    assert result.states[pushed.id][0] == "skipped"
    assert "1 image(s) pushed since the proposal" in result.states[pushed.id][1]
    assert result.states[pulled.id][0] == "skipped"
    rows = {e.digest: e for e in store.audit_log(proposal_id=pulled.id) if e.digest}
    assert "pulled at" in rows[lone].detail


def test_an_abandoned_repository_lets_no_image_proposal_delete_a_protected_image(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    """The deployed rules flag the whole repository as abandoned (RP003) when apply looks
    again; that takes every image only for the repository's own deletion. An image
    proposal (forged, or outdated) for the release the newest-N protection keeps is
    still skipped."""
    repo, digests = _abandoned(seeder)
    release = digests[3]
    (proposal,) = propose(store, seeder, config, now, [seeder.finding("IM002", repo, release)])
    approve_past_grace(store, [proposal], now)

    apply(store, clients, config, now, actor=ADMIN)

    assert seeder.live_digests(repo) == set(digests)
    (row,) = [e for e in store.audit_log(proposal_id=proposal.id) if e.digest]
    assert row.outcome == "skipped"
    assert "kept by the deployed rules now" in row.detail and "newest" in row.detail
