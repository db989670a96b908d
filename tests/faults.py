"""A fault-injecting HTTP proxy in front of the embedded registry.

The proxy forwards every request to the moto server and relays its answer, except for
the operations told to fail: it forwards the request (so the registry *does* the work),
then drops the connection without answering (``"drop"``) or answers HTTP 500
(``"500"``). That is what a lost response looks like to botocore: a
``ConnectionClosedError`` or a ``ServerException`` after the delete happened, and, with
retries on, a second attempt that finds nothing left to delete. Or it refuses the call
without forwarding it, as IAM refuses an action the caller's policy does not grant
(``"denied"``: ``AccessDeniedException``, or ``AccessDenied`` for a query-protocol
service such as STS, shaped as that service's protocol shapes its errors).

It relays every HTTP method, so every protocol botocore speaks goes through it: the JSON
protocol (ECR, ECS, EventBridge: ``POST`` with ``X-Amz-Target``), the query protocol
(STS: ``POST`` with ``Action=`` in the form body) and REST (Lambda's ``GET``s, Batch's
``POST /v1/…``). An operation is named as botocore names it: from ``X-Amz-Target``, from
``Action=``, or by matching the method and path against the signed service's model
(``requestUri``).

    with FaultProxy(ecr.endpoint_url) as proxy:
        proxy.fail("BatchDeleteImage", "drop")
        client = proxy.client(max_attempts=0)
"""

from __future__ import annotations

import functools
import http.client
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.session
from botocore.config import Config as BotoConfig

from hygiene_demo.registry import DUMMY_CREDENTIALS

HOP_BY_HOP = {"connection", "transfer-encoding", "content-length", "server", "date"}
METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "PATCH")


@functools.cache
def rest_routes(service: str) -> list[tuple[str, re.Pattern[str], str]]:
    """(method, path pattern, operation) of a REST service's operations, from botocore's
    model of it, the most literal path first (``/functions/{F}/aliases`` before
    ``/functions/{F}``)."""
    model = botocore.session.get_session().get_service_model(service)
    routes = []
    for name in model.operation_names:
        http_ = model.operation_model(name).http
        path = http_.get("requestUri", "/").split("?", 1)[0]
        pattern = re.sub(
            r"\\\{[^}]+\\\}",
            lambda m: ".+" if m.group(0).endswith("+\\}") else "[^/]+",
            re.escape(path.rstrip("/")),
        )
        literal = len(re.sub(r"\{[^}]+\}", "", path))
        routes.append((literal, http_.get("method", "POST"), re.compile(f"{pattern}/?"), name))
    routes.sort(key=lambda route: -route[0])
    return [(method, pattern, name) for _, method, pattern, name in routes]


def signed_service(authorization: str | None) -> str:
    """The service a SigV4 request was signed for (``…/<region>/<service>/aws4_request``)."""
    scope = (authorization or "").split("/")
    return scope[3] if len(scope) > 4 else "ecr"


def operation_of(method: str, path: str, headers: Any, body: bytes) -> tuple[str, str]:
    """(operation, protocol) of a botocore request: ``json``, ``query`` or ``rest``."""
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1], "json"
    if "x-www-form-urlencoded" in (headers.get("Content-Type") or ""):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0], "query"
    service = signed_service(headers.get("Authorization"))
    route = urlsplit(path).path
    for route_method, pattern, name in rest_routes(service):
        if route_method == method and pattern.fullmatch(route):
            return name, "rest"
    return f"{method} {route}", "rest"


def error_response(
    protocol: str, status: int, code: str, message: str
) -> tuple[int, dict[str, str], bytes]:
    """An AWS error as the protocol shapes it: (status, headers, body)."""
    if protocol == "query":
        body = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
            f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>fault-proxy</RequestId></ErrorResponse>"
        )
        return status, {"Content-Type": "text/xml"}, body.encode()
    payload = json.dumps({"__type": code, "message": message}).encode()
    if protocol == "json":
        return status, {"Content-Type": "application/x-amz-json-1.1"}, payload
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": code}, payload


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 (ephemeral port); a context manager."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.faults: dict[str, list[str]] = {}  # operation → faults still to inject
        self.seen: list[tuple[str, str]] = []  # (operation, "ok" | fault), in order
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def fail(self, operation: str, *faults: str) -> None:
        """Inject ``faults`` ("drop" | "500" | "denied"; "ok" lets one call through), one
        each, into the next ``operation`` calls."""
        for fault in faults:
            if fault not in ("drop", "500", "denied", "ok"):
                raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self.faults.setdefault(operation, []).extend(faults)

    @property
    def endpoint_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def client(self, max_attempts: int = 0) -> Any:
        """An ECR client through the proxy; ``max_attempts`` retries (botocore standard
        mode counts retries here, so 0 means one attempt)."""
        return boto3.Session(**DUMMY_CREDENTIALS, region_name="us-east-1").client(
            "ecr",
            endpoint_url=self.endpoint_url,
            config=BotoConfig(retries={"mode": "standard", "max_attempts": max_attempts}),
        )

    def _next_fault(self, operation: str) -> str | None:
        with self._lock:
            queue = self.faults.get(operation) or []
            fault = queue.pop(0) if queue else "ok"
            self.seen.append((operation, fault))
            return None if fault == "ok" else fault

    def _denied(self, operation: str) -> bool:
        """Is the next ``operation`` call refused (consumes the fault if so)?"""
        with self._lock:
            queue = self.faults.get(operation) or []
            if queue and queue[0] == "denied":
                queue.pop(0)
                self.seen.append((operation, "denied"))
                return True
            return False

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation, protocol = operation_of(self.command, self.path, self.headers, body)
                if proxy._denied(operation):  # IAM refuses it: the registry never sees it
                    service = signed_service(self.headers.get("Authorization"))
                    code = "AccessDenied" if protocol == "query" else "AccessDeniedException"
                    message = (
                        "User: arn:aws:sts::123456789012:assumed-role/cleaner/hygiene is not "
                        f"authorized to perform: {service}:{operation} on resource"
                    )
                    status = 400 if protocol == "json" else 403
                    self._answer(*error_response(protocol, status, code, message))
                    return
                upstream = http.client.HTTPConnection(
                    proxy.upstream.hostname, proxy.upstream.port, timeout=30
                )
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                fault = proxy._next_fault(operation)
                if fault == "drop":  # the work is done upstream; the answer never arrives
                    self.close_connection = True
                    return
                if fault == "500":
                    code = "InternalFailure" if protocol == "query" else "ServerException"
                    self._answer(*error_response(protocol, 500, code, "injected after the work"))
                    return
                kept = {k: v for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP}
                self._answer(answer.status, kept, data)

        for method in METHODS:
            setattr(Handler, f"do_{method}", Handler._relay)

        return Handler

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
