"""The accounts a scan reads, and one boto3 session per account and role.

``registry.accounts`` (docs/accounts.md) lists account ids, or asks AWS Organizations for
every ACTIVE account (``organization: true``; suspended and closing accounts are skipped
and reported). Each account is read through a role assumed in it: the *scanner* role to
collect, the *cleaner* role to apply. Without ``registry.accounts`` the tool reads the
account of its own credentials, as it always did.

An assumed session's credentials are botocore's :class:`DeferredRefreshableCredentials`:
AssumeRole is called on first use and again when fewer than 15 minutes are left (botocore's
advisory refresh window; 10 minutes is mandatory), so a run longer than the role's
session duration never signs with expired credentials. The refresh is botocore's code;
only the fetch (one ``sts:AssumeRole`` call with the external id) is ours.

Every assumed session is checked to be in the account it was made for: the role ARN is
built from a template with ``{account}``, and the assumed-role ARN STS returns must name
the same account, else the account is not read (a wrong template must never label one
account's repositories with another's id).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
import botocore.exceptions
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import (
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)

from hygiene.collect.timestamps import botocore_session
from hygiene.config import AccountsSettings, RegistrySettings, role_arn
from hygiene.errors import CollectError, ConfigError

log = logging.getLogger(__name__)

# ASCII only: \w and \d would also take other scripts' letters and digits (aws٨, ١٢…)
ASSUMED_ROLE_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:sts::(?P<account>\d{12}):assumed-role/", re.ASCII
)
# ListAccounts statuses other than this one (SUSPENDED, PENDING_CLOSURE) are not read.
ACTIVE = "ACTIVE"
ORGANIZATIONS_REGION = "us-east-1"  # Organizations has one (global) endpoint


class AccountError(botocore.exceptions.BotoCoreError):
    """An account could not be opened (AssumeRole denied, a session in the wrong account).

    A botocore error, so a refresh that fails in the middle of a run surfaces like any
    failed call: the repository being read is incomplete, and with it its account.
    """

    fmt = "account {account}: {operation}: {message}"

    def __init__(self, account: str, operation: str, message: str) -> None:
        super().__init__(account=account, operation=operation, message=message)
        self.account = account
        self.operation = operation
        self.message = message


@dataclass(frozen=True)
class AccountTarget:
    """One account to read, in which regions, through which roles.

    ``id`` is None only without ``registry.accounts``: the account of the tool's own
    credentials, which ECR names in every response. A role of None means the tool's own
    credentials (no AssumeRole).
    """

    id: str | None
    regions: tuple[str, ...]
    scanner_role: str | None = None
    cleaner_role: str | None = None

    def role(self, purpose: str) -> str | None:
        return self.cleaner_role if purpose == "cleaner" else self.scanner_role


@dataclass
class AccountList:
    """The accounts of one run: those to read, and those left out with the reason."""

    targets: list[AccountTarget]
    skipped: dict[str, str] = field(default_factory=dict)  # account id → why not read
    organization: bool = False

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.targets if t.id is not None]

    def target(self, account: str) -> AccountTarget | None:
        for target in self.targets:
            if target.id == account:
                return target
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "accounts": [
                {"id": t.id, "regions": list(t.regions), "scanner_role": t.scanner_role}
                for t in self.targets
            ],
            "skipped": dict(sorted(self.skipped.items())),
            "organization": self.organization,
        }


def single_account(settings: RegistrySettings, regions: Iterable[str] = ()) -> AccountList:
    """Without ``registry.accounts``: the own credentials' account in the given regions."""
    chosen = tuple(regions) or tuple(settings.regions)
    return AccountList([AccountTarget(settings.account, chosen)])


