"""An endpoint in front of the embedded ECR that adds latency and transient faults.

Real ECR answers in tens of milliseconds and, under load, throttles
(``ThrottlingException``), fails with 500/503 or drops connections
(docs/ecr-facts.md, "Rate limits and retries"); moto answers at once and never fails.
:class:`FaultProxy` is a second HTTP server on 127.0.0.1 that serves moto's application
(the same in-process registry as :class:`~hygiene_demo.registry.EmbeddedRegistry`)
through a middleware that decides, request by request, before moto sees it:

- every request waits ``latency`` seconds;
- a share ``fault_rate`` of the requests is answered with a fault instead, drawn from
  ``faults``: ``throttle`` (HTTP 400 ``ThrottlingException``), ``500``
  (``ServerException``), ``503`` (``ServiceUnavailableException``) or ``drop`` (the
  connection is closed without an answer);
- ``throttle_above`` (requests a second): requests beyond this rate are throttled, the way
  ECR's own rate quota does, whatever ``fault_rate`` says.

Faults are drawn from a seeded generator. The server counts requests and faults per
operation (``X-Amz-Target``). It listens on loopback only; its loop ends with
:meth:`FaultProxy.stop`. (A middleware, not a forwarding proxy: one HTTP hop, so the
tests and benchmarks that go through it pay for moto once.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

FAULTS = ("throttle", "500", "503", "drop")
_ERRORS = {
    "throttle": ("400 Bad Request", "ThrottlingException", "Rate exceeded"),
    "500": ("500 Internal Server Error", "ServerException", "Internal error, try again."),
    "503": ("503 Service Unavailable", "ServiceUnavailableException", "Try again."),
}


class FaultProxy:
    """Serve the embedded registry with latency and injected faults; a context manager."""

    def __init__(
        self,
        upstream: str = "",
        *,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        faults: Sequence[str] = FAULTS,
        throttle_above: float | None = None,
        seed: int = 0,
    ) -> None:
        """``upstream`` names the embedded registry it stands in front of (informative:
        moto's registry is one per process, and this server serves that one)."""
        unknown = set(faults) - set(FAULTS)
        if unknown or not faults:
            raise ValueError(f"faults must be a non-empty subset of {FAULTS}, not {faults}")
        if not 0 <= fault_rate < 1:
            raise ValueError("fault_rate must be in [0, 1)")
        self.upstream = upstream
        self.latency = latency
        self.fault_rate = fault_rate
        self.faults = tuple(faults)
        self.throttle_above = throttle_above
        self.requests: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._window: list[float] = []
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.endpoint_url = ""

    def decide(self, operation: str) -> str | None:
        """The fault to answer this request with, or None to let moto answer."""
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

    def middleware(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            operation = target.rsplit(".", 1)[-1] or environ.get("REQUEST_METHOD", "")
            if self.latency:
                time.sleep(self.latency)
            fault = self.decide(operation)
            if fault is None:
                return app(environ, start_response)
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length:
                environ["wsgi.input"].read(length)  # the request is read either way
            if fault == "drop":
                connection = environ.get("werkzeug.socket")
                if connection is not None:
                    with contextlib.suppress(OSError):
                        connection.shutdown(socket.SHUT_RDWR)
                start_response("500 Internal Server Error", [("Content-Length", "0")])
                return [b""]
            status, code, message = _ERRORS[fault]
            body = json.dumps({"__type": code, "message": message}).encode()
            start_response(
                status,
                [
                    ("Content-Type", "application/x-amz-json-1.1"),
                    ("Content-Length", str(len(body))),
                    ("x-amzn-ErrorType", code),
                ],
            )
            return [body]

        return serve

    def start(self) -> FaultProxy:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        app = self.middleware(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
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
