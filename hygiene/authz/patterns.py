"""Who an ``admins`` entry matches: caller ARNs parsed, patterns anchored to accounts.

An identity is the ARN that ``sts:GetCallerIdentity`` returns (or ``os:<user>`` inside
the demo, see :mod:`hygiene.authz.identity`). Three kinds of ``admins`` entries:

``arn:<partition>:sts|iam::<account>:<resource>``
    The account is 12 literal digits and must be one of the configured registry
    accounts. In the resource, ``*`` matches any run of characters except ``/`` and
    ``?`` one character except ``/``: ``assumed-role/Admin/*`` matches every session of
    role ``Admin``; ``assumed-role/Admin*`` matches no session at all.
``<permission set>`` (a bare name)
    The IAM Identity Center permission set of that exact name: matches only
    ``arn:<partition>:sts::<account>:assumed-role/AWSReservedSSO_<name>_<16 hex>/<session>``
    in a configured account.
``os:<user>``
    A literal operating-system user; counts only inside the demo (checked by the
    caller, never here).

Nothing here reads configuration or the environment: :func:`check_entry` validates one
entry's syntax (for the config loader), :func:`parse_entry` compiles it against the
configured accounts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
_PARTITION = "|".join(re.escape(p) for p in PARTITIONS)
# Every pattern is ASCII (re.ASCII): Python's \w and \d also match the letters and
# digits of other scripts (é, Arabic-Indic ٨), which no account id or IAM name contains.
_CALLER = re.compile(
    rf"^arn:(?P<partition>{_PARTITION}):(?P<service>sts|iam)::(?P<account>\d{{12}}):"
    r"(?P<resource>[!-~]+)$",  # printable ASCII, no space
    re.ASCII,
)
_ENTRY_ARN = re.compile(
    r"^arn:(?P<partition>[^:]*):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):"
    r"(?P<resource>.+)$"
)
_ASSUMED_ROLE = re.compile(r"^assumed-role/(?P<role>[^/]+)/(?P<session>[^/]+)$", re.ASCII)
# IAM Identity Center roles: AWSReservedSSO_<permission set name>_<16 lowercase hex>
_SSO_ROLE = re.compile(r"^AWSReservedSSO_(?P<set>[\w+=,.@-]+)_(?P<suffix>[0-9a-f]{16})$", re.ASCII)
# Permission set names: 1-32 characters of [\w+=,.@-] (IAM Identity Center API reference)
_PERMISSION_SET = re.compile(r"^[\w+=,.@-]{1,32}$", re.ASCII)
# IAM resource names (role, user, path segments) plus the two wildcards
_RESOURCE = re.compile(r"^[\w+=,.@/*?-]+$", re.ASCII)
_OS_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\$?$", re.ASCII)
_ACCOUNT = re.compile(r"\d{12}", re.ASCII)

EntryKind = Literal["arn", "permission-set", "os"]


@dataclass(frozen=True)
class CallerArn:
    """A caller ARN as STS returns it, split into its parts."""

    arn: str
    partition: str
    service: str
    account: str
    resource: str

    @property
    def assumed_role(self) -> tuple[str, str] | None:
        """(role name, session name) of an ``assumed-role`` ARN, else None."""
        if self.service != "sts":
            return None
        match = _ASSUMED_ROLE.match(self.resource)
        return (match["role"], match["session"]) if match else None

    @property
    def sso_permission_set(self) -> str | None:
        """The permission set of an IAM Identity Center session, else None."""
        role = self.assumed_role
        if role is None:
            return None
        match = _SSO_ROLE.match(role[0])
        return match["set"] if match else None

    @property
    def sso_user(self) -> str | None:
        """The Identity Center user name (session name, lower case) of an SSO session.

        Only ``AWSReservedSSO_*`` roles count: their session name is set by IAM Identity
        Center from the signed-in user, whereas any other role's session name is chosen
        by whoever calls ``AssumeRole``."""
        if self.sso_permission_set is None:
            return None
        role = self.assumed_role
        return role[1].lower() if role else None


def parse_caller(identity: str) -> CallerArn | None:
    """Split a caller ARN (``sts``/``iam``, 12-digit account); None for anything else."""
    match = _CALLER.match(identity)
    if match is None:
        return None
    return CallerArn(
        identity, match["partition"], match["service"], match["account"], match["resource"]
    )


def _resource_regex(pattern: str) -> str:
    out = []
    for char in pattern:
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
    return "".join(out)


def check_entry(entry: str) -> EntryKind:
    """Validate one ``admins`` entry's syntax; raise ``ValueError`` saying what is wrong."""
    if not entry or entry != entry.strip():
        raise ValueError(f"{entry!r}: empty, or surrounded by spaces")
    if entry.startswith("os:"):
        user = entry[3:]
        if not _OS_USER.match(user):
            raise ValueError(
                f"{entry!r}: os: entries name one literal user (no wildcards); "
                "they only count inside the demo"
            )
        return "os"
    if entry.startswith("arn:"):
        match = _ENTRY_ARN.match(entry)
        if match is None:
            raise ValueError(f"{entry!r}: not an ARN (arn:aws:sts::<account>:assumed-role/…)")
        if match["partition"] not in PARTITIONS:
            raise ValueError(f"{entry!r}: unknown partition {match['partition']!r}")
        if match["service"] not in ("sts", "iam"):
            raise ValueError(f"{entry!r}: only sts and iam ARNs name a caller")
        if match["region"]:
            raise ValueError(f"{entry!r}: sts/iam ARNs have no region")
        if not _ACCOUNT.fullmatch(match["account"]):
            raise ValueError(
                f"{entry!r}: the account must be 12 literal digits (one of the configured "
                "registry accounts), never a wildcard"
            )
        if match["service"] == "iam" and match["resource"].startswith("role/"):
            raise ValueError(
                f"{entry!r}: a caller is never an iam role ARN; a session of role R is "
                f"arn:{match['partition']}:sts::{match['account']}:assumed-role/R/*"
            )
        if not _RESOURCE.match(match["resource"]):
            raise ValueError(
                f"{entry!r}: only IAM name characters and the wildcards * and ? are allowed"
            )
        return "arn"
    if ":" in entry or "/" in entry:
        raise ValueError(f"{entry!r}: neither an ARN (arn:…), a permission set name nor os:<user>")
    if not _PERMISSION_SET.match(entry):
        raise ValueError(
            f"{entry!r}: a bare name is an IAM Identity Center permission set name "
            "(1-32 characters of letters, digits and +=,.@_-, no wildcards)"
        )
    return "permission-set"


