"""A local Kubernetes API server: the list endpoints the official client calls.

For the tests and the benchmarks. It serves List documents of the official schema (as
``kubectl get --raw`` prints them; the tests' recorded ones are in
``tests/workloads/k8s/<cluster>/*.json``) on 127.0.0.1, an ephemeral port, over plain
HTTP with bearer-token authentication, and answers like the real API server:

* ``GET /api/v1/pods`` and ``/api/v1/namespaces/<ns>/pods``; the same two forms for
  ``apps/v1`` deployments, statefulsets, daemonsets and ``batch/v1`` jobs, cronjobs;
* ``limit`` and ``continue`` paginate (an opaque token; ``metadata.continue`` is set
  while more items remain), as the API server's chunked lists do;
* a missing or wrong token gets a ``401 Unauthorized`` Status; :meth:`fail` makes a kind
  answer with any Status (403 Forbidden, 500, or 410 Gone for an expired continue token).

Every request is recorded in :attr:`requests` (path, query) so tests can count calls.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

TOKEN = "test-token-lab"
# plural → (group path, List kind, file)
RESOURCES: dict[str, tuple[str, str]] = {
    "pods": ("/api/v1", "PodList"),
    "deployments": ("/apis/apps/v1", "DeploymentList"),
    "statefulsets": ("/apis/apps/v1", "StatefulSetList"),
    "daemonsets": ("/apis/apps/v1", "DaemonSetList"),
    "jobs": ("/apis/batch/v1", "JobList"),
    "cronjobs": ("/apis/batch/v1", "CronJobList"),
}


def status(code: int, reason: str, message: str, kind: str | None = None) -> dict[str, Any]:
    """A ``Status`` object as the API server returns it with an error."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if kind:
        body["details"] = {"kind": kind}
    return body


def forbidden(plural: str, user: str = "system:serviceaccount:hygiene:scanner") -> dict[str, Any]:
    group = RESOURCES[plural][0].removeprefix("/apis/").removesuffix("/v1")
    group = "" if group == "/api" else group
    return status(
        403,
        "Forbidden",
        f'{plural} is forbidden: User "{user}" cannot list resource "{plural}" in API group '
        f'"{group}" at the cluster scope',
        plural,
    )


@dataclass
class Failure:
    code: int
    body: dict[str, Any]
    times: int | None = None  # None: every time


@dataclass
class KubernetesApi:
    """The server; a context manager. ``objects`` maps a plural to its List document."""

    objects: dict[str, dict[str, Any]]
    token: str = TOKEN
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    failures: dict[str, Failure] = field(default_factory=dict)
    url: str = ""
    _server: Any = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def recorded(cls, directory: Path) -> KubernetesApi:
        """Serve the List documents ``<directory>/<plural>.json`` (pods.json …)."""
        objects = {
            plural: json.loads((directory / f"{plural}.json").read_text(encoding="utf-8"))
            for plural in RESOURCES
        }
        return cls(objects)

    # ---------------------------------------------------------------- control

    def fail(self, plural: str, code: int, body: dict[str, Any], times: int | None = None) -> None:
        self.failures[plural] = Failure(code, body, times)

    def calls(self, plural: str | None = None) -> int:
        return sum(1 for path, _ in self.requests if plural is None or path.endswith(plural))

    def kubeconfig(self, path: Path, contexts: dict[str, str | None] | None = None) -> Path:
        """Write a kubeconfig whose contexts point at this server (``{name: token}``;
        default one context ``lab`` with the right token)."""
        contexts = contexts or {"lab": self.token}
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": next(iter(contexts)),
            "clusters": [{"name": "local", "cluster": {"server": self.url}}],
            "users": [
                {"name": f"user-{name}", "user": {"token": token} if token else {}}
                for name, token in contexts.items()
            ],
            "contexts": [
                {"name": name, "context": {"cluster": "local", "user": f"user-{name}"}}
                for name in contexts
            ],
        }
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        return path

    # ---------------------------------------------------------------- server

    def start(self) -> KubernetesApi:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> KubernetesApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- requests

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self._handle(request)
        return response(environ, start_response)

    def _json(self, code: int, body: dict[str, Any]) -> Response:
        return Response(json.dumps(body), status=code, content_type="application/json")

    def _handle(self, request: Request) -> Response:
        with self._lock:
            self.requests.append((request.path, dict(request.args)))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._json(401, status(401, "Unauthorized", "Unauthorized"))
        route = self._route(request.path)
        if route is None:
            return self._json(
                404, status(404, "NotFound", "the server could not find the resource")
            )
        plural, namespace = route
        with self._lock:
            failure = self.failures.get(plural)
            if failure is not None:
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        del self.failures[plural]
                return self._json(failure.code, failure.body)
        document = copy.deepcopy(self.objects[plural])
        items = document.get("items", [])
        if namespace is not None:
            items = [i for i in items if i["metadata"].get("namespace") == namespace]
        start = _offset(request.args.get("continue"))
        limit = int(request.args.get("limit") or 0)
        end = start + limit if limit > 0 else len(items)
        document["items"] = items[start:end]
        document.setdefault("metadata", {})
        if end < len(items):
            document["metadata"]["continue"] = _token(end)
            document["metadata"]["remainingItemCount"] = len(items) - end
        return self._json(200, document)

    @staticmethod
    def _route(path: str) -> tuple[str, str | None] | None:
        for plural, (prefix, _) in RESOURCES.items():
            if path == f"{prefix}/{plural}":
                return plural, None
            head = f"{prefix}/namespaces/"
            if path.startswith(head) and path.endswith(f"/{plural}"):
                namespace = path[len(head) : -len(f"/{plural}")]
                if namespace and "/" not in namespace:
                    return plural, namespace
        return None


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(
        json.dumps({"v": "meta.k8s.io/v1", "o": offset}).encode()
    ).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    return int(json.loads(base64.urlsafe_b64decode(token.encode()))["o"])


@contextmanager
def kubernetes_api(directory: Path) -> Iterator[KubernetesApi]:
    with KubernetesApi.recorded(directory) as api:
        yield api
