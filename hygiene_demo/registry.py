"""The embedded ECR: moto's ThreadedMotoServer on 127.0.0.1, an ephemeral port.

Used by ``hygiene demo``, the benchmarks and the test suite. The server speaks the real
ECR wire protocol, so the collector and apply talk to it through exactly the same boto3
code path as production; only seeding goes straight to moto's in-process backend, the
only way to back-date pushes and record pulls (docs/ecr-facts.md, "The moto emulator").
moto comes with the optional ``demo`` extra and is imported when the server starts.

``EmbeddedRegistry(prove=True)`` (what ``hygiene demo`` starts) also answers the demo
challenge at ``/_hygiene/demo-proof`` (:func:`hygiene.authz.identity.prove_demo`): with a
fresh secret (:attr:`~EmbeddedRegistry.demo_token`, handed to the demo's own shell) and
a demo id. Only a process that knows the secret *and* talks to this server gets the
``os:<user>`` identity; a real registry never answers the challenge.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from hygiene.authz.identity import PROOF_PATH, proof_mac
from hygiene.collect.timestamps import new_session

DEFAULT_ACCOUNT = "123456789012"  # moto's default account for any access key
REGION = "us-east-1"  # the region the demo seeds and scans
DUMMY_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "aws_session_token": "testing",
}


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DemoProof:
    """WSGI middleware: answers the demo challenge, hands every other request to moto."""

    def __init__(self, app: WsgiApp, token: str, demo_id: str) -> None:
        self.app, self.token, self.demo_id = app, token, demo_id

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") != PROOF_PATH:
            return self.app(environ, start_response)
        try:
            length = min(int(environ.get("CONTENT_LENGTH") or 0), 4096)
            nonce = str(json.loads(environ["wsgi.input"].read(length))["nonce"])
            if environ.get("REQUEST_METHOD") != "POST" or not re.fullmatch(
                r"[0-9a-f]{16,128}", nonce
            ):
                raise ValueError(nonce)
        except (ValueError, KeyError, TypeError):
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [b'{"error": "expected POST with a JSON body {nonce: hex}"}']
        body = json.dumps(
            {"demo_id": self.demo_id, "mac": proof_mac(self.token, nonce, self.demo_id)}
        ).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]


class EmbeddedRegistry:
    """An in-process moto server holding an ECR registry; a context manager.

    ``prove=True``: the server also proves to the demo's shell that it is this demo (a
    new :attr:`demo_token` and :attr:`demo_id` per instance)."""

    def __init__(self, account: str = DEFAULT_ACCOUNT, *, prove: bool = False) -> None:
        self.account = account
        self._server: Any = None
        self.endpoint_url = ""
        self.demo_token = secrets.token_urlsafe(32) if prove else None
        self.demo_id = secrets.token_hex(6) if prove else None

    def start(self) -> EmbeddedRegistry:
        # MOTO_ACCOUNT_ID pins every request to one account, whatever its credentials: only
        # for a demo account other than moto's default. Left unset, moto picks the account
        # from the access key, so roles assumed into other accounts read those accounts'
        # registries (docs/ecr-facts.md, "The moto emulator").
        if self.account != DEFAULT_ACCOUNT:
            os.environ.setdefault("MOTO_ACCOUNT_ID", self.account)
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

        token, demo_id = self.demo_token, self.demo_id

        class Server(ThreadedMotoServer):  # type: ignore[misc]
            def _server_entry(self) -> None:
                # ThreadedMotoServer._server_entry, with the app wrapped in DemoProof
                from moto.moto_server.threaded_moto_server import make_server
                from moto.moto_server.werkzeug_app import (
                    DomainDispatcherApplication,
                    MotoRequestHandler,
                    create_backend_app,
                )

                app: Any = DomainDispatcherApplication(create_backend_app)
                if token is not None and demo_id is not None:
                    app = DemoProof(app, token, demo_id)
                self._server = make_server(
                    self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
                )
                self._server_ready_event.set()
                self._server.serve_forever()

        self._server = Server(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def reset(self) -> None:
        """Drop every repository and image (moto's global backend reset)."""
        from moto.ecr.models import ecr_backends

        ecr_backends.reset()

    def backend(self, region: str = "us-east-1") -> Any:
        """moto's ECR backend object for seeding (``put_image``, back-dating …)."""
        from moto.ecr.models import ecr_backends

        return ecr_backends[self.account][region]

    def session(self) -> boto3.Session:
        return new_session(**DUMMY_CREDENTIALS, region_name="us-east-1")

    def client(self, region: str = "us-east-1", max_attempts: int = 1) -> Any:
        """A plain ECR client for tests and seeding through the HTTP API."""
        return self.session().client(
            "ecr",
            region_name=region,
            endpoint_url=self.endpoint_url,
            config=BotoConfig(retries={"mode": "standard", "max_attempts": max_attempts}),
        )

    def __enter__(self) -> EmbeddedRegistry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def embedded_registry(account: str = DEFAULT_ACCOUNT) -> Iterator[EmbeddedRegistry]:
    with EmbeddedRegistry(account) as registry:
        yield registry
