"""apply() with botocore's Stubber: the exact BatchDeleteImage requests and failures[]."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from hygiene.apply import apply, describe_digests
from hygiene.config import Config
from hygiene.model import Proposal, ProposalState
from hygiene.plan import plan
from hygiene.store import Store
from tests import builders
from tests.builders import ACCOUNT, NOW, OCI_INDEX, OCI_MANIFEST

REPO = "suporte/api"


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def client() -> Any:
    return boto3.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
    ).client("ecr")


def detail(d: str, media: str = OCI_MANIFEST) -> dict[str, Any]:
    return {
        "registryId": ACCOUNT,
        "repositoryName": REPO,
        "imageDigest": d,
        "imageManifestMediaType": media,
        "imagePushedAt": NOW - timedelta(days=300),
    }


# apply's listing of a repository: every image, archived ones included (without the
# imageStatus filter DescribeImages lists only active images)
LISTING = {
    "registryId": ACCOUNT,
    "repositoryName": REPO,
    "filter": {"tagStatus": "ANY", "imageStatus": "ANY"},
    "maxResults": 1000,
}


def make_proposal(config: Config, indexes: dict[str, list[str]], plain: list[str]) -> Proposal:
    """The one proposal plan() makes of stale ``indexes`` (with their children) and
    ``plain`` images, all untagged in :data:`REPO`."""
    children = [c for cs in indexes.values() for c in cs]
    rows = [
        builders.image_row(i, REPO, children=cs, size=0, pushed_days_ago=300)
        for i, cs in indexes.items()
    ]
    rows += [builders.image_row(d, REPO, size=10, pushed_days_ago=300) for d in children + plain]
    findings = [
        builders.finding("IM002", REPO, digest=i, unit=[i, *cs]) for i, cs in indexes.items()
    ]
    findings += [builders.finding("IM002", REPO, digest=d, unit=[d]) for d in plain]
    inventory = builders.inventory(rows, [builders.repository_row(REPO)])
    (proposal,) = plan(builders.evaluation(findings), inventory, config, NOW)
    return proposal


def ready(store: Store, proposal: Proposal, config: Config) -> None:
    builders.deployed(store, config)
    builders.store_proposals(store, [proposal], NOW)
    store.mark_notified(NOW - timedelta(days=8), ids=[proposal.id])
    store.approve([proposal.id], builders.ADMIN, now=NOW)


def manifests(
    digests: list[str], media: dict[str, str] | None = None, body: str = "{}"
) -> list[dict[str, Any]]:
    """BatchGetImage's ``images[]`` for ``digests`` (manifest media type from ``media``)."""
    return [
        {
            "registryId": ACCOUNT,
            "repositoryName": REPO,
            "imageId": {"imageDigest": d},
            "imageManifestMediaType": (media or {}).get(d, OCI_MANIFEST),
            "imageManifest": body,
        }
        for d in digests
    ]


def stub_reads(stub: Stubber, wanted: list[str], indexes: dict[str, list[str]]) -> None:
    media = {d: OCI_INDEX if d in indexes else OCI_MANIFEST for d in wanted}
    for start in range(0, len(wanted), 100):
        chunk = wanted[start : start + 100]
        stub.add_response(
            "describe_images",
            {"imageDetails": [detail(d, media[d]) for d in chunk]},
            {
                "registryId": ACCOUNT,
                "repositoryName": REPO,
                "imageIds": [{"imageDigest": d} for d in chunk],
            },
        )
    # repository_links: list the repository (archived images too), read the indexes
    stub.add_response(
        "describe_images",
        {"imageDetails": [detail(d, media[d]) for d in wanted]},
        LISTING,
    )
    if indexes:
        stub.add_response(
            "batch_get_image",
            {
                "images": [
                    {
                        "registryId": ACCOUNT,
                        "repositoryName": REPO,
                        "imageId": {"imageDigest": i},
                        "imageManifestMediaType": OCI_INDEX,
                        "imageManifest": json.dumps(
                            {
                                "schemaVersion": 2,
                                "manifests": [
                                    {"digest": c, "mediaType": OCI_MANIFEST, "size": 1} for c in cs
                                ],
                            }
                        ),
                    }
                    for i, cs in indexes.items()
                ],
                "failures": [],
            },
        )
    # the last re-read: the manifests about to be deleted (saved in the audit), ≤ 100 a call
    for start in range(0, len(wanted), 100):
        chunk = wanted[start : start + 100]
        stub.add_response(
            "batch_get_image",
            {"images": manifests(chunk, media), "failures": []},
            {
                "registryId": ACCOUNT,
                "repositoryName": REPO,
                "imageIds": [{"imageDigest": d} for d in chunk],
                "acceptedMediaTypes": ANY,
            },
        )
    stub_recheck(stub, wanted, indexes)


