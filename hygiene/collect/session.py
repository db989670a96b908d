"""boto3 sessions and ECR clients: credentials, retries, endpoints, API call counting.

Credentials come from the standard chain (environment, ``--profile``/``AWS_PROFILE``,
SSO profiles after ``aws sso login``, instance/IRSA roles). ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_ECR`` are honoured by boto3 itself; ``endpoint_url`` here only exists
for the embedded registry. Retries are botocore's own retry modes — never a hand-written
loop — and every API call is counted per operation through botocore's event hooks.

botocore keeps its adaptive send rate and its retry quota per client (docs/ecr-facts.md,
"Rate limits and retries"). :class:`RegionClients` decides what is shared: one client
for every worker of a region, so a throttle any of them meets slows them all; and, for a
repository read again after a failed first read, a fresh client (a fresh retry quota)
that still sends at the region's shared adaptive rate.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config as BotoConfig
from botocore.retries import adaptive

from hygiene.collect.timestamps import new_session
from hygiene.config import CollectSettings
from hygiene.errors import CollectError


class OpenClients:
    """Every botocore client made from the sessions it is attached to, so that whoever
    made them can close them all (:meth:`close`: their connection pools and sockets).

    A daemon opens the registry afresh for each run, for weeks: its clients must not
    depend on the garbage collector to let go of their sockets. The clients are found
    through botocore's documented ``creating-client-class`` event, which lets a handler
    add a base class to the client class being made: here one that remembers each new
    client (weakly: a client dropped before :meth:`close` is not kept alive by it).
    """

    _ids = itertools.count()

    def __init__(self) -> None:
        self._clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._sessions: list[boto3.Session] = []
        self._unique_id = f"hygiene-open-clients-{next(self._ids)}"
        tracker = self

        class Remembered:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                tracker._remember(self)

        self._base = Remembered

    def _remember(self, client: Any) -> None:
        with self._lock:
            self._clients.add(client)

    def _add_base(self, base_classes: list[type], **_: Any) -> None:
        base_classes.insert(0, self._base)

    def attach(self, session: boto3.Session) -> None:
        """Remember every client ``session`` makes from now on."""
        session.events.register("creating-client-class", self._add_base, unique_id=self._unique_id)
        with self._lock:
            self._sessions.append(session)

    def __len__(self) -> int:
        with self._lock:
            return len(self._clients)

    def close(self) -> int:
        """Close every client made so far (botocore's ``close``: the connection pool) and
        stop remembering new ones; returns how many were closed."""
        with self._lock:
            clients, self._clients = list(self._clients), weakref.WeakSet()
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.events.unregister("creating-client-class", unique_id=self._unique_id)
        for client in clients:
            client.close()
        return len(clients)


_COUNTER_IDS = itertools.count()


@dataclass
class ApiCallCounter:
    """Counts API calls per operation (``DescribeImages`` …), thread-safe.

    ``before-call`` fires once per logical call; the retries botocore made inside that
    call are read from ``ResponseMetadata.RetryAttempts`` in ``after-call``. Its handlers
    are registered on each session it is :meth:`attach`-ed to until :meth:`detach`: a
    session that outlives the run (the demo's, a library caller's, reused run after run)
    must not keep one counter of every past run, each counting the later runs' calls.
    """

    calls: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # every client of the sessions it is attached to, to close them (RegistryHandle.close)
    clients: OpenClients = field(default_factory=OpenClients, repr=False, compare=False)
    _sessions: list[boto3.Session] = field(default_factory=list, repr=False, compare=False)
    _unique_id: str = field(
        default_factory=lambda: f"hygiene-api-calls-{next(_COUNTER_IDS)}",
        repr=False,
        compare=False,
    )

    def on_before_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def on_after_call(self, model: Any, parsed: Any = None, **_: Any) -> None:
        attempts = (parsed or {}).get("ResponseMetadata", {}).get("RetryAttempts", 0)
        if attempts:
            with self._lock:
                self.retries[model.name] += attempts

    # botocore's event names of the services the scan calls (EventBridge is "eventbridge")
    SERVICES = ("ecr", "sts", "organizations", "ecs", "eventbridge", "lambda", "batch")

    def _events(self) -> list[tuple[str, Any, str]]:
        """(event, handler, unique id) of every handler :meth:`attach` registers."""
        return [
            (f"{when}-call.{service}.*", handler, f"{self._unique_id}-{when}-{service}")
            for service in self.SERVICES
            for when, handler in (("before", self.on_before_call), ("after", self.on_after_call))
        ]

    def attach(self, session: boto3.Session) -> None:
        """Count the calls of ``session``'s clients, and remember each client it makes
        from now on (:attr:`clients`). Attaching twice to a session counts once."""
        for event, handler, unique_id in self._events():
            session.events.register(event, handler, unique_id=unique_id)
        with self._lock:
            if not any(known is session for known in self._sessions):
                self._sessions.append(session)
        self.clients.attach(session)

    def detach(self) -> None:
        """Stop counting: unregister from every session attached (the counts stay)."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            for event, _, unique_id in self._events():
                session.events.unregister(event, unique_id=unique_id)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.calls.items()))

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def make_session(profile: str | None = None, region: str | None = None) -> boto3.Session:
    """A boto3 session from the standard credential chain; clear error if it cannot be."""
    try:
        return new_session(profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound as exc:
        raise CollectError(
            f"--profile {profile}: profile not found in ~/.aws/config "
            "(configure it with `aws configure sso`)"
        ) from exc


def check_credentials(session: boto3.Session, profile: str | None) -> None:
    """Fail early, before any scan, when no credentials can be found or refreshed."""
    try:
        credentials = session.get_credentials()
    except (
        botocore.exceptions.SSOTokenLoadError,
        botocore.exceptions.UnauthorizedSSOTokenError,
        botocore.exceptions.TokenRetrievalError,
    ) as exc:
        raise CollectError(
            f"AWS SSO session expired or missing for profile {profile or 'default'}: "
            "run `aws sso login`" + (f" --profile {profile}" if profile else "")
        ) from exc
    if credentials is None:
        raise CollectError(
            "no AWS credentials found: run `aws sso login` and pass --profile NAME "
            "(or set AWS_PROFILE), or use `hygiene demo` for the embedded registry"
        )


def ecr_client(
    session: boto3.Session,
    region: str,
    settings: CollectSettings,
    endpoint_url: str | None = None,
    *,
    retry_mode: str | None = None,
) -> Any:
    """An ECR client with botocore retries and a connection pool sized for the workers."""
    config = BotoConfig(
        retries={"mode": retry_mode or settings.retry_mode, "max_attempts": settings.max_attempts},
        max_pool_connections=settings.max_workers + 2,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        user_agent_extra="registry-hygiene",
    )
    return session.client("ecr", region_name=region, endpoint_url=endpoint_url, config=config)


class RegionClients:
    """The collector's ECR clients in one region (see the module docstring).

    ``shared`` is the client every worker uses. ``fresh()`` makes a new one with its own
    retry quota; in ``adaptive`` mode it sends through the same rate limiter as
    ``shared``: botocore's own (``botocore.retries.adaptive``), made once for the region
    and registered on each client exactly as botocore registers it on one.
    """

    def __init__(
        self,
        session: boto3.Session,
        region: str,
        settings: CollectSettings,
        endpoint_url: str | None = None,
        lock: threading.Lock | None = None,
    ) -> None:
        self._session = session
        self._region = region
        self._settings = settings
        self._endpoint_url = endpoint_url
        # a boto3 session must not build clients concurrently: ``lock`` is the session's
        # when others build clients from it too
        self._lock = lock or threading.Lock()
        self._limiter: Any = None
        self.shared = self._client()
        if settings.retry_mode == "adaptive":
            self._limiter = adaptive.register_retry_handler(self.shared)

    def _client(self) -> Any:
        mode = "standard" if self._settings.retry_mode == "adaptive" else None
        return ecr_client(
            self._session, self._region, self._settings, self._endpoint_url, retry_mode=mode
        )

    def fresh(self) -> Any:
        with self._lock:
            client = self._client()
        if self._limiter is not None:
            client.meta.events.register("before-send", self._limiter.on_sending_request)
            client.meta.events.register("needs-retry", self._limiter.on_receiving_response)
        return client
