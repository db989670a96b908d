"""A moto server that answers like a remote AWS: latency per request, ECR throttling.

``SlowMotoServer`` is moto's ``ThreadedMotoServer`` with a WSGI wrapper that

- sleeps ``latency`` seconds before each request (the round trip to a regional endpoint;
  the threaded server sleeps in the request's own thread, so concurrency is kept);
- when ``rate`` is set, keeps one token bucket per (account, region) for ECR requests, as
  ECR does (docs/ecr-facts.md, "Rate limits and retries"): ``burst`` tokens, refilled at
  ``rate`` a second; a request that finds the bucket empty gets ECR's throttling answer
  (HTTP 400, ``ThrottlingException``), which botocore retries with back-off;
- counts requests and throttled answers per (account, region).

The account of a request is moto's: the one its access key belongs to (an assumed role's
key belongs to the role's account).
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from moto.server import ThreadedMotoServer

_CREDENTIAL = re.compile(r"Credential=([^/]+)/\d+/([^/]+)/([^/]+)/")
THROTTLED_BODY = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.at = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class SlowAws:
    """The WSGI wrapper (see the module docstring)."""

    def __init__(
        self, app: Callable[..., Any], latency: float, rate: float | None, burst: float
    ) -> None:
        self.app, self.latency, self.rate, self.burst = app, latency, rate, burst
        self.requests: Counter[tuple[str, str]] = Counter()
        self.throttled: Counter[tuple[str, str]] = Counter()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, key: tuple[str, str]) -> TokenBucket:
        with self._lock:
            if key not in self._buckets:
                self._buckets[key] = TokenBucket(self.rate or 1.0, self.burst)
            return self._buckets[key]

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        if match is None or (not self.latency and not self.rate):
            return self.app(environ, start_response)
        access_key, region, service = match.groups()
        if self.latency:
            time.sleep(self.latency)
        if service != "ecr":
            return self.app(environ, start_response)
        from moto.iam.models import get_account_id_from

        key = (get_account_id_from(access_key), region)
        with self._lock:
            self.requests[key] += 1
        if self.rate and not self._bucket(key).take():
            with self._lock:
                self.throttled[key] += 1
            start_response(
                "400 Bad Request",
                [
                    ("Content-Type", "application/x-amz-json-1.1"),
                    ("Content-Length", str(len(THROTTLED_BODY))),
                ],
            )
            return [THROTTLED_BODY]
        return self.app(environ, start_response)

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.throttled.clear()
            self._buckets.clear()


class SlowMotoServer(ThreadedMotoServer):
    """``ThreadedMotoServer`` behind :class:`SlowAws`; change ``wrapper`` settings live."""

    def __init__(self, latency: float = 0.0, rate: float | None = None, burst: float = 1.0) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.wrapper: SlowAws | None = None
        self._settings = (latency, rate, burst)

    def _server_entry(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        self.wrapper = SlowAws(DomainDispatcherApplication(create_backend_app), *self._settings)
        self._server = make_server(
            self._ip_address,
            self._port,
            self.wrapper,
            True,
            request_handler=MotoRequestHandler,
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint_url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"