PLATFORM = {"architecture": "amd64", "os": "linux"}


def index_manifests(indexes: dict[str, list[str]]) -> list[dict[str, Any]]:
    return [
        {
            "registryId": ACCOUNT,
            "repositoryName": REPO,
            "imageId": {"imageDigest": i},
            "imageManifestMediaType": OCI_INDEX,
            "imageManifest": json.dumps(
                {
                    "schemaVersion": 2,
                    "manifests": [
                        {"digest": c, "mediaType": OCI_MANIFEST, "size": 1, "platform": PLATFORM}
                        for c in cs
                    ],
                }
            ),
        }
        for i, cs in sorted(indexes.items())
    ]


def stub_recheck(stub: Stubber, wanted: list[str], indexes: dict[str, list[str]]) -> None:
    """The last re-check reads the repository whole, as a scan does (hygiene.apply.recheck):
    the repository, its images, its indexes' manifests, its policies and its tags, in the
    registry the deletes go to (``registryId``)."""
    arn = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{REPO}"
    stub.add_response(
        "describe_repositories",
        {
            "repositories": [
                {
                    "registryId": ACCOUNT,
                    "repositoryName": REPO,
                    "repositoryArn": arn,
                    "repositoryUri": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{REPO}",
                    "createdAt": NOW - timedelta(days=400),
                }
            ]
        },
        {"registryId": ACCOUNT, "repositoryNames": [REPO]},
    )
    media = {d: OCI_INDEX if d in indexes else OCI_MANIFEST for d in wanted}
    stub.add_response(
        "describe_images",
        {"imageDetails": [detail(d, media[d]) for d in wanted]},
        {"registryId": ACCOUNT, "repositoryName": REPO,
         "filter": {"tagStatus": "ANY", "imageStatus": "ANY"}, "maxResults": ANY},
    )  # fmt: skip
    if indexes:
        stub.add_response(
            "batch_get_image",
            {"images": index_manifests(indexes), "failures": []},
            {"registryId": ACCOUNT, "repositoryName": REPO,
             "imageIds": [{"imageDigest": i} for i in sorted(indexes)], "acceptedMediaTypes": ANY},
        )  # fmt: skip
    # the collector's second round: untagged images no index lists, for their subject
    listed = {c for cs in indexes.values() for c in cs}
    untagged = sorted(d for d in wanted if d not in indexes and d not in listed)
    for start in range(0, len(untagged), 100):
        chunk = untagged[start : start + 100]
        stub.add_response(
            "batch_get_image",
            {"images": manifests(chunk, body=json.dumps({"schemaVersion": 2})), "failures": []},
            {"registryId": ACCOUNT, "repositoryName": REPO,
             "imageIds": [{"imageDigest": d} for d in chunk], "acceptedMediaTypes": ANY},
        )  # fmt: skip
    stub.add_client_error(
        "get_lifecycle_policy", "LifecyclePolicyNotFoundException", "none", 400,
        expected_params={"registryId": ACCOUNT, "repositoryName": REPO},
    )  # fmt: skip
    stub.add_client_error(
        "get_repository_policy", "RepositoryPolicyNotFoundException", "none", 400,
        expected_params={"registryId": ACCOUNT, "repositoryName": REPO},
    )  # fmt: skip
    stub.add_response("list_tags_for_resource", {"tags": []}, {"resourceArn": arn})