def configured_targets(
    settings: RegistrySettings,
    organization_accounts: Iterable[Mapping[str, Any]] = (),
    regions: Iterable[str] = (),
) -> AccountList:
    """The accounts to read (pure): the explicit ``include`` entries plus, with
    ``organization: true``, the ACTIVE accounts ListAccounts returned, less ``exclude``.

    ``regions`` (the command line's ``--region``) replaces every account's regions.
    """
    accounts = settings.accounts
    if accounts is None:
        return single_account(settings, regions)
    override = tuple(regions)
    default_regions = override or tuple(settings.regions)
    excluded = set(accounts.exclude)
    skipped: dict[str, str] = {a: "excluded (registry.accounts.exclude)" for a in excluded}
    wanted: dict[str, AccountTarget] = {}
    for listed in organization_accounts:
        account = str(listed["Id"])
        states = {str(listed.get("Status") or ACTIVE), str(listed.get("State") or ACTIVE)}
        if account in excluded:
            continue
        if states != {ACTIVE}:
            skipped[account] = "not read: the Organization lists it as " + "/".join(
                sorted(states - {ACTIVE})
            )
            continue
        wanted[account] = _target(accounts, account, default_regions, None)
    for entry in accounts.include:
        if entry.id in skipped and entry.id not in excluded:
            continue  # listed by hand, but suspended in the Organization: not read
        regions_of = override or tuple(entry.regions or ()) or default_regions
        wanted[entry.id] = _target(accounts, entry.id, regions_of, entry)
    targets = [wanted[a] for a in sorted(wanted)]
    return AccountList(targets, skipped, organization=accounts.organization)


def _target(
    accounts: AccountsSettings, account: str, regions: tuple[str, ...], entry: Any
) -> AccountTarget:
    if entry is not None and not entry.assume:
        return AccountTarget(account, regions, None, None)
    scanner = (entry.scanner_role if entry is not None else None) or accounts.scanner_role
    cleaner = (entry.cleaner_role if entry is not None else None) or accounts.cleaner_role
    return AccountTarget(account, regions, role_arn(scanner, account), role_arn(cleaner, account))


def list_organization_accounts(client: Any) -> list[dict[str, Any]]:
    """Every account of the Organization (all statuses), through ListAccounts' pages.

    Only the management account or a delegated administrator may call it; a failure is a
    :class:`CollectError`: without the list no account is known to be complete.
    """
    accounts: list[dict[str, Any]] = []
    try:
        for page in client.get_paginator("list_accounts").paginate():
            accounts.extend(page.get("Accounts", []))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise CollectError(
            f"cannot list the accounts of the AWS Organization (organizations:ListAccounts, "
            f"registry.accounts.organization): {exc}"
        ) from exc
    return accounts


def resolve_accounts(
    settings: RegistrySettings,
    *,
    regions: Iterable[str] = (),
    organizations: Callable[[], Any] | None = None,
) -> AccountList:
    """:func:`configured_targets`, calling ListAccounts when the config asks for it.

    ``organizations`` builds the Organizations client (called only then).
    """
    accounts = settings.accounts
    listed: list[dict[str, Any]] = []
    if accounts is not None and accounts.organization:
        if organizations is None:
            raise CollectError("registry.accounts.organization is on but no session to ask")
        listed = list_organization_accounts(organizations())
    return configured_targets(settings, listed, regions)


def external_id(accounts: AccountsSettings) -> str | None:
    """The external id AssumeRole sends: ``$<external_id_env>`` or ``external_id``."""
    if accounts.external_id_env:
        value = os.environ.get(accounts.external_id_env)
        if not value:
            raise ConfigError(
                f"registry.accounts.external_id_env: the environment variable "
                f"{accounts.external_id_env} is not set (the external id the member roles' "
                "trust policy requires)"
            )
        return value
    return accounts.external_id


# --------------------------------------------------------------------------- sessions


class _Fixed(CredentialProvider):
    """A credential provider that hands out the refreshable credentials it was given."""

    METHOD = "registry-hygiene-assume-role"
    CANONICAL_NAME = "registry-hygiene-assume-role"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self._credentials


def assume_role_fetcher(
    sts: Any,
    role: str,
    account: str,
    *,
    session_name: str,
    duration_seconds: int,
    external_id: str | None,
) -> Callable[[], dict[str, str]]:
    """The refresh function of :class:`DeferredRefreshableCredentials`: one AssumeRole.

    Raises :class:`AccountError` when STS refuses, or when the session it returns is not
    in ``account``.
    """

    def fetch() -> dict[str, str]:
        arguments: dict[str, Any] = {
            "RoleArn": role,
            "RoleSessionName": session_name,
            "DurationSeconds": duration_seconds,
        }
        if external_id:
            arguments["ExternalId"] = external_id
        try:
            response = sts.assume_role(**arguments)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            raise AccountError(
                account, "AssumeRole", f"{role}: {error.get('Code')}: {error.get('Message')}"
            ) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise AccountError(account, "AssumeRole", f"{role}: {exc}") from exc
        assumed = str(response.get("AssumedRoleUser", {}).get("Arn", ""))
        match = ASSUMED_ROLE_ARN.match(assumed)
        if match is None or match["account"] != account:
            raise AccountError(
                account, "AssumeRole", f"{role} gave a session in another account ({assumed})"
            )
        credentials = response["Credentials"]
        expiration = credentials["Expiration"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": expiration.isoformat()
            if isinstance(expiration, datetime)
            else str(expiration),
        }

    return fetch


