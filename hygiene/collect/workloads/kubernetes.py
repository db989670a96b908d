"""In use on Kubernetes (the lab's clusters, EKS or not), through the official client.

Each kubeconfig context named in the configuration is one source. What counts:

* every **pod** that is not finished (phase other than ``Succeeded``/``Failed``): the
  images of its containers, init containers and ephemeral containers, and the digests its
  ``containerStatuses`` / ``initContainerStatuses`` / ``ephemeralContainerStatuses``
  report in ``imageID`` — the manifest actually running, even if the tag moved since;
* the **pod templates** of Deployments, StatefulSets, DaemonSets, Jobs and CronJobs: a
  Deployment scaled to zero, or a CronJob between runs, still needs its image.

A container runtime may report an ``imageID`` under another repository that holds the
same digest (containerd keeps one repo digest per content), so a status digest protects
that digest in the repository the pod spec names too.

API calls, per context: one list call per kind and ``page_size`` objects (pods,
deployments, statefulsets, daemonsets, jobs, cronjobs), across all namespaces or once per
configured namespace. ``running_only`` (apply's re-read right before deleting) lists
pods only. A 401 costs one more read of the context, with the kubeconfig loaded afresh
(:func:`read_kubernetes`). Responses are read as JSON (``_preload_content=False``), not deserialised
into the client's model classes: faster on large clusters, and a field added by a newer
API server cannot break the read.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hygiene import errors
from hygiene.collect.workloads.base import SourceError, SourceResult
from hygiene.collect.workloads.execplugin import ExecFailures, exec_failure
from hygiene.collect.workloads.references import ImageUse, image_uses, parse_image

SOURCE = "kubernetes"
FINISHED_PHASES = frozenset({"Succeeded", "Failed"})
MAX_RESTARTS = 2  # a list restarted after its continue token expired (410 Gone)


@dataclass(frozen=True)
class KubernetesTarget:
    """One kubeconfig context to read (``namespaces`` empty: all of them)."""

    context: str
    kubeconfig: Path | None = None
    namespaces: tuple[str, ...] = ()
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    page_size: int = 500


# kind → (API class, all-namespaces method, namespaced method)
KINDS: dict[str, tuple[str, str, str]] = {
    "pod": ("CoreV1Api", "list_pod_for_all_namespaces", "list_namespaced_pod"),
    "deployment": ("AppsV1Api", "list_deployment_for_all_namespaces", "list_namespaced_deployment"),
    "statefulset": (
        "AppsV1Api",
        "list_stateful_set_for_all_namespaces",
        "list_namespaced_stateful_set",
    ),
    "daemonset": ("AppsV1Api", "list_daemon_set_for_all_namespaces", "list_namespaced_daemon_set"),
    "job": ("BatchV1Api", "list_job_for_all_namespaces", "list_namespaced_job"),
    "cronjob": ("BatchV1Api", "list_cron_job_for_all_namespaces", "list_namespaced_cron_job"),
}
TEMPLATE_KINDS = ("deployment", "statefulset", "daemonset", "job", "cronjob")


def api_client(target: KubernetesTarget) -> Any:
    """An ``ApiClient`` for the context (credentials, TLS, proxy from the kubeconfig)."""
    return _loaded(target)[0]


def _loaded(target: KubernetesTarget) -> tuple[Any, str | None]:
    """:func:`api_client`, and what went wrong with the context's exec credential plugin
    (:func:`hygiene.collect.workloads.execplugin.exec_failure`), if it failed: the client
    only logs that and goes on without credentials, so the API server's 401 is all a
    read would say."""
    from kubernetes import config as kube_config

    with ExecFailures() as failures:
        try:
            client = kube_config.new_client_from_config(
                config_file=str(target.kubeconfig) if target.kubeconfig else None,
                context=target.context,
                persist_config=False,
            )
        except (kube_config.ConfigException, OSError, ValueError, TypeError) as exc:
            where = str(target.kubeconfig) if target.kubeconfig else "the default kubeconfig"
            raise SourceError(
                "kubeconfig", f"context {target.context!r} in {where}: {exc}"
            ) from exc
    return client, exec_failure(target.kubeconfig, target.context, failures.messages)


# what the API server's refusals are refused as (the Status reasons Kubernetes gives them):
# a 403 (RBAC), and a 401 that stays after the credentials were loaded afresh
FORBIDDEN = "Forbidden"
UNAUTHORIZED = errors.UNAUTHORIZED
AFRESH = "again with the credentials loaded afresh from the kubeconfig"


class Unauthenticated(SourceError):
    """A 401: the API server did not accept the context's credentials (maybe only expired
    since they were loaded: :func:`read_kubernetes` loads them again once)."""


def _error(kind: str, exc: Exception) -> SourceError:
    """``exc`` as a :class:`SourceError`; a 403 is a refusal (``refused_code``
    :data:`FORBIDDEN`): RBAC does not let the context's identity list ``kind``, which no
    retry mends (apply fails its run on it, docs/in-use.md); a 401 is
    :class:`Unauthenticated`."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        reason = exc.reason or ""
        with contextlib.suppress(ValueError, AttributeError):  # a Status body, if any
            reason = json.loads(exc.body or "{}").get("message") or reason
        message = f"HTTP {exc.status}: {reason}".strip()
        if exc.status == 401:
            return Unauthenticated(f"list {kind}s", message)
        refused = FORBIDDEN if exc.status == 403 else None
        return SourceError(f"list {kind}s", message, refused)
    return SourceError(f"list {kind}s", f"{type(exc).__name__}: {exc}")


