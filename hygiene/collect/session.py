"""boto3 sessions and ECR clients: credentials, retries, endpoints, API call counting.

Credentials come from the standard chain (environment, ``--profile``/``AWS_PROFILE``,
SSO profiles after ``aws sso login``, instance/IRSA roles). ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_ECR`` are honoured by boto3 itself; ``endpoint_url`` here only exists
for the embedded registry. Retries are botocore's own retry modes — never a hand-written
loop — and every API call is counted per operation through botocore's event hooks.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config as BotoConfig

from hygiene.config import CollectSettings
from hygiene.errors import CollectError


@dataclass
class ApiCallCounter:
    """Counts API calls per operation (``DescribeImages`` …), thread-safe.

    ``before-call`` fires once per logical call; the retries botocore made inside that
    call are read from ``ResponseMetadata.RetryAttempts`` in ``after-call``.
    """

    calls: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_before_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def on_after_call(self, model: Any, parsed: Any = None, **_: Any) -> None:
        attempts = (parsed or {}).get("ResponseMetadata", {}).get("RetryAttempts", 0)
        if attempts:
            with self._lock:
                self.retries[model.name] += attempts

    # botocore's event names of the services the scan calls (EventBridge is "eventbridge")
    SERVICES = ("ecr", "sts", "ecs", "eventbridge", "lambda", "batch")

    def attach(self, session: boto3.Session) -> None:
        for service in self.SERVICES:
            session.events.register(f"before-call.{service}.*", self.on_before_call)
            session.events.register(f"after-call.{service}.*", self.on_after_call)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.calls.items()))

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def make_session(profile: str | None = None, region: str | None = None) -> boto3.Session:
    """A boto3 session from the standard credential chain; clear error if it cannot be."""
    try:
        return boto3.Session(profile_name=profile, region_name=region)
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
) -> Any:
    """An ECR client with botocore retries and a connection pool sized for the workers."""
    config = BotoConfig(
        retries={"mode": settings.retry_mode, "max_attempts": settings.max_attempts},
        max_pool_connections=settings.max_workers + 2,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        user_agent_extra="registry-hygiene",
    )
    return session.client("ecr", region_name=region, endpoint_url=endpoint_url, config=config)
