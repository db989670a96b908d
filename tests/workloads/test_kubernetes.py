"""The Kubernetes source through the official client, against the local API server."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from hygiene.collect.workloads.base import SourceError
from hygiene.collect.workloads.kubernetes import KubernetesTarget, read_kubernetes
from hygiene_demo.kubernetes_api import RESOURCES, KubernetesApi, forbidden, status
from tests.workloads.conftest import FIXTURES
from tests.workloads.images import FOREIGN, HOME, digest_of
from tests.workloads.k8s_exec import SECRET, ExecKubeconfig, failing_exec_kubeconfig

LIST_TYPES = {
    "pods": "V1PodList",
    "deployments": "V1DeploymentList",
    "statefulsets": "V1StatefulSetList",
    "daemonsets": "V1DaemonSetList",
    "jobs": "V1JobList",
    "cronjobs": "V1CronJobList",
}


def refs(result) -> set[tuple[str, str, str | None, str | None]]:
    """(where, repository, tag, digest) of every use, registry account checked apart."""
    return {(u.where, u.repository, u.tag, u.digest) for u in result.uses}


@pytest.mark.parametrize("plural", sorted(RESOURCES))
def test_recorded_objects_are_of_the_official_schema(plural):
    """The client's own models read every recorded List, and write back every field."""
    from kubernetes import client

    api = client.ApiClient()
    raw = (FIXTURES / "lab" / f"{plural}.json").read_text()
    model = api.deserialize(raw, LIST_TYPES[plural], "application/json")
    assert model.items, plural

    def lost(original, written, path=""):
        if isinstance(original, dict):
            for key, value in original.items():
                if key not in written:
                    if value not in (None, {}, []):
                        yield f"{path}/{key}"
                    continue
                yield from lost(value, written[key], f"{path}/{key}")
        elif isinstance(original, list):
            for number, (a, b) in enumerate(zip(original, written, strict=True)):
                yield from lost(a, b, f"{path}[{number}]")

    assert list(lost(json.loads(raw), api.sanitize_for_serialization(model))) == []


def test_fixture_digests_are_the_seeded_ones():
    """The digests the recorded objects name are those of tests.workloads.images labels."""
    text = "".join((FIXTURES / "lab" / f"{p}.json").read_text() for p in RESOURCES)
    for label in ("ml/api:v3-old", "ml/init:v1", "ml/debug:v1", "ml/store:v1", "web/frontend:v2"):
        assert digest_of(label) in text, label


def test_pods_and_pod_templates_are_read(k8s_api, kubeconfig):
    result = read_kubernetes(KubernetesTarget("lab", kubeconfig))
    found = refs(result)
    old_api = digest_of("ml/api:v3-old")
    pod = "lab/ml/pod/trainer-api-7d9f8b6c5d-x2k4p"
    debug_pod = "lab/ml/pod/trainer-api-7d9f8b6c5d-q8w2n"
    # a running pod: spec image by tag, the digest its status reports, init containers
    assert {
        (pod, "ml/api", "v3", None),
        (pod, "ml/api", None, old_api),
        (pod, "ml/init", "v1", None),
        (pod, "ml/init", None, digest_of("ml/init:v1")),  # docker-pullable:// form
    } <= found
    # an ephemeral container added by kubectl debug
    assert (debug_pod, "ml/debug", None, digest_of("ml/debug:v1")) in found
    # containerd reported the digest under another repository: both are protected
    store = digest_of("ml/store:v1")
    assert ("lab/ml/pod/feature-store-0", "ml/store-mirror", None, store) in found
    assert ("lab/ml/pod/feature-store-0", "ml/store", None, store) in found
    # a pending pod not scheduled yet still needs its image
    assert ("lab/ml/pod/pending-reporter", "ml/adhoc", "v1", None) in found
    # templates: a Deployment scaled to zero, a StatefulSet by digest, Job, CronJob,
    # a DaemonSet with nothing scheduled
    assert {
        ("lab/ml/deployment/batch-worker", "ml/worker", "v1", None),
        ("lab/ml/statefulset/feature-store", "ml/store", None, store),
        ("lab/ml/job/migrate-42", "ml/migrate", "v7", None),
        ("lab/ml/cronjob/nightly-report", "ml/report", "v2", None),
        ("lab/monitoring/daemonset/node-exporter", "infra/node-exporter", "1.8.2", None),
    } <= found
    # a finished pod (Succeeded) runs nothing: its image is not protected by it
    assert not any(r[1] == "ml/migrate" and r[2] == "v6" for r in found)
    # other registries (Docker Hub, public ECR) are not ours
    assert {u.repository for u in result.uses}.isdisjoint(
        {"library/nginx", "aws-observability/aws-for-fluent-bit"}
    )
    # the registry of each reference is kept: web/frontend lives in another account
    accounts = {u.repository: u.account for u in result.uses}
    assert accounts["web/frontend"] == FOREIGN and accounts["ml/api"] == HOME
    assert {u.running for u in result.uses if "/pod/" in u.where} == {True}
    assert {u.running for u in result.uses if "/pod/" not in u.where} == {False}
    assert result.calls == {
        f"kubernetes:list {kind}": 1
        for kind in ("pods", "deployments", "statefulsets", "daemonsets", "jobs", "cronjobs")
    }