def test_batch_delete_requests_are_pinned(tmp_path, config: Config) -> None:
    indexes = {
        digest(1): [digest(100 + i) for i in range(75)],
        digest(2): [digest(200 + i) for i in range(75)],
    }
    proposal = make_proposal(config, indexes, [])
    children = [c for cs in indexes.values() for c in cs]
    assert proposal.target["digests"][:2] == [digest(1), digest(2)]
    store = Store(str(tmp_path / "h.db"))
    ready(store, proposal, config)
    ecr = client()
    with Stubber(ecr) as stub:
        stub_reads(stub, proposal.target["digests"], indexes)
        expected = [[digest(1), digest(2)], children[:100], children[100:]]
        for batch in expected:
            stub.add_response(
                "batch_delete_image",
                {"imageIds": [{"imageDigest": d} for d in batch], "failures": []},
                {
                    "registryId": ACCOUNT,
                    "repositoryName": REPO,
                    "imageIds": [{"imageDigest": d} for d in batch],
                },
            )
        result = apply(store, lambda a, r: ecr, config, NOW, actor=builders.ADMIN)
        stub.assert_no_pending_responses()
    assert result.states[proposal.id][0] == "applied"
    assert result.count("deleted") == 152
    intents = store.audit_log(outcome="intent")
    assert [e.data["digests"] for e in intents] == expected


def test_every_failure_code_is_handled(tmp_path, config: Config) -> None:
    plain = [digest(n) for n in range(1, 7)]
    proposal = make_proposal(config, {}, plain)
    store = Store(str(tmp_path / "h.db"))
    ready(store, proposal, config)
    ecr = client()
    codes = [
        "ImageReferencedByManifestList",
        "UpstreamTooManyRequests",
        "ImageNotFound",
        "KmsError",
        "InvalidImageDigest",
    ]
    order = proposal.target["digests"]
    with Stubber(ecr) as stub:
        stub_reads(stub, order, {})
        stub.add_response(
            "batch_delete_image",
            {
                "imageIds": [{"imageDigest": order[5]}],
                "failures": [
                    {"imageId": {"imageDigest": d}, "failureCode": c, "failureReason": "x"}
                    for d, c in zip(order, codes, strict=False)
                ],
            },
            {
                "registryId": ACCOUNT,
                "repositoryName": REPO,
                "imageIds": [{"imageDigest": d} for d in order],
            },
        )
        # ImageNotFound for a digest this run just sent: the registry is re-read, and
        # gone means this request deleted it (botocore retried after a lost answer)
        stub.add_client_error("describe_images", "ImageNotFoundException", "not found")
        stub.add_response("list_images", {"imageIds": [{"imageDigest": order[0]}]})
        result = apply(store, lambda a, r: ecr, config, NOW, actor=builders.ADMIN)
        stub.assert_no_pending_responses()
    entries = [e for e in store.audit_log(proposal_id=proposal.id) if e.digest]
    outcomes = {e.digest: e.outcome for e in entries}
    assert [outcomes[d] for d in order] == [
        "skipped",
        "retry",
        "deleted",
        "failed",
        "failed",
        "deleted",
    ]
    lost = next(e for e in entries if e.digest == order[2])
    assert lost.data["response_lost"] is True and lost.data["failureCode"] == "ImageNotFound"
    assert "response_lost" not in next(e for e in entries if e.digest == order[5]).data
    assert result.states[proposal.id][0] == "failed"
    assert store.get(proposal.id).state == ProposalState.FAILED
    assert store.runs(kind="apply")[0].status == "failed"


def test_throttled_delete_leaves_the_proposal_for_the_next_apply(tmp_path, config: Config) -> None:
    plain = [digest(n) for n in range(1, 4)]
    proposal = make_proposal(config, {}, plain)
    store = Store(str(tmp_path / "h.db"))
    ready(store, proposal, config)
    ecr = client()
    with Stubber(ecr) as stub:
        stub_reads(stub, proposal.target["digests"], {})
        stub.add_client_error("batch_delete_image", "ThrottlingException", "slow down")
        result = apply(store, lambda a, r: ecr, config, NOW, actor=builders.ADMIN)
    assert store.get(proposal.id).state == ProposalState.APPROVED
    assert "left for the next apply 3" in result.states[proposal.id][1]
    assert store.open_intents() == []  # the intent was answered with 'retry'