def list_objects(
    client: Any,
    target: KubernetesTarget,
    kind: str,
    namespace: str | None,
    count: Callable[[str], None],
) -> Iterator[dict[str, Any]]:
    """Every object of ``kind`` (in ``namespace``, or all), page by page."""
    import urllib3
    from kubernetes import client as kube
    from kubernetes.client.exceptions import ApiException

    api_name, all_namespaces, namespaced = KINDS[kind]
    api = getattr(kube, api_name)(client)
    method = getattr(api, namespaced if namespace else all_namespaces)
    args = (namespace,) if namespace else ()
    restarts = 0
    token: str | None = None
    pending: list[dict[str, Any]] = []
    while True:
        kwargs: dict[str, Any] = {
            "limit": target.page_size,
            "_preload_content": False,
            "_request_timeout": (target.connect_timeout, target.read_timeout),
        }
        if token:
            kwargs["_continue"] = token
        count(f"list {kind}s")
        try:
            response = method(*args, **kwargs)
            document = json.loads(response.data)
        except ApiException as exc:
            if exc.status == 410 and restarts < MAX_RESTARTS:
                # the continue token expired mid-listing: start again from the first page
                restarts, token, pending = restarts + 1, None, []
                continue
            raise _error(kind, exc) from exc
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise _error(kind, exc) from exc
        pending.extend(document.get("items") or [])
        token = (document.get("metadata") or {}).get("continue") or None
        if not token:
            yield from pending
            return


def _containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for key in ("containers", "initContainers", "ephemeralContainers"):
        yield from spec.get(key) or []


def pod_uses(pod: Mapping[str, Any], where: str) -> list[ImageUse]:
    """What one pod runs: spec images and the digests its statuses report."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    uses: list[ImageUse] = []
    spec_images: dict[str, str] = {}
    for container in _containers(spec):
        image = container.get("image")
        if image:
            spec_images[str(container.get("name"))] = str(image)
            uses += image_uses(SOURCE, where, image, running=True)
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for entry in status.get(key) or []:
            image_id = entry.get("imageID")
            uses += image_uses(SOURCE, where, entry.get("image"), running=True)
            uses += image_uses(SOURCE, where, image_id, running=True)
            reported = parse_image(image_id)
            declared = parse_image(spec_images.get(str(entry.get("name"))))
            if reported and reported.digest and declared:
                uses.append(
                    ImageUse(
                        source=SOURCE,
                        where=where,
                        repository=declared.repository,
                        digest=reported.digest,
                        account=declared.account,
                        region=declared.region,
                        running=True,
                    )
                )
    return uses


def template_spec(kind: str, obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod spec inside a workload object (a CronJob nests it one level deeper)."""
    spec = obj.get("spec") or {}
    if kind == "cronjob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def _where(target: KubernetesTarget, kind: str, obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{target.context}/{meta.get('namespace', '')}/{kind}/{meta.get('name', '')}"


def read_kubernetes(
    target: KubernetesTarget, *, running_only: bool = False, client: Any = None
) -> SourceResult:
    """Every image the context's pods and pod templates use (see module docs).

    A 401 may only mean that the token expired since it was loaded (an exec plugin's,
    such as ``aws eks get-token``, lives 15 minutes; the client renews it only when the
    plugin said when it expires): the kubeconfig is then loaded afresh (which runs the
    plugin again) and everything read again, once. A 401 again is a refusal
    (``refused_code`` :data:`UNAUTHORIZED`): the credentials themselves are not accepted
    (a wrong or revoked token, an EKS principal without an access entry), which no later
    read mends.

    Raises :class:`~hygiene.collect.workloads.base.SourceError` when the context cannot
    be loaded, reached, or listed completely (401 twice, 403, timeouts, a broken page).
    """
    result = SourceResult()
    try:
        _read(result, target, running_only, client)
    except Unauthenticated:
        result.uses.clear()  # the calls made stay counted
        try:
            _read(result, target, running_only, None)
        except Unauthenticated as again:
            raise SourceError(
                again.operation, f"{again.message} ({AFRESH})", UNAUTHORIZED
            ) from again
    return result


def _read(result: SourceResult, target: KubernetesTarget, running_only: bool, client: Any) -> None:
    """Read the context into ``result``, with ``client`` or (None) one made from the
    kubeconfig now, and closed after."""
    own_client = client is None
    plugin: str | None = None
    if own_client:
        client, plugin = _loaded(target)
    namespaces: Sequence[str | None] = target.namespaces or (None,)

    def count(call: str) -> None:
        result.calls[f"kubernetes:{call}"] += 1

    try:
        kinds = ("pod",) if running_only else ("pod", *TEMPLATE_KINDS)
        for kind in kinds:
            for namespace in namespaces:
                for obj in list_objects(client, target, kind, namespace, count):
                    where = _where(target, kind, obj)
                    if kind == "pod":
                        if (obj.get("status") or {}).get("phase") in FINISHED_PHASES:
                            continue
                        result.uses += pod_uses(obj, where)
                    else:
                        for container in _containers(template_spec(kind, obj)):
                            result.uses += image_uses(SOURCE, where, container.get("image"))
    except SourceError as exc:
        if plugin is None:
            raise
        # the plugin's failure is why the API server refused (no credentials were sent)
        kind_of = Unauthenticated if isinstance(exc, Unauthenticated) else SourceError
        raise kind_of(exc.operation, f"{exc.message}; {plugin}", exc.refused_code) from exc
    finally:
        if own_client:
            client.close()