def assumed_session(
    fetch: Callable[[], dict[str, str]],
    region: str,
    *,
    time_fetcher: Callable[[], datetime] | None = None,
) -> boto3.Session:
    """A boto3 session whose credentials come from ``fetch`` and are refreshed by botocore
    before they expire (``time_fetcher`` replaces botocore's clock in tests)."""
    options: dict[str, Any] = {"refresh_using": fetch, "method": _Fixed.METHOD}
    if time_fetcher is not None:
        options["time_fetcher"] = time_fetcher
    credentials = DeferredRefreshableCredentials(**options)
    core = botocore_session()
    core.register_component("credential_provider", CredentialResolver([_Fixed(credentials)]))
    return boto3.Session(botocore_session=core, region_name=region)


def sts_client(base: boto3.Session, region: str, endpoint_url: str | None = None) -> Any:
    """The STS client that assumes the member roles (regional endpoint, standard retries)."""
    config = BotoConfig(retries={"mode": "standard", "max_attempts": 5})
    return base.client("sts", region_name=region, endpoint_url=endpoint_url, config=config)


class AccountSessions:
    """Sessions per (account, purpose), made on first use and kept for the process.

    ``purpose`` is ``scanner`` (collect) or ``cleaner`` (apply). A target without a role
    gets the base session. ``attach`` is called on every new session (the API call
    counter). Thread-safe.
    """

    def __init__(
        self,
        base: boto3.Session,
        settings: RegistrySettings,
        *,
        endpoint_url: str | None = None,
        attach: Callable[[boto3.Session], None] | None = None,
        time_fetcher: Callable[[], datetime] | None = None,
    ) -> None:
        self.base = base
        self.settings = settings
        self.endpoint_url = endpoint_url
        self.attach = attach
        self.time_fetcher = time_fetcher
        self._sessions: dict[tuple[str | None, str], boto3.Session] = {}
        # an account whose role could not be assumed is not asked again in this run
        self._failed: dict[tuple[str | None, str], AccountError] = {}
        self._sts: Any = None
        self._lock = threading.Lock()

    @property
    def region(self) -> str:
        return self.base.region_name or self.settings.regions[0]

    def sts(self) -> Any:
        with self._lock:
            if self._sts is None:
                self._sts = sts_client(self.base, self.region, self.endpoint_url)
            return self._sts

    def organizations(self) -> Any:
        return self.base.client(
            "organizations", region_name=ORGANIZATIONS_REGION, endpoint_url=self.endpoint_url
        )

    def session(self, target: AccountTarget, purpose: str = "scanner") -> boto3.Session:
        """The session for ``target``; AssumeRole happens on first use of its credentials."""
        role = target.role(purpose)
        if role is None or target.id is None:
            return self.base
        key = (target.id, purpose)
        with self._lock:
            session = self._sessions.get(key)
        if session is not None:
            return session
        accounts = self.settings.accounts
        assert accounts is not None  # a role is only set from registry.accounts
        fetch = assume_role_fetcher(
            self.sts(),
            role,
            target.id,
            session_name=accounts.session_name,
            duration_seconds=accounts.duration_seconds,
            external_id=external_id(accounts),
        )
        session = assumed_session(fetch, self.region, time_fetcher=self.time_fetcher)
        if self.attach is not None:
            self.attach(session)
        with self._lock:
            return self._sessions.setdefault(key, session)

    def open(self, target: AccountTarget, purpose: str = "scanner") -> boto3.Session:
        """:meth:`session`, with its credentials fetched now: raises :class:`AccountError`
        when the role cannot be assumed, before any call is made with it."""
        key = (target.id, purpose)
        with self._lock:
            failed = self._failed.get(key)
        if failed is not None:
            raise failed
        session = self.session(target, purpose)
        if session is self.base:
            return session
        try:
            credentials = session.get_credentials()
            if credentials is None:
                raise AccountError(str(target.id), "AssumeRole", "no credentials")
            credentials.get_frozen_credentials()
        except AccountError as exc:
            with self._lock:
                self._sessions.pop(key, None)
                self._failed[key] = exc
            raise
        return session
