"""An in-use read IAM refuses right before deleting is a refused read, not a retry.

Apply reads the workloads again before its first image deletion (docs/in-use.md). When
IAM refuses one of those reads (the role lacks ``ecs:ListClusters``…), nothing in the run
is deleted (any image could be the one a workload there runs), and, as for a refused
re-check read of the repository (tests/apply/test_retries_alert.py), it will not mend
itself: the apply run is ``failed``, every proposal kept is in ``result.refused`` with an
``access_denied`` audit row, and a hand-run ``hygiene apply`` alerts the admins once and
exits 7. A Kubernetes API server that answers 403 (RBAC: the identity of the context may
not list pods) is refused the same way, with a hint that names RBAC instead of IAM. Any
other failure of a source stays a retry (3 in a row alert).

The embedded AWS (moto server) behind the fault proxy, which refuses the ECS call as IAM
does; the local Kubernetes API server (hygiene_demo.kubernetes_api) for the 403; a real
SQLite store (and the embedded PostgreSQL); a real SMTP server.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hygiene.apply import apply
from hygiene.authz.identity import DEMO_TOKEN_ENV, Identity
from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.config import Config
from hygiene.errors import ExitCode
from hygiene.model import ProposalState
from hygiene.scan import open_registry
from hygiene.store import Store
from hygiene.wiring import in_use_check
from hygiene_demo.kubernetes_api import KubernetesApi, forbidden, status
from tests import builders
from tests.apply.registry import Seeder
from tests.apply.test_apply_deletion_safety import newest
from tests.apply.test_apply_moto import ADMIN, approve_past_grace, propose
from tests.authz.world import (
    ADMIN_ROLE,
    MOTO_ACCOUNT,
    deployed_store,
    proposal_in_grace,
    signed_in,
    sts_as,
)
from tests.authz.world import rules as trust_rules
from tests.faults import FaultProxy
from tests.workloads.k8s_exec import SECRET, ExecKubeconfig, failing_exec_kubeconfig

ADMINS = ["registry-admins@lsd.ufcg.edu.br"]


@pytest.fixture
def store(either_store: Store) -> Store:
    """The store, SQLite and the embedded PostgreSQL: the retry rows, the audit log the
    kept-again count reads, the failed run, on both."""
    return either_store


@pytest.fixture
def kubernetes_only(k8s_api: KubernetesApi, tmp_path: Path) -> Config:
    """The shipped rules, reading one Kubernetes context (the local API server) alone."""
    policy = builders.shipped_policy()
    policy["in_use"]["aws_sources"] = []
    policy["in_use"]["kubernetes"] = {
        "kubeconfig": str(k8s_api.kubeconfig(tmp_path / "kubeconfig")),
        "contexts": ["lab"],
    }
    return builders.config(policy)


def approved_deletion(
    store: Store, seeder: Seeder, config: Config, now: datetime, name: str
) -> tuple[str, str]:
    repo = seeder.repo(name)
    newest(seeder, repo)
    stale = seeder.image(repo, tag="v0")
    (proposal,) = propose(store, seeder, config, now, [seeder.finding("IM002", repo, stale)])
    approve_past_grace(store, [proposal], now)
    return repo, proposal.id


OTHER_ACCOUNT_ROLE = "arn:aws:iam::210987654321:role/registry-hygiene-discovery"

# (in_use settings, the operation IAM refuses, its IAM action, the error code): each
# protocol the in-use sources speak, through the proxy (JSON, REST, query)
REFUSED_READS = {
    "ecs": ({"aws_sources": ["ecs"]}, "ListClusters", "ecs:ListClusters", "AccessDeniedException"),
    "eventbridge": (
        {"aws_sources": ["ecs"]},
        "ListEventBuses",
        "events:ListEventBuses",
        "AccessDeniedException",
    ),
    "lambda": (
        {"aws_sources": ["lambda"]},
        "ListFunctions",
        "lambda:ListFunctions",
        "AccessDeniedException",
    ),
    "batch": (
        {"aws_sources": ["batch"]},
        "DescribeJobDefinitions",
        "batch:DescribeJobDefinitions",
        "AccessDeniedException",
    ),
    "assume-role": (
        {"aws_sources": ["lambda"], "assume_roles": [OTHER_ACCOUNT_ROLE]},
        "AssumeRole",
        "sts:AssumeRole",
        "AccessDenied",
    ),
}


@pytest.mark.parametrize("read", list(REFUSED_READS))
def test_an_in_use_read_refused_keeps_every_image_and_fails_the_run(
    read: str, store: Store, seeder: Seeder, proxy: FaultProxy, ecr: Any, now: datetime
) -> None:
    in_use, operation, action, code = REFUSED_READS[read]
    policy = builders.shipped_policy()
    policy["in_use"].update(in_use)
    config = builders.config(policy)
    if read == "eventbridge":  # scheduled tasks are looked up for each cluster
        ecr.session().client("ecs", endpoint_url=ecr.endpoint_url).create_cluster(
            clusterName="prod"
        )
    api, first = approved_deletion(store, seeder, config, now, "suporte/api")
    web, second = approved_deletion(store, seeder, config, now, "suporte/web")
    before = {api: seeder.live_digests(api), web: seeder.live_digests(web)}
    handle = open_registry(config, endpoint_url=proxy.endpoint_url, session=ecr.session())
    proxy.fail(operation, "denied")  # the role lacks the action

    result = apply(
        store, handle.client, config, now, actor=ADMIN, in_use=in_use_check(handle, config)
    )

    assert (operation, "denied") in proxy.seen
    assert {api: seeder.live_digests(api), web: seeder.live_digests(web)} == before
    assert set(result.refused) == {first, second}  # the second failed fast: same run
    for proposal_id in (first, second):
        assert store.get(proposal_id).state is ProposalState.APPROVED
        why = result.refused[proposal_id]
        assert why.startswith(f"a read was refused ({code}): in-use source(s)")
        assert action in why and "hygiene iam policy --role" in why
        (row,) = store.audit_log(proposal_id=proposal_id, outcome="retry")
        assert row.data == {"access_denied": True} and row.detail == why
    (run,) = store.runs(kind="apply")
    assert run.status == "failed"
    assert sorted(run.errors) == sorted(f"{i}: {result.refused[i]}" for i in (first, second))
    assert result.kept == {}

    again = apply(
        store, handle.client, config, now, actor=ADMIN, in_use=in_use_check(handle, config)
    )
    assert again.refused == {} and again.states[first][0] == "applied"  # mended


# how the local Kubernetes API server refuses: the Status it answers the pods list with,
# the code the read is refused with, the start of the detail, the hint's own words
KUBERNETES_REFUSALS = {
    "403": (
        403,
        forbidden("pods"),  # RBAC: the identity may not list pods
        "Forbidden",
        "kubernetes lab: list pods: HTTP 403: pods is forbidden",
        "RBAC",
    ),
    "401": (
        401,  # and again with the kubeconfig loaded afresh: an EKS principal without an
        status(401, "Unauthorized", "Unauthorized"),  # access entry, a revoked token
        "Unauthorized",
        "kubernetes lab: list pods: HTTP 401: Unauthorized (again with the credentials "
        "loaded afresh from the kubeconfig)",
        "access entry",
    ),
}


@pytest.mark.parametrize("refusal", list(KUBERNETES_REFUSALS))
def test_a_kubernetes_refusal_keeps_every_image_and_fails_the_run(
    refusal: str,
    store: Store,
    seeder: Seeder,
    ecr: Any,
    k8s_api: KubernetesApi,
    kubernetes_only: Config,
    now: datetime,
) -> None:
    http, body, code, detail, hint = KUBERNETES_REFUSALS[refusal]
    config = kubernetes_only
    api, first = approved_deletion(store, seeder, config, now, "suporte/api")
    web, second = approved_deletion(store, seeder, config, now, "suporte/web")
    before = {api: seeder.live_digests(api), web: seeder.live_digests(web)}
    handle = open_registry(config, endpoint_url=ecr.endpoint_url, session=ecr.session())
    k8s_api.fail("pods", http, body)

    result = apply(
        store, handle.client, config, now, actor=ADMIN, in_use=in_use_check(handle, config)
    )

    # a 403 is read once; a 401 once more, with the credentials loaded afresh
    assert k8s_api.calls("pods") == (2 if http == 401 else 1)
    assert {api: seeder.live_digests(api), web: seeder.live_digests(web)} == before
    assert set(result.refused) == {first, second}  # the second failed fast: same run
    for proposal_id in (first, second):
        assert store.get(proposal_id).state is ProposalState.APPROVED
        why = result.refused[proposal_id]
        assert why.startswith(
            f"a read was refused ({code}): in-use source(s) could not be read: {detail}"
        )
        assert hint in why and "hygiene iam policy" not in why  # not an IAM role matter
        assert ("RBAC" in why) is (http == 403)  # a 401 is not RBAC's either
        (row,) = store.audit_log(proposal_id=proposal_id, outcome="retry")
        assert row.data == {"access_denied": True} and row.detail == why
    (run,) = store.runs(kind="apply")
    assert run.status == "failed"
    assert sorted(run.errors) == sorted(f"{i}: {result.refused[i]}" for i in (first, second))
    assert result.kept == {}

    k8s_api.failures.clear()  # the ClusterRole binding, the access entry is fixed
    again = apply(
        store, handle.client, config, now, actor=ADMIN, in_use=in_use_check(handle, config)
    )
    assert again.refused == {} and again.states[first][0] == "applied"  # mended


def test_a_kubernetes_token_expired_since_it_was_loaded_is_loaded_afresh(
    store: Store, seeder: Seeder, ecr: Any, k8s_api: KubernetesApi, tmp_path: Path, now: datetime
) -> None:
    """The exec plugin's first token is refused (expired); loaded afresh, the plugin gives
    a good one: the re-check reads the workloads, and the deletion goes ahead."""
    credentials = ExecKubeconfig(k8s_api, tmp_path / "exec", ["expired-token", k8s_api.token])
    policy = builders.shipped_policy()
    policy["in_use"]["aws_sources"] = []
    policy["in_use"]["kubernetes"] = {"kubeconfig": str(credentials.path), "contexts": ["lab"]}
    config = builders.config(policy)
    _, proposal_id = approved_deletion(store, seeder, config, now, "suporte/api")
    handle = open_registry(config, endpoint_url=ecr.endpoint_url, session=ecr.session())

    result = apply(
        store, handle.client, config, now, actor=ADMIN, in_use=in_use_check(handle, config)
    )

    assert credentials.runs == 2 and k8s_api.calls("pods") == 2
    assert result.refused == {} and result.states[proposal_id][0] == "applied"
    assert store.audit_log(proposal_id=proposal_id, outcome="retry") == []
    (run,) = store.runs(kind="apply")
    assert run.status == "ok"


@pytest.mark.parametrize(
    ("code", "reason"),
    [(500, "InternalError"), (429, "TooManyRequests")],
)
def test_a_kubernetes_failure_other_than_a_refusal_stays_a_retry(
    code: int,
    reason: str,
    store: Store,
    seeder: Seeder,
    ecr: Any,
    k8s_api: KubernetesApi,
    kubernetes_only: Config,
    now: datetime,
) -> None:
    config = kubernetes_only
    api, proposal_id = approved_deletion(store, seeder, config, now, "suporte/api")
    before = seeder.live_digests(api)
    handle = open_registry(config, endpoint_url=ecr.endpoint_url, session=ecr.session())
    k8s_api.fail("pods", code, status(code, reason, f"{reason.lower()} on a bad night"))

    result = apply(
        store, handle.client, config, now, actor=ADMIN, in_use=in_use_check(handle, config)
    )

    assert result.refused == {} and seeder.live_digests(api) == before
    (row,) = store.audit_log(proposal_id=proposal_id, outcome="retry")
    assert row.data in (None, {}) and f"HTTP {code}" in row.detail
    (run,) = store.runs(kind="apply")
    assert run.status == "ok"


@pytest.mark.parametrize(
    ("source", "operation"), [("ecs", "ListClusters"), ("lambda", "ListFunctions")]
)
def test_an_in_use_source_that_fails_otherwise_stays_a_retry(
    source: str,
    operation: str,
    store: Store,
    seeder: Seeder,
    proxy: FaultProxy,
    ecr: Any,
    now: datetime,
) -> None:
    policy = builders.shipped_policy()
    policy["in_use"]["aws_sources"] = [source]
    config = builders.config(policy)
    api, proposal_id = approved_deletion(store, seeder, config, now, "suporte/api")
    before = seeder.live_digests(api)
    handle = open_registry(config, endpoint_url=proxy.endpoint_url, session=ecr.session())
    proxy.fail(operation, *["500"] * 10)  # the service has a bad night (botocore retries)

    result = apply(
        store, handle.client, config, now, actor=ADMIN, in_use=in_use_check(handle, config)
    )

    assert result.refused == {} and seeder.live_digests(api) == before
    (row,) = store.audit_log(proposal_id=proposal_id, outcome="retry")
    assert row.data in (None, {}) and "ServerException" in row.detail
    (run,) = store.runs(kind="apply")
    assert run.status == "ok"


@pytest.fixture
def hand_run(
    request: pytest.FixtureRequest,
    ecr: Any,
    seeder: Seeder,
    proxy: FaultProxy,
    config: Config,
    now: datetime,
    tmp_path: Path,
    smtp_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, Any]]:
    """An admin signed in, rules that read ECS (or, with the parameter ``kubernetes``, one
    context of the local Kubernetes API alone) and e-mail the admins through a real SMTP
    server, an approved deletion past its grace period, the CLI pointed at the proxy."""
    in_use: dict[str, Any] = {"aws_sources": ["ecs"]}
    if getattr(request, "param", "ecs") == "kubernetes":
        k8s_api = request.getfixturevalue("k8s_api")
        kubeconfig = k8s_api.kubeconfig(tmp_path / "kubeconfig")
        in_use = {"aws_sources": [], "kubernetes": {"kubeconfig": str(kubeconfig),
                                                    "contexts": ["lab"]}}  # fmt: skip
    monkeypatch.delenv(DEMO_TOKEN_ENV, raising=False)
    signed_in(monkeypatch, sts_as(ecr, ADMIN_ROLE, "alice@lsd.ufcg.edu.br"))
    with smtp_server() as smtp:
        smtp_settings = {
            "host": smtp.host,
            "port": smtp.port,
            "security": "none",
            "username_env": None,
        }
        directory = trust_rules(
            tmp_path / "rules",
            ["AdministratorAccess"],
            notify={"retries": 0, "admin_emails": ADMINS, "email": True, "smtp": smtp_settings},
            report={"out_dir": str(tmp_path / "out")},
            in_use=in_use,
        )
        url = f"sqlite:///{tmp_path / 'hygiene.db'}"
        store = deployed_store(url, directory)
        seeded = proposal_in_grace(store, seeder, config, now)
        alice = f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/{ADMIN_ROLE}/alice@lsd.ufcg.edu.br"
        store.approve([seeded["id"]], Identity(alice, "sts"))
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint_url)
        yield {
            **seeded,
            "store": store,
            "smtp": smtp,
            "args": ["apply", "--rules-dir", str(directory), "--store", url],
        }


def refused_and_alerted_once(
    hand_run: dict[str, Any], seeder: Seeder, capsys: pytest.CaptureFixture[str], code: str
) -> str:
    """Run the hand-run apply whose in-use read is refused with ``code``; check it exits 7,
    deletes nothing, keeps the proposal approved with an ``access_denied`` retry row, fails
    the run and alerts the admins once. The alert's text, for the hint's checks."""
    store, smtp = hand_run["store"], hand_run["smtp"]

    exit_code = run_cli(cli, hand_run["args"])

    assert exit_code == ExitCode.APPLY_FAILED == 7
    assert f"a read was refused ({code})" in capsys.readouterr().out
    assert seeder.live_digests(hand_run["repo"]) == {*hand_run["digests"], hand_run["kept"]}
    assert store.get(hand_run["id"]).state.value == "approved"
    (row,) = store.audit_log(proposal_id=hand_run["id"], outcome="retry")
    assert row.data == {"access_denied": True}
    (run,) = store.runs(kind="apply")
    assert run.status == "failed" and hand_run["id"] in run.errors[0]
    (alert,) = smtp.messages
    assert alert.message["Subject"] == f"registry-hygiene: apply run {run.id} failed"
    assert alert.rcpt_tos == ADMINS
    return str(alert.message.get_body(("plain",)).get_content())


def test_a_hand_run_apply_refused_an_in_use_read_exits_7_and_alerts_once(
    hand_run: dict[str, Any],
    seeder: Seeder,
    proxy: FaultProxy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proxy.fail("ListClusters", "denied")

    body = refused_and_alerted_once(hand_run, seeder, capsys, "AccessDeniedException")

    assert "ecs:ListClusters" in body and "hygiene iam policy --role" in body


@pytest.mark.parametrize("hand_run", ["kubernetes"], indirect=True)
def test_a_hand_run_apply_refused_by_kubernetes_exits_7_and_alerts_once(
    hand_run: dict[str, Any],
    seeder: Seeder,
    k8s_api: KubernetesApi,
    capsys: pytest.CaptureFixture[str],
) -> None:
    k8s_api.fail("pods", 403, forbidden("pods"))

    body = refused_and_alerted_once(hand_run, seeder, capsys, "Forbidden")

    assert "HTTP 403: pods is forbidden" in body
    assert "RBAC" in body and "context 'lab'" in body and "hygiene iam policy" not in body


@pytest.mark.parametrize("hand_run", ["kubernetes"], indirect=True)
def test_a_hand_run_apply_whose_kubernetes_credentials_are_refused_exits_7_and_alerts_once(
    hand_run: dict[str, Any],
    seeder: Seeder,
    k8s_api: KubernetesApi,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the context's token was revoked: the kubeconfig names one the API server refuses
    k8s_api.kubeconfig(tmp_path / "kubeconfig", {"lab": "revoked-token"})

    body = refused_and_alerted_once(hand_run, seeder, capsys, "Unauthorized")

    assert "HTTP 401: Unauthorized (again with the credentials loaded afresh" in body
    assert "context 'lab'" in body and "access entry" in body and "token" in body
    assert "RBAC" not in body and "hygiene iam policy" not in body
    assert k8s_api.calls("pods") == 2


@pytest.mark.parametrize("hand_run", ["kubernetes"], indirect=True)
def test_a_failing_exec_plugin_is_named_in_the_alert(
    hand_run: dict[str, Any],
    seeder: Seeder,
    k8s_api: KubernetesApi,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The context's exec plugin (``aws eks get-token``) fails: the admins' alert names
    it, its exit status and its stderr's first line, not only the log."""
    failing_exec_kubeconfig(k8s_api, tmp_path / "kubeconfig")

    body = refused_and_alerted_once(hand_run, seeder, capsys, "Unauthorized")

    assert "exec plugin `aws-fake eks get-token` failed (exit status 255: An error occurred" in (
        " ".join(body.split())
    )
    assert SECRET not in body and "plugin-env-secret-value" not in body
