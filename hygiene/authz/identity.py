"""Who is calling: the STS caller ARN, or ``os:<user>`` inside a verified demo.

On a real registry the identity is what ``sts:GetCallerIdentity`` answers, asked of the
real STS endpoint of the partition: the client ignores ``AWS_ENDPOINT_URL*`` and
endpoint settings in ``~/.aws/config`` (``ignore_configured_endpoint_urls``), so no
environment variable can swap in a look-alike STS. No login name, ``LOGNAME`` or
``USER`` is ever read.

``os:<user>`` (the user of this process's uid, from the password database) is the
identity only when ``$HYGIENE_DEMO_TOKEN`` holds the secret that a running ``hygiene
demo`` printed *and* the registry endpoint this process talks to proves it knows that
secret: a challenge (a fresh nonce) answered with an HMAC-SHA256 keyed by the secret
(:func:`prove_demo`). A real registry never answers it, so an endpoint that merely looks
local earns nothing. The demo id that comes back is stored with every decision made in
the demo, and apply counts such decisions only inside that same demo.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import pwd
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from hygiene.errors import CollectError, NotAuthorisedError

DEMO_TOKEN_ENV = "HYGIENE_DEMO_TOKEN"
PROOF_PATH = "/_hygiene/demo-proof"
PROOF_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Identity:
    """A verified caller: ``name`` is an ARN or ``os:<user>``; ``source`` says how it
    was verified: ``sts``, or ``demo:<demo id>``."""

    name: str
    source: str

    @property
    def demo_id(self) -> str | None:
        return self.source.removeprefix("demo:") if self.source.startswith("demo:") else None

    def __str__(self) -> str:
        return self.name


def os_user() -> str:
    """The user name of this process's real uid (password database, not the environment)."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


# --------------------------------------------------------------------------- STS


def sts_client(session: Any, region: str) -> Any:
    """An STS client on the partition's real regional endpoint, whatever the environment
    or ``~/.aws/config`` say about endpoints."""
    return session.client(
        "sts",
        region_name=region,
        config=BotoConfig(
            ignore_configured_endpoint_urls=True,
            connect_timeout=5,
            read_timeout=15,
            retries={"mode": "standard", "max_attempts": 3},
            user_agent_extra="registry-hygiene",
        ),
    )


def sts_identity(client: Any) -> Identity:
    """The caller ARN from ``sts:GetCallerIdentity``; :class:`CollectError` (exit 6) if
    STS cannot be asked (no credentials, expired session, no network)."""
    try:
        arn = str(client.get_caller_identity()["Arn"])
    except (ClientError, BotoCoreError) as exc:
        raise CollectError(
            f"cannot tell who you are (sts:GetCallerIdentity failed): {exc}; "
            "log in first (aws sso login --profile NAME)"
        ) from exc
    return Identity(arn, "sts")


# --------------------------------------------------------------------------- demo proof


def proof_mac(token: str, nonce: str, demo_id: str) -> str:
    """The answer to a demo challenge: HMAC-SHA256(token, "hygiene-demo:<nonce>:<id>")."""
    message = f"hygiene-demo:{nonce}:{demo_id}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback(endpoint_url: str | None) -> bool:
    """Is ``endpoint_url`` on this machine? Where calls go (the scan sends STS and
    Organizations calls to the embedded registry, which serves them too), and one of
    the two conditions of the demo proof; never, alone, who anyone is."""
    return bool(endpoint_url) and is_loopback_host(urlparse(endpoint_url or "").hostname or "")


def prove_demo(endpoint_url: str | None, token: str, timeout: float = PROOF_TIMEOUT_SECONDS) -> str:
    """Challenge ``endpoint_url`` to prove it is the demo registry that issued ``token``;
    return its demo id. Raises :class:`NotAuthorisedError` (exit 4) otherwise."""
    where = f"${DEMO_TOKEN_ENV} is set, but the registry endpoint {endpoint_url or '(none)'}"
    if not endpoint_url or not is_loopback(endpoint_url):
        raise NotAuthorisedError(
            f"{where} is not the embedded registry of a `hygiene demo` on this machine; "
            f"unset {DEMO_TOKEN_ENV} to use your AWS identity"
        )
    nonce = secrets.token_hex(16)
    request = urllib.request.Request(
        endpoint_url.rstrip("/") + PROOF_PATH,
        data=json.dumps({"nonce": nonce}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    try:
        with opener.open(request, timeout=timeout) as response:
            answer = json.loads(response.read(4096))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise NotAuthorisedError(
            f"{where} did not answer the demo challenge ({exc}); is `hygiene demo "
            "--keep-running` still running, and are these its export lines?"
        ) from exc
    demo_id = str(answer.get("demo_id", "")) if isinstance(answer, dict) else ""
    mac = str(answer.get("mac", "")) if isinstance(answer, dict) else ""
    if not demo_id or not hmac.compare_digest(mac, proof_mac(token, nonce, demo_id)):
        raise NotAuthorisedError(
            f"{where} does not know this token: it is not the demo that printed it"
        )
    return demo_id


def demo_identity(endpoint_url: str | None, token: str) -> Identity:
    return Identity(f"os:{os_user()}", f"demo:{prove_demo(endpoint_url, token)}")


def resolve_identity(
    sts: Callable[[], Any],
    endpoint_url: Callable[[], str | None],
    environ: Mapping[str, str] | None = None,
) -> Identity:
    """The caller's verified identity: the demo's when ``$HYGIENE_DEMO_TOKEN`` is set
    (and proven by the registry endpoint), else STS's. ``sts`` builds the STS client,
    ``endpoint_url`` says which endpoint this process's ECR client uses."""
    env = os.environ if environ is None else environ
    token = env.get(DEMO_TOKEN_ENV, "")
    if token:
        return demo_identity(endpoint_url(), token)
    return sts_identity(sts())


def demo_context(endpoint_url: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The demo id this process may count ``os:`` approvals for: set only when
    ``$HYGIENE_DEMO_TOKEN`` is proven by ``endpoint_url`` (the applying ECR client's)."""
    env = os.environ if environ is None else environ
    token = env.get(DEMO_TOKEN_ENV, "")
    return prove_demo(endpoint_url, token) if token else None
