"""Authorisation: verified identities, the deployed admins, and verified approvals.

- :mod:`~hygiene.authz.identity`: who is calling (STS, or ``os:<user>`` in a proven demo);
- :mod:`~hygiene.authz.patterns`: ``admins`` entries anchored to the configured accounts;
- :mod:`~hygiene.authz.policy`: the trust policy, pinned in the store by the scheduled job;
- :mod:`~hygiene.authz.decisions`: which decision stands, and whether apply may count it.

The guarantee (docs/approvals.md, "Threat model"): an approval counts only if the process
that applies it, running with its own deployed configuration, verifies that an admin made
it. The gates below (for ``approve``/``reject``/``apply`` by hand) stop honest mistakes
early with exit code 4; the check that decides is apply's own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hygiene.authz.decisions import (
    Decision,
    Verdict,
    content_hash,
    standing_decision,
    verify_approval,
)
from hygiene.authz.policy import PinnedTrust, TrustPolicy, configured_accounts, listed
from hygiene.config import Config
from hygiene.errors import NotAuthorisedError

if TYPE_CHECKING:
    from hygiene.authz.identity import DEMO_TOKEN_ENV, Identity, os_user, resolve_identity

# Who is calling (STS, urllib, botocore) is imported on first use: loading the
# configuration checks ``admins`` with hygiene.authz.policy, which imports this package,
# and `hygiene rules` need not pay for the identity module (docs/benchmarks.md, "Start-up").
_IDENTITY = frozenset({"DEMO_TOKEN_ENV", "Identity", "os_user", "resolve_identity"})


def __getattr__(name: str) -> Any:
    if name in _IDENTITY:
        from hygiene.authz import identity

        return getattr(identity, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def deployed(pinned: PinnedTrust | None, store_url: str) -> PinnedTrust:
    """The pinned policy, or :class:`NotAuthorisedError` when nothing was pinned yet."""
    if pinned is None:
        raise NotAuthorisedError(
            f"no deployed configuration is pinned in the store {store_url}: the scheduled "
            "job pins its admins and owners on every run; run `hygiene run nightly` (with "
            "the deployed rules) once; nothing was changed"
        )
    return pinned


def require_admin(identity: Identity, pinned: PinnedTrust, doing: str = "approve") -> Identity:
    """``identity`` if it is an admin of the deployed policy; else exit code 4."""
    if not pinned.policy.is_admin(identity.name):
        raise NotAuthorisedError(
            f"{identity.name} may not {doing}: not in the deployed `admins` "
            f"({listed(pinned.policy.admins)}; {pinned.describe()}); nothing was changed"
        )
    return identity


def require_objector(
    identity: Identity,
    pinned: PinnedTrust,
    namespaces: Iterable[str | None],
    doing: str = "reject",
) -> Identity:
    """Admins may reject anything; a project's owners and members (recognised from their
    IAM Identity Center session) may object to proposals of their own namespace."""
    wanted = list(namespaces)
    policy = pinned.policy
    if policy.is_admin(identity.name) or policy.may_object(identity.name, wanted):
        return identity
    names = ", ".join(sorted({str(n) for n in wanted if n})) or "(no namespace)"
    raise NotAuthorisedError(
        f"{identity.name} may not {doing}: neither a deployed admin nor, signed in through "
        f"IAM Identity Center in {', '.join(policy.accounts) or '(no configured account)'}, "
        f"an owner or member of {names}; nothing was changed"
    )


def config_differs(config: Config, pinned: PinnedTrust) -> list[str]:
    """How ``config``'s trust policy differs from the pinned one ([] when it does not)."""
    own = TrustPolicy.from_config(config)
    if own.digest == pinned.digest:
        return []
    return own.differences(pinned.policy) or ["the policies differ"]


__all__ = [
    "DEMO_TOKEN_ENV",
    "Decision",
    "Identity",
    "PinnedTrust",
    "TrustPolicy",
    "Verdict",
    "config_differs",
    "configured_accounts",
    "content_hash",
    "deployed",
    "os_user",
    "require_admin",
    "require_objector",
    "resolve_identity",
    "standing_decision",
    "verify_approval",
]