def test_describe_by_digest_when_some_are_missing() -> None:
    """ECR and moto raise ImageNotFoundException for the whole DescribeImages call (it
    has no failures[]): one ListImages tells which digests are gone."""
    ecr = client()
    present, missing, raced = digest(1), digest(2), digest(3)
    proposal = builders.proposal(repository=REPO, rule_codes=(), id="p-x")
    listing = {"imageIds": [{"imageDigest": present}, {"imageDigest": raced}]}
    with Stubber(ecr) as stub:
        stub.add_client_error("describe_images", "ImageNotFoundException", "not found")
        stub.add_response(
            "list_images",
            listing,
            {
                "registryId": ACCOUNT,
                "repositoryName": REPO,
                "filter": {"tagStatus": "ANY"},
                "maxResults": 1000,
            },
        )
        # listed, but deleted by someone in between: halves isolate it
        stub.add_client_error("describe_images", "ImageNotFoundException", "not found")
        stub.add_response(
            "describe_images",
            {"imageDetails": [detail(present)]},
            {"registryId": ACCOUNT, "repositoryName": REPO, "imageIds": [{"imageDigest": present}]},
        )
        stub.add_client_error("describe_images", "ImageNotFoundException", "not found")
        live, gone = describe_digests(ecr, proposal, [present, missing, raced])
        stub.assert_no_pending_responses()
    assert set(live) == {present} and gone == {missing, raced}
    with Stubber(ecr) as stub:
        # an answer that silently leaves a digest out also means it is gone
        stub.add_response("describe_images", {"imageDetails": [detail(present)]})
        live, gone = describe_digests(ecr, proposal, [present, missing])
    assert set(live) == {present} and gone == {missing}


@pytest.mark.parametrize("count", [1, 100, 101, 250])
def test_describe_reads_at_most_100_ids_a_call(count: int) -> None:
    ecr = client()
    wanted = [digest(n) for n in range(count)]
    proposal = builders.proposal(repository=REPO, rule_codes=(), id="p-x")
    with Stubber(ecr) as stub:
        for start in range(0, count, 100):
            chunk = wanted[start : start + 100]
            stub.add_response(
                "describe_images",
                {"imageDetails": [detail(d) for d in chunk]},
                {
                    "registryId": ACCOUNT,
                    "repositoryName": REPO,
                    "imageIds": [{"imageDigest": d} for d in chunk],
                },
            )
        live, gone = describe_digests(ecr, proposal, wanted)
        stub.assert_no_pending_responses()
    assert len(live) == count and not gone


def test_every_action_declares_its_iam_permissions() -> None:
    """Each ECR operation apply can call maps to a declared IAM action."""
    import importlib
    import inspect
    import pkgutil
    import re

    from hygiene import apply as module
    from hygiene.model import Action

    assert set(module.PERMISSIONS) == set(Action)
    source = "".join(
        inspect.getsource(importlib.import_module(f"{module.__name__}.{info.name}"))
        for info in pkgutil.iter_modules(module.__path__)
    )
    called = set(re.findall(r"\bclient\.([a-z_]+)\b", source)) - {"get_paginator"}
    called |= set(re.findall(r'get_paginator\("([a-z_]+)"\)', source))
    assert {"batch_delete_image", "delete_repository", "describe_images"} <= called
    declared = {p.removeprefix("ecr:") for p in module.required_permissions()}
    ecr = client()
    for method in called:
        operation = ecr.meta.method_to_api_mapping[method]
        assert operation in declared, f"{method} ({operation}) is not in PERMISSIONS"


def test_the_cleaner_role_grants_every_permission_apply_lists() -> None:
    from hygiene import iam
    from hygiene.apply import required_permissions

    assert set(required_permissions()) <= iam.declared_actions("cleaner")