@dataclass(frozen=True)
class AdminEntry:
    """One compiled ``admins`` entry."""

    text: str
    kind: EntryKind
    accounts: tuple[str, ...]
    _regex: re.Pattern[str] | None = None

    def matches(self, identity: str) -> bool:
        """Does ``identity`` (a caller ARN or ``os:<user>``) match this entry?"""
        if self.kind == "os":
            return identity == self.text
        caller = parse_caller(identity)
        if caller is None or caller.account not in self.accounts:
            return False
        if self.kind == "permission-set":
            return caller.sso_permission_set == self.text
        assert self._regex is not None
        return self._regex.match(identity) is not None


def parse_entry(entry: str, accounts: Sequence[str]) -> AdminEntry:
    """Compile ``entry`` against the configured ``accounts``.

    Raises ``ValueError`` for bad syntax and for an ARN naming another account. With no
    account configured, ARN and permission-set entries match nobody (fail closed)."""
    kind = check_entry(entry)
    accounts = tuple(accounts)
    if kind == "arn":
        match = _ENTRY_ARN.match(entry)
        assert match is not None
        if accounts and match["account"] not in accounts:
            raise ValueError(
                f"{entry!r}: account {match['account']} is not a configured registry account "
                f"({', '.join(accounts)})"
            )
        prefix = f"arn:{match['partition']}:{match['service']}::{match['account']}:"
        regex = re.compile(
            "^" + re.escape(prefix) + _resource_regex(match["resource"]) + "$", re.ASCII
        )
        return AdminEntry(entry, kind, accounts, regex)
    return AdminEntry(entry, kind, accounts)


def matching_entry(identity: str, entries: Sequence[AdminEntry]) -> AdminEntry | None:
    """The first entry ``identity`` matches, or None."""
    return next((e for e in entries if e.matches(identity)), None)
