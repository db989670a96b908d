"""Who is approving: the STS caller ARN, or ``os:<user>`` for the embedded registry.

``config.policy.admins`` lists who may approve, reject and apply by hand:

- ARN patterns (``fnmatch``): ``arn:aws:sts::851296927411:assumed-role/Admin/*``;
- bare IAM Identity Center (SSO) permission-set names: ``AdministratorAccess`` matches
  the assumed role ``AWSReservedSSO_AdministratorAccess_<hash>`` in any account;
- ``os:<user>`` patterns for the embedded registry (a local endpoint, no real STS).
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable, Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from hygiene.config import Config
from hygiene.errors import CollectError, NotAuthorisedError

_ASSUMED_ROLE = re.compile(r"^arn:aws[\w-]*:sts::\d{12}:assumed-role/([^/]+)/(.+)$")
_SSO_ROLE = re.compile(r"^AWSReservedSSO_(.+)_[0-9a-f]{16}$")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def is_local_endpoint(endpoint_url: str | None) -> bool:
    """True for the embedded registry (an endpoint on this machine)."""
    if not endpoint_url:
        return False
    return (urlparse(endpoint_url).hostname or "") in LOCAL_HOSTS


def os_identity() -> str:
    try:
        return "os:" + getpass.getuser()
    except (KeyError, OSError):
        return f"os:{os.getuid()}"


def caller_identity(
    sts_client: Any | None = None,
    *,
    endpoint_url: str | None = None,
    sts_factory: Callable[[], Any] | None = None,
) -> str:
    """The caller's ARN from STS, or ``os:<user>`` when the registry endpoint is local."""
    if is_local_endpoint(endpoint_url):
        return os_identity()
    client = sts_client if sts_client is not None else (sts_factory or _default_sts)()
    try:
        return str(client.get_caller_identity()["Arn"])
    except (ClientError, BotoCoreError) as exc:
        raise CollectError(
            f"cannot tell who you are (sts:GetCallerIdentity failed): {exc}"
        ) from exc


def _default_sts() -> Any:
    import boto3

    return boto3.client("sts")


def sso_permission_set(arn: str) -> str | None:
    """``…:assumed-role/AWSReservedSSO_AdministratorAccess_0123456789abcdef/alice`` →
    ``AdministratorAccess``; None for anything else."""
    match = _ASSUMED_ROLE.match(arn)
    if not match:
        return None
    sso = _SSO_ROLE.match(match.group(1))
    return sso.group(1) if sso else None


def is_admin(identity: str, admins: Sequence[str]) -> bool:
    """Does ``identity`` match one entry of ``admins`` (see the module docstring)?"""
    permission_set = sso_permission_set(identity)
    for entry in admins:
        if ":" in entry:  # an ARN or os: pattern
            if fnmatchcase(identity, entry):
                return True
        elif permission_set is not None and fnmatchcase(permission_set, entry):
            return True
    return False


def require_admin(identity: str, config: Config, doing: str = "approve") -> str:
    """Return ``identity`` if it is an admin; else raise :class:`NotAuthorisedError`."""
    admins = config.policy.admins
    if not is_admin(identity, admins):
        where = config.policy_path or "rules/default.yaml"
        listed = ", ".join(admins) if admins else "(nobody is listed)"
        raise NotAuthorisedError(
            f"{identity} may not {doing}: not in `admins` of {where} ({listed}); "
            "nothing was changed"
        )
    return identity


def session_name(identity: str) -> str | None:
    """The session name of an assumed-role ARN (for IAM Identity Center users, their
    user name, at the lab their email): ``…:assumed-role/Role/joao@lsd…`` → the email."""
    match = _ASSUMED_ROLE.match(identity)
    if not match:
        return None
    return identity.rsplit("/", 1)[-1].lower()


def owns_namespaces(identity: str, config: Config, namespaces: Iterable[str | None]) -> bool:
    """Is ``identity`` an owner or member of every namespace (by its SSO session name)?"""
    name = session_name(identity)
    if name is None:
        return False
    for namespace in namespaces:
        project = config.projects.projects.get(namespace) if namespace else None
        if project is None:
            return False
        people = {e.lower() for e in (*project.owners, *project.members)}
        if name not in people:
            return False
    return True


def require_admin_or_owner(
    identity: str, config: Config, namespaces: Iterable[str | None], doing: str = "reject"
) -> str:
    """Admins may decide anything; a project's owners and members may *object* (reject)
    to proposals in their own namespace — objecting only ever keeps images."""
    wanted = list(namespaces)
    if is_admin(identity, config.policy.admins) or owns_namespaces(identity, config, wanted):
        return identity
    where = config.policy_path or "rules/default.yaml"
    listed = ", ".join(sorted({str(n) for n in wanted if n})) or "(no namespace)"
    raise NotAuthorisedError(
        f"{identity} may not {doing}: neither in `admins` of {where} nor an owner or member "
        f"of {listed} in the projects registry; nothing was changed"
    )