def test_pages_are_followed_with_continue_tokens(k8s_api, kubeconfig):
    whole = refs(read_kubernetes(KubernetesTarget("lab", kubeconfig)))
    k8s_api.requests.clear()
    paged = read_kubernetes(KubernetesTarget("lab", kubeconfig, page_size=2))
    assert refs(paged) == whole
    assert paged.calls["kubernetes:list pods"] == 4  # 7 pods, 2 a page
    assert k8s_api.calls("pods") == 4
    assert [q.get("limit") for p, q in k8s_api.requests if p.endswith("pods")] == ["2"] * 4


def test_an_expired_continue_token_restarts_the_list(k8s_api, kubeconfig):
    whole = refs(read_kubernetes(KubernetesTarget("lab", kubeconfig)))
    gone = status(
        410,
        "Expired",
        "The provided continue parameter is too old to display a "
        "consistent list result. You can start a new list without the continue "
        "parameter.",
    )
    k8s_api.requests.clear()
    original = k8s_api._handle

    def expire_second_page(request):
        if request.path.endswith("/pods") and request.args.get("continue") and not expired:
            expired.append(True)
            k8s_api.requests.append((request.path, dict(request.args)))
            return k8s_api._json(410, gone)
        return original(request)

    expired: list[bool] = []
    k8s_api._handle = expire_second_page
    paged = read_kubernetes(KubernetesTarget("lab", kubeconfig, page_size=3))
    assert expired == [True]
    assert refs(paged) == whole
    assert k8s_api.calls("pods") == 1 + 1 + 3  # first page, expired, then all 3 pages


def test_namespaces_limit_what_is_read(k8s_api, kubeconfig):
    result = read_kubernetes(KubernetesTarget("lab", kubeconfig, namespaces=("web",)))
    assert {u.where.split("/")[1] for u in result.uses} == {"web"}
    assert {u.repository for u in result.uses} == {"web/frontend"}
    assert all("/namespaces/web/" in path for path, _ in k8s_api.requests)


def test_running_only_lists_pods_alone(k8s_api, kubeconfig):
    result = read_kubernetes(KubernetesTarget("lab", kubeconfig), running_only=True)
    assert {path for path, _ in k8s_api.requests} == {"/api/v1/pods"}
    assert result.uses and all(u.running for u in result.uses)


def test_a_forbidden_kind_fails_the_context(k8s_api, kubeconfig):
    k8s_api.fail("cronjobs", 403, forbidden("cronjobs"))
    with pytest.raises(SourceError) as raised:
        read_kubernetes(KubernetesTarget("lab", kubeconfig))
    assert raised.value.operation == "list cronjobs"
    assert "HTTP 403" in raised.value.message
    assert 'cannot list resource "cronjobs" in API group "batch"' in raised.value.message


def test_a_server_error_fails_the_context(k8s_api, kubeconfig):
    k8s_api.fail("pods", 500, status(500, "InternalError", "etcdserver: request timed out"))
    with pytest.raises(SourceError, match="list pods: HTTP 500: etcdserver: request timed out"):
        read_kubernetes(KubernetesTarget("lab", kubeconfig))


def test_a_wrong_token_fails_the_context(k8s_api, tmp_path):
    config = k8s_api.kubeconfig(tmp_path / "kubeconfig", {"lab": "stale-token"})
    with pytest.raises(SourceError, match="HTTP 401: Unauthorized") as raised:
        read_kubernetes(KubernetesTarget("lab", config))
    # tried again once, with the kubeconfig read afresh: the token is still refused, which
    # no later read mends (apply fails its run on it, docs/in-use.md)
    assert k8s_api.calls("pods") == 2 and k8s_api.calls() == 2
    assert raised.value.refused_code == "Unauthorized"
    assert raised.value.operation == "list pods"
    assert "again with the credentials loaded afresh from the kubeconfig" in str(raised.value)


