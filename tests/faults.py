"""A fault-injecting HTTP proxy in front of the embedded registry.

The proxy forwards every request to the moto server and relays its answer, except for
the operations told to fail: it forwards the request (so the registry *does* the work),
then drops the connection without answering (``"drop"``) or answers HTTP 500
(``"500"``). That is what a lost response looks like to botocore: a
``ConnectionClosedError`` or a ``ServerException`` after the delete happened, and, with
retries on, a second attempt that finds nothing left to delete. Or it refuses the call
without forwarding it, as IAM refuses an action the caller's policy does not grant
(``"denied"``: HTTP 400 ``AccessDeniedException``).

    with FaultProxy(ecr.endpoint_url) as proxy:
        proxy.fail("BatchDeleteImage", "drop")
        client = proxy.client(max_attempts=0)
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config as BotoConfig

from hygiene_demo.registry import DUMMY_CREDENTIALS

HOP_BY_HOP = {"connection", "transfer-encoding", "content-length", "server", "date"}


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

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = (self.headers.get("X-Amz-Target") or "").rsplit(".", 1)[-1]
                if proxy._denied(operation):  # IAM refuses it: the registry never sees it
                    # the service the request was signed for (…/<region>/<service>/aws4_request)
                    scope = (self.headers.get("Authorization") or "").split("/")
                    service = scope[3] if len(scope) > 4 else "ecr"
                    payload = json.dumps(
                        {
                            "__type": "AccessDeniedException",
                            "message": "User: arn:aws:sts::123456789012:assumed-role/cleaner/"
                            f"hygiene is not authorized to perform: {service}:{operation} on "
                            "resource",
                        }
                    ).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                upstream = http.client.HTTPConnection(
                    proxy.upstream.hostname, proxy.upstream.port, timeout=30
                )
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                upstream.request("POST", self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                fault = proxy._next_fault(operation)
                if fault == "drop":  # the work is done upstream; the answer never arrives
                    self.close_connection = True
                    return
                if fault == "500":
                    payload = json.dumps(
                        {"__type": "ServerException", "message": "injected after the work"}
                    ).encode()
                    self.send_response(500)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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
