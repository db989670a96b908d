"""An HTTP proxy in front of the embedded ECR that adds latency and transient faults.

Real ECR answers in tens of milliseconds and, under load, throttles
(``ThrottlingException``), fails with 500/503 or drops connections
(docs/ecr-facts.md, "Rate limits and retries"); moto answers at once and never fails.
:class:`FaultProxy` sits between a boto3 client and the moto server on 127.0.0.1:

- every request waits ``latency`` seconds before it is forwarded;
- a share ``fault_rate`` of requests is answered with a fault instead, drawn from
  ``faults``: ``throttle`` (HTTP 400 ``ThrottlingException``), ``500``
  (``ServerException``), ``503`` (``ServiceUnavailableException``) or ``drop`` (the
  connection is closed without an answer);
- ``throttle_above`` (requests a second): requests beyond this rate are throttled, the way
  ECR's own rate quota does, whatever ``fault_rate`` says.

Faults are drawn from a seeded generator. The proxy counts requests and faults per
operation (``X-Amz-Target``). Loopback only; every loop in it is bounded by the
server's shutdown.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

FAULTS = ("throttle", "500", "503", "drop")
_ERRORS = {
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "500": (500, "ServerException", "We encountered an internal error. Please try again."),
    "503": (503, "ServiceUnavailableException", "Service unavailable. Please try again."),
}
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class FaultProxy:
    """A fault-injecting HTTP proxy for the embedded registry; a context manager."""

    def __init__(
        self,
        upstream: str,
        *,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        faults: Sequence[str] = FAULTS,
        throttle_above: float | None = None,
        seed: int = 0,
    ) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown or not faults:
            raise ValueError(f"faults must be a non-empty subset of {FAULTS}, not {faults}")
        if not 0 <= fault_rate < 1:
            raise ValueError("fault_rate must be in [0, 1)")
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.latency = latency
        self.fault_rate = fault_rate
        self.faults = tuple(faults)
        self.throttle_above = throttle_above
        self.requests: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._window: list[float] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.endpoint_url = ""

    # -- decisions
    def _decide(self, operation: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            self.requests[operation] += 1
            if self.throttle_above is not None:
                self._window = [t for t in self._window if now - t < 1.0]
                if len(self._window) >= self.throttle_above:
                    self.injected["throttle"] += 1
                    return "throttle"
                self._window.append(now)
            if self.fault_rate and self._random.random() < self.fault_rate:
                fault = self._random.choice(self.faults)
                self.injected[fault] += 1
                return fault
        return None

    # -- forwarding
    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(*self.upstream, timeout=60)
            self._local.connection = connection
        return connection

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        for attempt in range(2):  # one reconnect when the upstream closed a kept-alive socket
            connection = self._connection()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (http.client.HTTPException, OSError):
                connection.close()
                self._local.connection = None
                if attempt:
                    raise
                continue
            if response.will_close:
                connection.close()
                self._local.connection = None
            return response.status, response.getheaders(), data
        raise AssertionError("unreachable")

    # -- server
    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target = self.headers.get("X-Amz-Target", "")
                operation = target.rsplit(".", 1)[-1] or self.command
                if proxy.latency:
                    time.sleep(proxy.latency)
                fault = proxy._decide(operation)
                if fault == "drop":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if fault is not None:
                    status, code, message = _ERRORS[fault]
                    payload = json.dumps({"__type": code, "message": message}).encode()
                    self._reply(status, [("Content-Type", "application/x-amz-json-1.1")], payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                status, answer_headers, data = proxy.forward(self.command, self.path, headers, body)
                kept = [(k, v) for k, v in answer_headers if k.lower() not in _HOP_HEADERS]
                self._reply(status, kept, data)

            def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        host, port = server.server_address[:2]
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