def test_an_expired_exec_token_is_loaded_afresh_once(k8s_api, tmp_path):
    """The plugin's first token expired after the client loaded it (the API server says
    401); the read loads the kubeconfig again, which runs the plugin again, and reads
    everything with the fresh token."""
    whole = read_kubernetes(KubernetesTarget("lab", k8s_api.kubeconfig(tmp_path / "k")))
    k8s_api.requests.clear()
    kubeconfig = ExecKubeconfig(k8s_api, tmp_path / "exec", ["expired-token", k8s_api.token])

    result = read_kubernetes(KubernetesTarget("lab", kubeconfig.path))

    # nothing lost, nothing twice from the first attempt
    assert sorted(result.uses, key=repr) == sorted(whole.uses, key=repr)
    assert kubeconfig.runs == 2
    assert k8s_api.calls("pods") == 2  # the 401, then the read with the fresh token
    assert result.calls["kubernetes:list pods"] == 2


def test_an_exec_plugin_whose_tokens_are_refused_is_refused(k8s_api, tmp_path):
    """An EKS principal without an access entry: every token it gets is refused."""
    kubeconfig = ExecKubeconfig(k8s_api, tmp_path / "exec", ["not-mapped-token"])
    with pytest.raises(SourceError) as raised:
        read_kubernetes(KubernetesTarget("lab", kubeconfig.path), running_only=True)
    assert raised.value.refused_code == "Unauthorized"
    assert kubeconfig.runs == 2 and k8s_api.calls("pods") == 2


def test_a_failing_exec_plugin_is_named_in_the_refusal(k8s_api, tmp_path):
    """``aws eks get-token`` failed (an expired SSO session): the client only logs that
    and sends no credentials. The refusal names the plugin's command, its exit status and
    its stderr's first line, bounded, without the secrets it wrote."""
    kubeconfig = failing_exec_kubeconfig(k8s_api, tmp_path / "exec" / "kubeconfig")
    with pytest.raises(SourceError) as raised:
        read_kubernetes(KubernetesTarget("lab", kubeconfig), running_only=True)
    error = raised.value
    assert error.refused_code == "Unauthorized" and error.operation == "list pods"
    assert "the kubeconfig's exec plugin `aws-fake eks get-token` failed (exit status 255: " in (
        error.message
    )
    assert "An error occurred (ExpiredTokenException)" in error.message
    assert "Traceback" not in error.message  # the first line only
    assert SECRET not in error.message and "[…]" in error.message
    assert "plugin-env-secret-value" not in error.message and "--cluster-name" not in error.message
    assert len(error.message) < 600
    assert k8s_api.calls("pods") == 2  # read again once, with the plugin run again


def test_a_401_on_a_later_kind_reads_again_from_the_start(k8s_api, kubeconfig):
    """The token expired between two kinds: the second attempt reads every kind again with
    the fresh credentials; what the first attempt read is not counted twice."""
    whole = read_kubernetes(KubernetesTarget("lab", kubeconfig))
    k8s_api.requests.clear()
    k8s_api.fail("jobs", 401, status(401, "Unauthorized", "Unauthorized"), times=1)

    again = read_kubernetes(KubernetesTarget("lab", kubeconfig))

    assert sorted(again.uses, key=repr) == sorted(whole.uses, key=repr)
    paths = [path for path, _ in k8s_api.requests]
    assert paths.count("/apis/batch/v1/jobs") == 2 and paths.count("/api/v1/pods") == 2


def test_an_unreachable_context_fails(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = KubernetesApi({})
    api.url = f"http://127.0.0.1:{port}"
    config = api.kubeconfig(tmp_path / "kubeconfig")
    with pytest.raises(SourceError) as raised:
        read_kubernetes(KubernetesTarget("lab", config, connect_timeout=1, read_timeout=1))
    assert raised.value.operation == "list pods"
    assert "MaxRetryError" in raised.value.message or "Connection" in raised.value.message


def test_an_unknown_context_or_kubeconfig_fails(kubeconfig, tmp_path):
    with pytest.raises(SourceError, match=r"context 'prod' in .*kubeconfig"):
        read_kubernetes(KubernetesTarget("prod", kubeconfig))
    with pytest.raises(SourceError, match="kubeconfig"):
        read_kubernetes(KubernetesTarget("lab", Path(tmp_path / "missing")))
