"""The embedded ECR: moto's ThreadedMotoServer on 127.0.0.1, an ephemeral port.

Used by ``hygiene demo``, the benchmarks and the test suite. The server speaks the real
ECR wire protocol, so the collector and apply talk to it through exactly the same boto3
code path as production; only seeding goes straight to moto's in-process backend, the
only way to back-date pushes and record pulls (docs/ecr-facts.md, "The moto emulator").
moto comes with the optional ``demo`` extra and is imported when the server starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

DEFAULT_ACCOUNT = "123456789012"  # moto's default account for any access key
DUMMY_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "aws_session_token": "testing",
}


class EmbeddedRegistry:
    """An in-process moto server holding an ECR registry; a context manager."""

    def __init__(self, account: str = DEFAULT_ACCOUNT) -> None:
        self.account = account
        self._server: Any = None
        self.endpoint_url = ""

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

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
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
        return boto3.Session(**DUMMY_CREDENTIALS, region_name="us-east-1")

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