def test_an_image_ecr_refused_and_someone_else_deleted_later_is_gone(
    tmp_path, config: Config
) -> None:
    """The intent alone does not make a later disappearance ours: ECR answered for d1
    (UpstreamTooManyRequests, left for the next apply), so when the next apply finds it
    gone, someone else deleted it."""
    plain = [digest(1), digest(2)]
    proposal = make_proposal(config, {}, plain)
    store = Store(str(tmp_path / "h.db"))
    ready(store, proposal, config)
    ecr = client()
    order = proposal.target["digests"]
    with Stubber(ecr) as stub:
        stub_reads(stub, order, {})
        stub.add_response(
            "batch_delete_image",
            {
                "imageIds": [{"imageDigest": order[1]}],
                "failures": [
                    {
                        "imageId": {"imageDigest": order[0]},
                        "failureCode": "UpstreamTooManyRequests",
                        "failureReason": "slow",
                    }
                ],
            },
        )
        apply(store, lambda a, r: ecr, config, NOW, actor=builders.ADMIN)
        stub.add_client_error("describe_images", "ImageNotFoundException", "not found")
        stub.add_response("list_images", {"imageIds": [{"imageDigest": digest(9)}]})
        second = apply(store, lambda a, r: ecr, config, NOW, actor=builders.ADMIN)
        stub.assert_no_pending_responses()
    rows = [e for e in store.audit_log(proposal_id=proposal.id) if e.digest == order[0]]
    assert [e.outcome for e in rows] == ["retry", "gone"]
    assert second.states[proposal.id] == (
        "applied",
        "deleted 0, already gone 1, done by an earlier run 1",
    )


def test_a_signature_of_an_archived_image_is_not_deleted(tmp_path, config: Config) -> None:
    """The subject of a referrer is present even when archived: apply lists the
    repository with ``imageStatus: ANY`` and refuses the signature, whatever the plan
    said (ECR reports no ``subjectManifestDigest`` for it; its manifest names the
    subject)."""
    signature, archived = digest(1), digest(2)
    proposal = make_proposal(config, {}, [signature])
    store = Store(str(tmp_path / "h.db"))
    ready(store, proposal, config)
    ecr = client()
    by_id = {"registryId": ACCOUNT, "repositoryName": REPO}
    with Stubber(ecr) as stub:
        stub.add_response(
            "describe_images",
            {"imageDetails": [detail(signature)]},
            {**by_id, "imageIds": [{"imageDigest": signature}]},
        )
        stub.add_response(
            "describe_images",
            {"imageDetails": [detail(signature), {**detail(archived), "imageStatus": "ARCHIVED"}]},
            LISTING,
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "subject": {"mediaType": OCI_MANIFEST, "digest": archived, "size": 1},
        }
        stub.add_response(
            "batch_get_image",
            {
                "images": [
                    {
                        **by_id,
                        "imageId": {"imageDigest": signature},
                        "imageManifestMediaType": OCI_MANIFEST,
                        "imageManifest": json.dumps(manifest),
                    }
                ],
                "failures": [],
            },
            {**by_id, "imageIds": [{"imageDigest": signature}], "acceptedMediaTypes": ANY},
        )
        result = apply(store, lambda a, r: ecr, config, NOW, actor=builders.ADMIN)
        stub.assert_no_pending_responses()  # and no BatchDeleteImage was made
    (row,) = [e for e in store.audit_log(proposal_id=proposal.id) if e.digest]
    assert row.outcome == "skipped"
    assert f"its subject {archived} exists and is not being deleted" in row.detail
    assert result.states[proposal.id][0] == "skipped"


