"""Shared fixtures (the embedded ECR, PostgreSQL, config, clock) and the two test lanes.

The lanes: a test that starts a server or a process is an ``integration`` test; every
other test is pure (``make test-fast`` runs only those: ``pytest -m "not integration"``).
A test is marked ``integration`` at collection when it uses, directly or through another
fixture, one of :data:`INTEGRATION_FIXTURES`, the fixtures that start servers and
processes. Nothing is marked by hand, and nothing can be forgotten: while a test that is
not marked runs, starting a process or listening on a socket raises (``_pure_lane``).

Property tests give their example count for the full run through :func:`examples`; the
fast lane (``-m "not integration"``) loads the hypothesis profile ``fast``, which runs a
tenth of them: the edit loop stays short, and every example still runs before landing.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, NoReturn

import pytest
from hypothesis import settings

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)

from hygiene.config import Config, load_config
from hygiene_demo.kubernetes_api import KubernetesApi
from hygiene_demo.registry import EmbeddedRegistry
from tests.builders import NOW, REPO_ROOT, RULES_DIR
from tests.postgres import postgres_server  # noqa: F401  (a fixture for every test)

# Records the AWS operations hygiene code calls; fails the run if one is not declared.
pytest_plugins = ["tests.iam_recorder"]

INTEGRATION_FIXTURES = frozenset(
    {
        "embedded_server",  # the moto server (HTTP on loopback); `ecr` and `seeder` use it
        "postgres_server",  # a PostgreSQL server process (tests/postgres.py)
        "smtp_server",  # a local SMTP server
        "slack_server",  # the Slack stand-in HTTP server
        "webhook_server",  # a chat incoming-webhook HTTP server (Teams, Mattermost, Google Chat)
        "chromium",  # Debian's chromium driven by Playwright (a browser process)
        "k8s_api",  # the local Kubernetes API server (hygiene_demo.kubernetes_api)
        "subprocess_env",  # the environment of a child process (the CLI end to end …)
        "connection_counter",  # a socket listening on loopback (tests/config/test_corpus.py)
    }
)


FULL_EXAMPLES = settings.default.max_examples  # hypothesis's default profile: 100
settings.register_profile("fast", max_examples=FULL_EXAMPLES // 10)


def examples(full: int) -> int:
    """``full`` hypothesis examples in the full run; a tenth (at least 10) in the fast lane."""
    return max(10, full * settings.default.max_examples // FULL_EXAMPLES)


def pytest_configure(config: pytest.Config) -> None:
    fast_lane = " ".join(config.getoption("markexpr").split()) == "not integration"
    if fast_lane and not config.getoption("hypothesis_profile"):
        settings.load_profile("fast")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def _refuse(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError(
            f"a test not marked 'integration' tried to {what}: use the fixture that starts "
            f"it (tests/conftest.py INTEGRATION_FIXTURES), which marks the test"
        )

    return refuse


@pytest.fixture(autouse=True)
def _pure_lane(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests outside the integration lane start no process and listen on no socket."""
    if request.node.get_closest_marker("integration") is None:
        monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse("start a process"))
        monkeypatch.setattr(os, "fork", _refuse("fork"))
        monkeypatch.setattr(socket.socket, "listen", _refuse("listen on a socket"))


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A command run in-process configures the root logger (hygiene.logs); put it back
    after each test, so the next test's output does not depend on which ran before."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def smtp_server() -> Callable[..., AbstractContextManager[Any]]:
    """``with smtp_server(starttls=…, implicit_tls=…, users=…) as server``: a real local
    SMTP server (aiosmtpd) recording what it receives (tests/notify/servers.py)."""
    from tests.notify.servers import start_smtp_server

    return start_smtp_server


@pytest.fixture
def slack_server() -> Callable[..., AbstractContextManager[Any]]:
    """``with slack_server(state) as state``: the Slack Web API / incoming-webhook stand-in
    HTTP server (tests/notify/servers.py)."""
    from tests.notify.servers import start_slack_server

    return start_slack_server


@pytest.fixture
def webhook_server() -> Callable[..., AbstractContextManager[Any]]:
    """``with webhook_server(status=…) as hook``: an HTTP server on loopback that records
    the JSON posted to it, like a chat service's incoming webhook (tests/notify/servers.py)."""
    from tests.notify.servers import start_webhook_server

    return start_webhook_server


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Debian chromium (Playwright), one per test session and worker."""
    from tests.browser.chromium import chromium as start

    with start() as context:
        yield context


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """The environment for a child Python process that imports ``hygiene`` and ``tests``
    from this checkout (a copy: change it freely). Using it marks the test integration."""
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


@pytest.fixture
def k8s_api() -> Iterator[KubernetesApi]:
    """The local Kubernetes API server serving the recorded objects of
    ``tests/workloads/k8s/lab/`` (hygiene_demo.kubernetes_api)."""
    with KubernetesApi.recorded(REPO_ROOT / "tests" / "workloads" / "k8s" / "lab") as api:
        yield api


class CountingListener:
    """A TCP socket on loopback that accepts, counts and closes every connection made to
    it: point endpoint variables at it to prove that nothing connects."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.count += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def connection_counter() -> Iterator[CountingListener]:
    """A :class:`CountingListener` for the tests of a module."""
    counting = CountingListener()
    yield counting
    counting.close()


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[EmbeddedRegistry]:
    """One moto server per test process (xdist worker). Like the demo's, it answers the
    demo challenge: a test that exports its ``demo_token`` acts as ``os:<user>``."""
    with EmbeddedRegistry(prove=True) as registry:
        yield registry


@pytest.fixture
def ecr(embedded_server: EmbeddedRegistry) -> Iterator[EmbeddedRegistry]:
    """The embedded registry, emptied before and after each test."""
    embedded_server.reset()
    yield embedded_server
    embedded_server.reset()


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config(RULES_DIR)


@pytest.fixture
def now() -> datetime:
    """The fixed test clock (:data:`tests.builders.NOW`)."""
    return NOW
