"""The trust policy: who may approve and object, as deployed (pinned in the store).

:class:`TrustPolicy` is the part of the configuration that decides who may change the
registry: the registry accounts identities are anchored to, the ``admins`` entries, the
people who may object for each namespace (owners and members), and ``apply.auto_safe``.
Its :attr:`~TrustPolicy.digest` is a SHA-256 of its canonical JSON.

The scheduled job pins the policy of its own (deployed) configuration in the store on
every run. ``approve``/``reject`` authorise against the pinned policy, never against the
``--rules-dir`` the caller passes, and ``apply`` refuses to run when its own
configuration's policy is not the pinned one (see docs/approvals.md, "Threat model").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hygiene.authz.patterns import AdminEntry, matching_entry, parse_caller, parse_entry
from hygiene.config import Config
from hygiene.errors import ConfigError
from hygiene.yamlfile import read_mapping

POLICY_VERSION = 1


def check_admins(config: Config) -> None:
    """A check for :func:`hygiene.config.load_config`: every ``admins`` entry is well
    formed and names only configured accounts (exit 2, naming file, line and entry)."""
    accounts = configured_accounts(config)
    for index, entry in enumerate(config.policy.admins):
        try:
            parse_entry(entry, accounts)
        except ValueError as exc:
            path = config.policy_path
            where = read_mapping(path).where(("admins", index)) if path else "default.yaml"
            raise ConfigError(f"{where}: admins[{index}]: {exc}") from None


def configured_accounts(config: Config) -> tuple[str, ...]:
    """The registry accounts identities are anchored to: ``registry.account``, or the
    accounts listed under ``registry.accounts.include``.

    Accounts an Organization lists at run time (``organization: true``) are not known
    when the configuration is read, so they anchor no one: list the account(s) people
    sign in to under ``include`` (``assume: false`` for the tool's own)."""
    registry = config.policy.registry
    if registry.account:
        return (registry.account,)
    if registry.accounts is not None:
        return tuple(sorted({entry.id for entry in registry.accounts.include}))
    return ()


DELETION_SECTIONS = (
    "selection",
    "rules",
    "overrides",
    "mutelist",
    "protections",
    "in_use",
    "lifecycle",
)
"""The parts of ``rules/default.yaml`` that decide what apply deletes or changes: which
rules run and with which options, what protections, the mutelist, the workloads it asks
and the lifecycle policies it generates (:func:`rules_digest`)."""


def rules_digest(config: Config) -> str:
    """SHA-256 of the :data:`DELETION_SECTIONS` of ``config``: apply judges every image
    again with its own rules, so a hand-run apply must run with the deployed ones."""
    document = config.policy.model_dump(mode="json", include=set(DELETION_SECTIONS))
    # where a machine keeps its kubeconfig is not a rule (``~`` is each user's home)
    document["in_use"]["kubernetes"].pop("kubeconfig", None)
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class TrustPolicy:
    accounts: tuple[str, ...]
    admins: tuple[str, ...]
    objectors: Mapping[str, tuple[str, ...]]  # namespace → lower-case e-mails
    auto_safe: bool = False
    rules: str = ""  # rules_digest of the configuration ("" in pins made before it was)
    _entries: tuple[AdminEntry, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        entries = []
        for index, entry in enumerate(self.admins):
            try:
                entries.append(parse_entry(entry, self.accounts))
            except ValueError as exc:
                raise ConfigError(f"admins[{index}]: {exc}") from exc
        object.__setattr__(self, "_entries", tuple(entries))

    @classmethod
    def from_config(cls, config: Config) -> TrustPolicy:
        objectors = {
            namespace: tuple(sorted({e.lower() for e in (*p.owners, *p.members)}))
            for namespace, p in config.projects.projects.items()
        }
        return cls(
            accounts=configured_accounts(config),
            admins=tuple(config.policy.admins),
            objectors=dict(sorted(objectors.items())),
            auto_safe=config.policy.apply.auto_safe,
            rules=rules_digest(config),
        )

    def document(self) -> dict[str, Any]:
        """The canonical content that is pinned and hashed."""
        return {
            "version": POLICY_VERSION,
            "accounts": sorted(self.accounts),
            "admins": list(self.admins),
            "objectors": {k: list(v) for k, v in sorted(self.objectors.items())},
            "auto_safe": self.auto_safe,
            "rules": self.rules,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> TrustPolicy:
        if document.get("version") != POLICY_VERSION:
            raise ConfigError(
                f"the pinned trust policy has version {document.get('version')!r}; this "
                f"hygiene understands version {POLICY_VERSION} (upgrade, or let the "
                "scheduled job pin again)"
            )
        return cls(
            accounts=tuple(document["accounts"]),
            admins=tuple(document["admins"]),
            objectors={k: tuple(v) for k, v in document["objectors"].items()},
            auto_safe=bool(document["auto_safe"]),
            rules=str(document.get("rules") or ""),
        )

    @property
    def digest(self) -> str:
        text = json.dumps(self.document(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    # ---------------------------------------------------------------- questions

    def admin_entry(self, identity: str) -> AdminEntry | None:
        """The ``admins`` entry ``identity`` matches (os: entries included), or None."""
        return matching_entry(identity, self._entries)

    def is_admin(self, identity: str) -> bool:
        return self.admin_entry(identity) is not None

    def may_object(self, identity: str, namespaces: Iterable[str | None]) -> bool:
        """Is ``identity`` an owner or member of every namespace in ``namespaces``?

        Recognised only from an IAM Identity Center session in a configured account: the
        session name of an ``AWSReservedSSO_*`` role is the signed-in user's name (at the
        lab, their e-mail); any other role's session name is the caller's choice."""
        caller = parse_caller(identity)
        if caller is None or caller.account not in self.accounts:
            return False
        user = caller.sso_user
        if user is None:
            return False
        wanted = list(namespaces)
        return bool(wanted) and all(
            ns is not None and user in self.objectors.get(ns, ()) for ns in wanted
        )

    def differences(self, other: TrustPolicy) -> list[str]:
        """What changed from ``other`` to this policy, in words (for audit rows)."""
        out: list[str] = []
        added = [a for a in self.admins if a not in other.admins]
        removed = [a for a in other.admins if a not in self.admins]
        if added:
            out.append("admins added: " + ", ".join(added))
        if removed:
            out.append("admins removed: " + ", ".join(removed))
        if set(self.accounts) != set(other.accounts):
            out.append(f"accounts: {', '.join(other.accounts)} → {', '.join(self.accounts)}")
        if self.objectors != other.objectors:
            changed = sorted(
                ns
                for ns in {*self.objectors, *other.objectors}
                if self.objectors.get(ns) != other.objectors.get(ns)
            )
            out.append("owners/members changed in: " + ", ".join(changed))
        if self.auto_safe != other.auto_safe:
            out.append(f"apply.auto_safe: {other.auto_safe} → {self.auto_safe}")
        if self.rules != other.rules:
            out.append(
                "the rules that decide deletions differ ("
                + ", ".join(DELETION_SECTIONS)
                + " in default.yaml)"
            )
        return out


@dataclass(frozen=True)
class PinnedTrust:
    """The newest pin in the store: the policy, when and by which run, from where."""

    policy: TrustPolicy
    digest: str
    at: datetime
    run_id: str | None
    host: str

    def describe(self) -> str:
        run = f"run {self.run_id}" if self.run_id else "a run"
        return f"pinned by {run} on {self.host} at {self.at.isoformat(timespec='seconds')}"


def listed(admins: Sequence[str]) -> str:
    return ", ".join(admins) if admins else "(nobody is listed)"
