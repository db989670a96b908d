"""apply() against the embedded registry (moto server over HTTP)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from hygiene.apply import SimulatedCrash, apply
from hygiene.config import Config
from hygiene.errors import LockHeldError
from hygiene.model import Action, FixSafety, Proposal, ProposalState
from hygiene.plan import plan
from hygiene.store import Store
from tests import builders
from tests.apply.registry import Seeder, with_apply

ADMIN = builders.ADMIN


def propose(
    store: Store, seeder: Seeder, config: Config, now: datetime, findings
) -> list[Proposal]:
    proposals = plan(builders.evaluation(findings), seeder.inventory(), config, now)
    builders.deployed(store, config)
    builders.store_proposals(store, proposals, now)
    return proposals


def approve_past_grace(store: Store, proposals: list[Proposal], now: datetime) -> None:
    """Owners notified 8 days ago (grace 7 days), then approved by an admin."""
    store.mark_notified(now - timedelta(days=8), ids=[p.id for p in proposals])
    store.approve([p.id for p in proposals], ADMIN, now=now)


def test_approved_deletes_happen_and_protected_images_survive(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    repo = seeder.repo("suporte/api")
    stale = seeder.image(repo, tag="v1")
    untagged = seeder.image(repo)
    kept = seeder.image(repo, tag="latest", days_old=1)
    # the three newest tagged images are protected (keep_newest: 3)
    newer = {seeder.image(repo, tag=f"v{n}", days_old=n) for n in (2, 3)}
    arm, amd = seeder.image(repo), seeder.image(repo)
    index = seeder.index(repo, [arm, amd], tag="v0")
    findings = [
        seeder.finding("IM002", repo, stale),
        seeder.finding("IM002", repo, untagged),
        seeder.finding("IM002", repo, index, [index, arm, amd]),
    ]
    (proposal,) = propose(store, seeder, config, now, findings)
    approve_past_grace(store, [proposal], now)

    result = apply(store, clients, config, now, actor=ADMIN)

    assert seeder.live_digests(repo) == {kept, *newer}
    assert result.states[proposal.id][0] == "applied", result.to_json()
    assert store.get(proposal.id).state == ProposalState.APPLIED
    entries = store.audit_log(proposal_id=proposal.id)
    deleted = [e for e in entries if e.outcome == "deleted"]
    assert sorted(e.digest for e in deleted) == sorted([stale, untagged, index, arm, amd])
    assert all(e.actor == ADMIN.name and e.run_id == result.run_id for e in deleted)
    intents = [e for e in entries if e.outcome == "intent"]
    saved = {d: m for i in intents for d, m in i.data["manifests"].items()}
    assert json.loads(saved[index]["manifest"])["manifests"][0]["digest"] == arm
    assert saved[stale]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    # the index went in an earlier batch than its children
    batch_of = {d: n for n, i in enumerate(intents) for d in i.data["digests"]}
    assert batch_of[index] < batch_of[arm] and batch_of[index] < batch_of[amd]
    run = store.runs(last=1, kind="apply")[0]
    assert run.status == "ok" and run.counts["deleted"] == 5


def test_a_stop_request_leaves_unstarted_proposals_for_next_time(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    import threading

    repos = [seeder.repo(f"team/s{i}") for i in range(2)]
    digests = [seeder.image(r, tag="old") for r in repos]
    # the three newest releases of each (keep_newest: 3) stay whatever apply decides
    recent = {r: {seeder.image(r, tag=f"v{n}", days_old=n) for n in (1, 2, 3)} for r in repos}
    findings = [seeder.finding("IM002", r, d) for r, d in zip(repos, digests, strict=True)]
    proposals = propose(store, seeder, config, now, findings)
    approve_past_grace(store, proposals, now)
    stop = threading.Event()
    stop.set()

    result = apply(store, clients, config, now, actor=ADMIN, stop=stop)

    for r, d in zip(repos, digests, strict=True):  # nothing deleted
        assert seeder.live_digests(r) == {d, *recent[r]}
    assert all("asked to stop" in result.not_eligible[p.id] for p in proposals)
    assert all(store.get(p.id).state == ProposalState.APPROVED for p in proposals)
    again = apply(store, clients, config, now, actor=ADMIN)  # the next run does the work
    assert all(again.states[p.id][0] == "applied" for p in proposals), again.states
    assert all(seeder.live_digests(r) == recent[r] for r in repos)


def test_rejected_ungraced_and_unapproved_proposals_do_not_run(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    repos = [seeder.repo(f"team/r{i}") for i in range(5)]
    # four old releases (unsafe IM002) and an untagged leftover (safe IM001)
    digests = [seeder.image(r, tag="old") for r in repos[:4]] + [seeder.image(repos[4])]
    proposals = propose(
        store,
        seeder,
        config,
        now,
        [seeder.finding("IM002", r, d) for r, d in zip(repos[:4], digests[:4], strict=True)]
        + [seeder.finding("IM001", repos[4], digests[4])],
    )
    by_repo = {p.repository: p for p in proposals}
    rejected, in_grace, never_notified, unapproved = (by_repo[r] for r in repos[:4])
    safe = by_repo[repos[4]]
    assert safe.fix_safety == FixSafety.SAFE
    store.reject([rejected.id], ADMIN, "keep it", now=now)
    store.mark_notified(now - timedelta(days=2), ids=[in_grace.id])
    store.approve([in_grace.id, never_notified.id], ADMIN, now=now)

    result = apply(store, clients, config, now, actor=ADMIN)

    for r, d in zip(repos, digests, strict=True):
        assert d in seeder.live_digests(r), r
    assert result.states == {}
    assert "grace period until" in result.not_eligible[in_grace.id]
    assert "never notified" in result.not_eligible[never_notified.id]
    assert "awaiting approval" in result.not_eligible[unapproved.id]
    assert "auto_safe is off" in result.not_eligible[safe.id]
    assert rejected.id not in result.not_eligible  # rejected ones are not even candidates
    assert store.audit_log(outcome=["deleted", "intent"]) == []

    # with auto_safe on (deployed: pinned by the scheduled job), only the safe one runs
    auto_safe = with_apply(config, auto_safe=True)
    builders.deployed(store, auto_safe)
    result = apply(store, clients, auto_safe, now, actor=ADMIN)
    assert result.states[safe.id][0] == "applied"
    assert seeder.live_digests(repos[4]) == set()
    assert digests[1] in seeder.live_digests(repos[1])


def test_changed_targets_are_skipped_with_the_reason(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    repo = seeder.repo("suporte/api")
    retagged, pulled, child, plain = (seeder.image(repo) for _ in range(4))
    gone = seeder.image(repo)
    findings = [seeder.finding("IM002", repo, d) for d in (retagged, pulled, child, plain, gone)]
    (proposal,) = propose(store, seeder, config, now, findings)
    approve_past_grace(store, [proposal], now)
    # after the proposal: a new tag, a pull, a new index listing one, one deleted by hand
    backend = seeder.backend
    image = next(i for i in backend.repositories[repo].images if i.image_digest == retagged)
    image.update_tag("hotfix")
    image = next(i for i in backend.repositories[repo].images if i.image_digest == pulled)
    image.last_recorded_pull_time = now - timedelta(hours=2)
    new_index = seeder.index(repo, [child], tag="v9", days_old=0)
    seeder.ecr.client().batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": gone}])

    result = apply(store, clients, config, now, actor=ADMIN)

    assert seeder.live_digests(repo) == {retagged, pulled, child, new_index}
    details = {e.digest: e for e in store.audit_log(proposal_id=proposal.id) if e.digest}
    assert details[retagged].outcome == "skipped" and "hotfix" in details[retagged].detail
    assert details[pulled].outcome == "skipped" and "pulled at" in details[pulled].detail
    assert details[child].outcome == "skipped" and new_index in details[child].detail
    assert details[gone].outcome == "gone"
    assert details[plain].outcome == "deleted"
    assert result.states[proposal.id][0] == "skipped"
    assert store.get(proposal.id).state == ProposalState.SKIPPED


def test_dry_run_writes_nothing(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    repo = seeder.repo("suporte/api")
    digests = [seeder.image(repo) for _ in range(3)]
    (proposal,) = propose(
        store, seeder, config, now, [seeder.finding("IM002", repo, d) for d in digests]
    )
    approve_past_grace(store, [proposal], now)
    before = len(store.audit_log())

    result = apply(store, clients, config, now, dry_run=True, actor=ADMIN)

    assert seeder.live_digests(repo) == set(digests)
    assert result.count("would-delete") == 3
    assert result.run_id is None
    assert len(store.audit_log()) == before
    assert store.get(proposal.id).state == ProposalState.APPROVED
    assert store.runs(kind="apply") == []


class CrashingClient:
    """Delegates to a real client; the Nth batch_delete_image crashes before or after."""

    def __init__(self, client: Any, crash_on_call: int, after: bool) -> None:
        self.client, self.crash_on_call, self.after = client, crash_on_call, after
        self.calls: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def batch_delete_image(self, **kwargs: Any) -> Any:
        digests = [i["imageDigest"] for i in kwargs["imageIds"]]
        if len(self.calls) + 1 == self.crash_on_call and not self.after:
            raise SimulatedCrash("killed before the delete call")
        self.calls.append(digests)
        response = self.client.batch_delete_image(**kwargs)
        if len(self.calls) == self.crash_on_call and self.after:
            raise SimulatedCrash("killed after the delete call, before recording it")
        return response


@pytest.mark.parametrize("after", [True, False], ids=["after-delete", "before-delete"])
def test_crash_between_batches_resumes_without_double_delete(
    after: bool, store: Store, seeder: Seeder, ecr: Any, config: Config, now: datetime
) -> None:
    config = with_apply(config, batch_size=2)
    repo = seeder.repo("suporte/api")
    digests = [seeder.image(repo) for _ in range(5)]
    (proposal,) = propose(
        store, seeder, config, now, [seeder.finding("IM002", repo, d) for d in digests]
    )
    approve_past_grace(store, [proposal], now)
    crashing = CrashingClient(ecr.client(), crash_on_call=2, after=after)

    with pytest.raises(SimulatedCrash):
        apply(store, lambda a, r: crashing, config, now, actor=ADMIN)
    assert store.runs(kind="apply")[0].status == "failed"
    assert len(store.open_intents()) == 1
    assert store.get(proposal.id).state == ProposalState.APPROVED

    resumed = CrashingClient(ecr.client(), crash_on_call=0, after=True)
    result = apply(store, lambda a, r: resumed, config, now + timedelta(minutes=5), actor=ADMIN)

    assert seeder.live_digests(repo) == set()
    sent = [d for batch in crashing.calls + resumed.calls for d in batch]
    assert sorted(sent) == sorted(digests), "every digest sent to BatchDeleteImage exactly once"
    assert all(len(batch) <= 2 for batch in crashing.calls + resumed.calls)
    deleted = [e.digest for e in store.audit_log(proposal_id=proposal.id, outcome="deleted")]
    assert sorted(deleted) == sorted(digests), "exactly one 'deleted' record per digest"
    assert store.open_intents() == []
    assert result.states[proposal.id][0] == "applied"
    reconciled = store.audit_log(outcome=["deleted", "not-deleted"], run_id=result.run_id)
    expected = "deleted" if after else "not-deleted"
    crashed = [e for e in reconciled if e.intent_id == store.audit_log(outcome="intent")[1].id]
    assert {e.outcome for e in crashed} == {expected}
    # a delete the killed run sent and never recorded: its answer was lost
    assert all(bool((e.data or {}).get("response_lost")) is after for e in crashed)


def test_a_second_concurrent_apply_is_refused(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime, tmp_path
) -> None:
    repo = seeder.repo("suporte/api")
    digest = seeder.image(repo)
    (proposal,) = propose(store, seeder, config, now, [seeder.finding("IM002", repo, digest)])
    approve_past_grace(store, [proposal], now)
    other_process = Store(f"sqlite:///{tmp_path / 'hygiene.db'}")
    with other_process.lock(holder="cron@worker-1 pid 4242"):
        with pytest.raises(LockHeldError, match="cron@worker-1 pid 4242 since"):
            apply(store, clients, config, now, actor=ADMIN)
        assert digest in seeder.live_digests(repo)
    apply(store, clients, config, now, actor=ADMIN)
    assert seeder.live_digests(repo) == set()
    other_process.close()


def test_concurrent_apply_on_postgres(
    postgres_server, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    url = postgres_server.create_database()
    first, second = Store(url), Store(url)
    repo = seeder.repo("suporte/api")
    digest = seeder.image(repo)
    (proposal,) = propose(first, seeder, config, now, [seeder.finding("IM002", repo, digest)])
    approve_past_grace(first, [proposal], now)
    with first.lock(), pytest.raises(LockHeldError):
        apply(second, clients, config, now, actor=ADMIN)
    assert digest in seeder.live_digests(repo)
    result = apply(second, clients, config, now, actor=ADMIN)
    assert result.states[proposal.id][0] == "applied"
    first.close()
    second.close()


def _repo_proposal(
    seeder: Seeder, action: Action, repo: str, target: dict, evidence: dict, safety=FixSafety.UNSAFE
) -> Proposal:
    return builders.proposal(
        action,
        repo,
        target=target,
        evidence=evidence,
        rule_codes=("X",),
        fix_safety=safety,
        account=seeder.account,
    )


def generated(config: Config, repository: str) -> str:
    """The lifecycle policy ``config`` generates for ``repository``: the only one apply puts."""
    from hygiene.lifecycle import generate_policy

    return generate_policy(config, repository=repository).text


POLICY = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "expire untagged after 14 days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 14,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)


def test_repository_level_actions(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    client = seeder.ecr.client()
    empty, busy, scan, mutable, public, lifecycle, changed = (
        seeder.repo(f"suporte/{n}")
        for n in ("empty", "busy", "scan", "mutable", "public", "lc", "lc2")
    )
    seeder.image(busy)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "pub", "Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage"]},
            {
                "Sid": "own",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{seeder.account}:root"},
                "Action": ["ecr:BatchGetImage"],
            },
        ],
    }
    client.set_repository_policy(repositoryName=public, policyText=json.dumps(policy))
    policy_text = client.get_repository_policy(repositoryName=public)["policyText"]
    client.put_lifecycle_policy(repositoryName=changed, lifecyclePolicyText=POLICY)
    proposals = [
        _repo_proposal(
            seeder, Action.DELETE_REPOSITORY, empty, {"repository": empty}, {"image_count": 0}
        ),
        _repo_proposal(
            seeder, Action.DELETE_REPOSITORY, busy, {"repository": busy}, {"image_count": 0}
        ),
        _repo_proposal(
            seeder,
            Action.ENABLE_SCAN_ON_PUSH,
            scan,
            {"scan_on_push": True},
            {"scan_on_push": False},
            FixSafety.SAFE,
        ),
        _repo_proposal(
            seeder,
            Action.SET_TAG_IMMUTABILITY,
            mutable,
            # what SC002 proposes with the shipped options (the only change apply makes)
            {
                "tag_mutability": "IMMUTABLE_WITH_EXCLUSION",
                "exclusions": ["latest", "main", "stable"],
            },
            {"tag_mutability": "MUTABLE", "exclusions": []},
        ),
        _repo_proposal(
            seeder,
            Action.REMOVE_POLICY_STATEMENT,
            public,
            {"statements": [policy["Statement"][0]]},
            {"policy": policy_text},
        ),
        _repo_proposal(
            seeder,
            Action.PUT_LIFECYCLE_POLICY,
            lifecycle,
            {"policy": generated(config, lifecycle)},
            {"current_policy": None},
        ),
        _repo_proposal(
            seeder,
            Action.PUT_LIFECYCLE_POLICY,
            changed,
            {"policy": POLICY.replace("14", "30")},
            {"current_policy": None},
        ),
    ]
    builders.deployed(store, config)
    builders.store_proposals(store, proposals, now)
    approve_past_grace(store, proposals, now)

    result = apply(store, clients, config, now, actor=ADMIN)

    states = {p.repository: result.states[p.id][0] for p in proposals}
    assert states == {
        empty: "applied",
        busy: "skipped",
        scan: "applied",
        mutable: "applied",
        public: "applied",
        lifecycle: "applied",
        changed: "skipped",
    }
    names = {r["repositoryName"] for r in client.describe_repositories()["repositories"]}
    assert empty not in names and busy in names
    described = {r["repositoryName"]: r for r in client.describe_repositories()["repositories"]}
    assert described[scan]["imageScanningConfiguration"]["scanOnPush"] is True
    assert described[mutable]["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    remaining = json.loads(client.get_repository_policy(repositoryName=public)["policyText"])
    assert [s["Sid"] for s in remaining["Statement"]] == ["own"]
    assert json.loads(
        client.get_lifecycle_policy(repositoryName=lifecycle)["lifecyclePolicyText"]
    ) == json.loads(generated(config, lifecycle))
    assert json.loads(
        client.get_lifecycle_policy(repositoryName=changed)["lifecyclePolicyText"]
    ) == json.loads(POLICY)
    skipped = store.get(next(p.id for p in proposals if p.repository == changed))
    assert "changed since the proposal" in skipped.outcome
    intent = next(e for e in store.audit_log(outcome="intent") if e.repository == public)
    assert intent.data["before"]["repository_policy"] == policy_text  # saved for undo


class CrashAfterPut:
    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def put_lifecycle_policy(self, **kwargs: Any) -> Any:
        self.client.put_lifecycle_policy(**kwargs)
        raise SimulatedCrash("killed after the PUT")


def test_crash_after_a_repository_write_is_reconciled(
    store: Store, seeder: Seeder, ecr: Any, config: Config, now: datetime
) -> None:
    repo = seeder.repo("suporte/lc")
    proposal = _repo_proposal(
        seeder,
        Action.PUT_LIFECYCLE_POLICY,
        repo,
        {"policy": generated(config, repo)},
        {"current_policy": None},
    )
    builders.deployed(store, config)
    builders.store_proposals(store, [proposal], now)
    approve_past_grace(store, [proposal], now)
    with pytest.raises(SimulatedCrash):
        apply(store, lambda a, r: CrashAfterPut(ecr.client()), config, now, actor=ADMIN)
    assert store.get(proposal.id).state == ProposalState.APPROVED

    result = apply(store, lambda a, r: ecr.client(), config, now, actor=ADMIN)

    assert result.states[proposal.id] == ("applied", "lifecycle policy already in place")
    outcomes = [
        e.outcome for e in store.audit_log(proposal_id=proposal.id) if e.action != "approve"
    ]
    assert outcomes == ["grace-started", "intent", "interrupted", "applied"]
    assert store.open_intents() == []


def test_referrer_whose_subject_came_back_is_skipped(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    repo = seeder.repo("suporte/signed")
    subject = seeder.image(repo, tag="v3")
    seeder.ecr.client().batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": subject}])
    signature = seeder.image(repo, tag=f"sha256-{subject.removeprefix('sha256:')}.sig")
    stale = seeder.image(repo)
    old_signature = seeder.image(repo, tag=f"sha256-{stale.removeprefix('sha256:')}.sig")
    findings = [
        seeder.finding("IM004", repo, signature),
        seeder.finding("IM002", repo, stale, [stale, old_signature]),  # goes with its subject
    ]
    proposals = propose(store, seeder, config, now, findings)
    approve_past_grace(store, proposals, now)
    image = seeder.backend.put_image(  # the subject is pushed again after the proposal
        repo,
        seeder.manifests[subject],
        "v3",
        "application/vnd.oci.image.manifest.v1+json",
        subject,
    )
    assert image.image_digest == subject

    apply(store, clients, config, now, actor=ADMIN)

    assert seeder.live_digests(repo) == {subject, signature}
    (skipped,) = store.audit_log(outcome="skipped")
    assert skipped.digest == signature and subject in skipped.detail


def test_a_forged_proposal_for_a_protected_image_deletes_only_what_the_rules_flag(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    """Whoever writes the store can forge a proposal's target and evidence (here: a
    release image passed off as an untagged leftover). Apply evaluates its own deployed
    rules on the repository as it is now and deletes only what they flag."""
    repo = seeder.repo("suporte/api")
    release = seeder.image(repo, tag="prod-2024")  # 200 days, never pulled
    recent = {seeder.image(repo, tag=f"v{n}", days_old=n) for n in (1, 2, 3)}
    leftover = seeder.image(repo)  # untagged, 200 days: IM001 flags it
    forged = [seeder.finding("IM001", repo, d) for d in (release, leftover)]
    (proposal,) = propose(store, seeder, config, now, forged)
    approve_past_grace(store, [proposal], now)

    result = apply(store, clients, config, now, actor=ADMIN)

    assert seeder.live_digests(repo) == {release, *recent}
    details = {e.digest: e for e in store.audit_log(proposal_id=proposal.id) if e.digest}
    assert details[leftover].outcome == "deleted"
    assert details[release].outcome == "skipped"
    assert details[release].detail == "kept by the deployed rules now: protected-tag:prod-2024"
    assert result.states[proposal.id][0] == "skipped"


def test_a_protection_deployed_after_the_proposal_keeps_the_image(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    """The configuration apply runs with decides, not the one the scan ran with: a tag
    pattern protected since the proposal (and an image no rule flags at all) stay."""
    repo = seeder.repo("ml/trainer")
    recent = {seeder.image(repo, tag=f"v{n}", days_old=n) for n in (1, 2, 3)}
    stale = seeder.image(repo, tag="exp-7")  # 200 days, never pulled: IM002
    fresh = seeder.image(repo, days_old=1)  # untagged but only a day old: no rule flags it
    other = seeder.image(repo, tag="exp-8")
    findings = [seeder.finding("IM002", repo, d) for d in (stale, fresh, other)]
    (proposal,) = propose(store, seeder, config, now, findings)
    approve_past_grace(store, [proposal], now)
    protections = config.policy.protections.model_copy(
        update={"protected_tags": [*config.policy.protections.protected_tags, "exp-7"]}
    )
    deployed = config.model_copy(
        update={"policy": config.policy.model_copy(update={"protections": protections})}
    )
    builders.deployed(store, deployed)  # the scheduled job's next run pins its rules

    apply(store, clients, deployed, now, actor=ADMIN)

    assert seeder.live_digests(repo) == {*recent, stale, fresh}
    details = {e.digest: e.detail for e in store.audit_log(proposal_id=proposal.id) if e.digest}
    assert details[stale] == "kept by the deployed rules now: protected-tag:exp-7"
    assert details[fresh] == "no deleting rule of the deployed configuration flags it now"


EXPIRE_ALL = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "keep one image, whatever its tags",
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


def test_a_lifecycle_policy_the_deployed_rules_do_not_generate_is_not_put(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    """A lifecycle policy is a deletion plan ECR carries out on its own, past every
    re-check apply makes for images. Whoever writes the store can forge a proposal's
    target (here: keep one image, protected or not); apply puts only the policy its own
    deployed configuration generates for the repository."""
    repo = seeder.repo("suporte/lc")
    seeder.image(repo, tag="prod-2024")
    seeder.image(repo, tag="v1", days_old=1)
    forged = _repo_proposal(
        seeder, Action.PUT_LIFECYCLE_POLICY, repo, {"policy": EXPIRE_ALL}, {"current_policy": None}
    )
    builders.deployed(store, config)
    builders.store_proposals(store, [forged], now)
    approve_past_grace(store, [forged], now)

    result = apply(store, clients, config, now, actor=ADMIN)

    client = seeder.ecr.client()
    with pytest.raises(client.exceptions.LifecyclePolicyNotFoundException):
        client.get_lifecycle_policy(repositoryName=repo)
    state, detail = result.states[forged.id]
    assert state == "skipped"
    assert detail == (
        "not the lifecycle policy the deployed configuration generates for suporte/lc now"
    )
    assert [e.outcome for e in store.audit_log(proposal_id=forged.id, outcome="skipped")] == [
        "skipped"
    ]


def test_a_repository_that_opted_out_after_the_lifecycle_proposal_gets_no_policy(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    repo = seeder.repo("suporte/lc")
    seeder.image(repo, tag="v1")
    proposal = _repo_proposal(
        seeder,
        Action.PUT_LIFECYCLE_POLICY,
        repo,
        {"policy": generated(config, repo)},
        {"current_policy": None},
    )
    builders.deployed(store, config)
    builders.store_proposals(store, [proposal], now)
    approve_past_grace(store, [proposal], now)
    client = seeder.ecr.client()
    arn = client.describe_repositories(repositoryNames=[repo])["repositories"][0]["repositoryArn"]
    client.tag_resource(resourceArn=arn, tags=[{"Key": "hygiene:keep", "Value": "true"}])

    result = apply(store, clients, config, now, actor=ADMIN)

    with pytest.raises(client.exceptions.LifecyclePolicyNotFoundException):
        client.get_lifecycle_policy(repositoryName=repo)
    assert result.states[proposal.id] == (
        "skipped",
        "suporte/lc opted out since the proposal (resource tag hygiene:keep=true)",
    )


def test_repository_settings_change_only_as_the_deployed_rules_propose_now(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    """Whoever writes the store can forge a settings change too: make immutable tags
    mutable again, or remove a statement of a repository policy that the rules never
    flag (a Deny that guards the images, a grant consumers rely on). Apply changes a
    setting only as its own deployed rules propose for the repository now."""
    client = seeder.ecr.client()
    immutable, guarded = seeder.repo("suporte/frozen"), seeder.repo("suporte/guarded")
    client.put_image_tag_mutability(repositoryName=immutable, imageTagMutability="IMMUTABLE")
    deny = {
        "Sid": "NoDeletes",
        "Effect": "Deny",
        "Principal": "*",
        "Action": ["ecr:BatchDeleteImage", "ecr:DeleteRepository"],
    }
    client.set_repository_policy(
        repositoryName=guarded,
        policyText=json.dumps({"Version": "2012-10-17", "Statement": [deny]}),
    )
    policy_text = client.get_repository_policy(repositoryName=guarded)["policyText"]
    forged = [
        _repo_proposal(
            seeder,
            Action.SET_TAG_IMMUTABILITY,
            immutable,
            {"tag_mutability": "MUTABLE", "exclusions": []},
            {"tag_mutability": "IMMUTABLE", "exclusions": []},
        ),
        _repo_proposal(
            seeder,
            Action.REMOVE_POLICY_STATEMENT,
            guarded,
            {"statements": [deny]},
            {"policy": policy_text},
        ),
    ]
    builders.deployed(store, config)
    builders.store_proposals(store, forged, now)
    approve_past_grace(store, forged, now)

    result = apply(store, clients, config, now, actor=ADMIN)

    described = {r["repositoryName"]: r for r in client.describe_repositories()["repositories"]}
    assert described[immutable]["imageTagMutability"] == "IMMUTABLE"
    assert client.get_repository_policy(repositoryName=guarded)["policyText"] == policy_text
    for proposal in forged:
        assert result.states[proposal.id] == (
            "skipped",
            f"the deployed configuration does not propose this change for {proposal.repository}"
            " now",
        )


def test_a_hand_run_apply_with_rules_older_than_the_deployed_ones_is_refused(
    store: Store, seeder: Seeder, clients: Any, config: Config, now: datetime
) -> None:
    """The scheduled job runs with a protection added since the proposal; an admin's
    checkout of the rules is older (same admins, owners and accounts). Apply judges the
    images with the rules it is given, so with those it would delete the image the
    deployed rules protect: it refuses, as for rules with other admins."""
    from hygiene.errors import NotAuthorisedError

    repo = seeder.repo("ml/trainer")
    recent = {seeder.image(repo, tag=f"v{n}", days_old=n) for n in (1, 2, 3)}
    stale = seeder.image(repo, tag="exp-7")  # 200 days, never pulled: IM002
    (proposal,) = propose(store, seeder, config, now, [seeder.finding("IM002", repo, stale)])
    approve_past_grace(store, [proposal], now)
    protections = config.policy.protections.model_copy(
        update={"protected_tags": [*config.policy.protections.protected_tags, "exp-*"]}
    )
    deployed = config.model_copy(
        update={"policy": config.policy.model_copy(update={"protections": protections})}
    )
    builders.deployed(store, deployed)  # the scheduled job's next run pins its rules

    with pytest.raises(NotAuthorisedError, match="the rules that decide deletions differ"):
        apply(store, clients, config, now, actor=ADMIN)

    assert seeder.live_digests(repo) == {*recent, stale}
    assert store.get(proposal.id).state == ProposalState.APPROVED