def test_a_repository_that_cannot_be_read_again_loses_nothing(tmp_path, config: Config) -> None:
    """The last re-check cannot read the repository's tags (the opt-out tag lives there):
    nothing is deleted, the proposal stays approved, and the audit says why."""
    plain = [digest(n) for n in range(1, 4)]
    proposal = make_proposal(config, {}, plain)
    store = Store(str(tmp_path / "h.db"))
    ready(store, proposal, config)
    ecr = client()
    wanted = proposal.target["digests"]
    with Stubber(ecr) as stub:
        stub.add_response(
            "describe_images",
            {"imageDetails": [detail(d) for d in wanted]},
            {"registryId": ACCOUNT, "repositoryName": REPO,
             "imageIds": [{"imageDigest": d} for d in wanted]},
        )  # fmt: skip
        stub.add_response("describe_images", {"imageDetails": [detail(d) for d in wanted]})
        stub.add_response(  # the last re-read of the manifests about to be deleted
            "batch_get_image",
            {
                "images": [
                    {
                        "registryId": ACCOUNT,
                        "repositoryName": REPO,
                        "imageId": {"imageDigest": d},
                        "imageManifestMediaType": OCI_MANIFEST,
                        "imageManifest": "{}",
                    }
                    for d in wanted
                ],
                "failures": [],
            },
        )
        stub.add_response(
            "describe_repositories",
            {"repositories": [{"registryId": ACCOUNT, "repositoryName": REPO,
                               "repositoryArn": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/x"}]},
        )  # fmt: skip
        stub.add_response("describe_images", {"imageDetails": [detail(d) for d in wanted]})
        stub.add_response(  # untagged images no index lists: read for their subject
            "batch_get_image",
            {
                "images": [
                    {
                        "registryId": ACCOUNT,
                        "repositoryName": REPO,
                        "imageId": {"imageDigest": d},
                        "imageManifestMediaType": OCI_MANIFEST,
                        "imageManifest": "{}",
                    }
                    for d in sorted(wanted)
                ],
                "failures": [],
            },
        )
        stub.add_client_error("get_lifecycle_policy", "LifecyclePolicyNotFoundException")
        stub.add_client_error("get_repository_policy", "RepositoryPolicyNotFoundException")
        stub.add_client_error("list_tags_for_resource", "AccessDeniedException", "no tags for you")
        result = apply(store, lambda a, r: ecr, config, NOW, actor=builders.ADMIN)
        stub.assert_no_pending_responses()  # and no BatchDeleteImage was asked for
    assert store.get(proposal.id).state == ProposalState.APPROVED
    (retry,) = store.audit_log(proposal_id=proposal.id, outcome="retry")
    assert "could not read suporte/api again" in retry.detail
    assert "ListTagsForResource" in retry.detail and "nothing deleted" in retry.detail
    assert result.count("deleted") == 0


def test_the_last_re_check_reads_the_registry_the_deletes_go_to(config: Config) -> None:
    """Apply deletes with ``registryId`` = the proposal's account; its last re-check (the
    deployed rules on the repository as it is now) must read that same registry, not the
    default one of the credentials it runs with (with one account, apply's client is the
    scan's whatever the proposal's account; a repository of the same name in the
    credentials' own account would be judged in its place)."""
    from hygiene.apply.recheck import rules_now

    other = "222222222222"
    arn = f"arn:aws:ecr:us-east-1:{other}:repository/{REPO}"
    stale = digest(1)
    proposal = builders.proposal(digests=[stale], repository=REPO, account=other)
    ecr = client()
    where = {"registryId": other, "repositoryName": REPO}
    with Stubber(ecr) as stub:
        stub.add_response(
            "describe_repositories",
            {"repositories": [{"registryId": other, "repositoryName": REPO, "repositoryArn": arn}]},
            {"registryId": other, "repositoryNames": [REPO]},
        )  # fmt: skip
        stub.add_response(
            "describe_images",
            {"imageDetails": [{**detail(stale), "registryId": other}]},
            {**LISTING, "registryId": other},
        )
        stub.add_response(
            "batch_get_image",
            {"images": [{"registryId": other, "repositoryName": REPO,
                         "imageId": {"imageDigest": stale},
                         "imageManifestMediaType": OCI_MANIFEST, "imageManifest": "{}"}],
             "failures": []},
            {**where, "imageIds": [{"imageDigest": stale}], "acceptedMediaTypes": ANY},
        )  # fmt: skip
        stub.add_client_error(
            "get_lifecycle_policy", "LifecyclePolicyNotFoundException", expected_params=where
        )
        stub.add_client_error(
            "get_repository_policy", "RepositoryPolicyNotFoundException", expected_params=where
        )
        stub.add_response(
            "list_tags_for_resource",
            {"tags": []},
            {"resourceArn": arn},
        )
        now = rules_now(ecr, proposal, config, NOW)
        stub.assert_no_pending_responses()
    assert now.why_not(stale) is None  # untagged, 300 days old: IM001 flags it
