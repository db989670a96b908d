"""The scan pipeline: open the registry, collect, evaluate, plan — and its JSON contract.

``open_registry`` is the only place that builds boto3 clients for a scan, so the CLI,
the demo, the scheduler and the tests all go through the same code path; the embedded
registry differs only by its endpoint URL and dummy credentials.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import boto3

from hygiene.authz.identity import is_loopback
from hygiene.background import InBackground, then_wait
from hygiene.collect.accounts import AccountList, AccountSessions, resolve_accounts
from hygiene.collect.ecr import ScanTarget, collect_inventory, fixed_client
from hygiene.collect.session import (
    ApiCallCounter,
    RegionClients,
    check_credentials,
    ecr_client,
    make_session,
)
from hygiene.collect.workloads import Discovery
from hygiene.collect.workloads import discover as discover_in_use
from hygiene.collect.workloads.discover import AwsAccount, PreparedClients, prepare_clients
from hygiene.config import CollectSettings, Config
from hygiene.errors import ConfigError, refused_code
from hygiene.gcpause import paused_gc
from hygiene.inventory import Inventory, ScanError, build_in_use, write_snapshot
from hygiene.messages import message_json
from hygiene.model import Finding, KeptImage, Proposal
from hygiene.scanthreads import progress_reporter

if TYPE_CHECKING:
    from hygiene.collect.shards import MergedRun, Shard

log = logging.getLogger(__name__)


@dataclass
class RegistryHandle:
    """The registry's accounts, a session per account and role, and the counter that
    sees every call their clients make.

    Without ``registry.accounts`` there is one target, the tool's own credentials'
    account, and ``clients`` holds its ECR client per region (as before several accounts
    were supported). With it, :meth:`scan_client` reads through each account's scanner
    role and :meth:`client` (apply's) writes through its cleaner role.

    The scanner's clients of each account and region are a
    :class:`~hygiene.collect.session.RegionClients`: the one every worker shares, and
    fresh ones (same role, same adaptive send rate) for repositories read again.
    """

    session: boto3.Session
    clients: dict[str, Any]
    counter: ApiCallCounter
    endpoint_url: str | None = None
    source: str = "ecr"
    config: Config | None = None
    accounts: AccountList | None = None
    sessions: AccountSessions | None = None
    scans: int = 0  # scans made with this handle
    pools: dict[tuple[str | None, str], RegionClients] = field(default_factory=dict)
    # held while a client is built from ``session`` outside the calling thread (a boto3
    # session must not build clients from several threads at once): the read passes'
    # fresh clients (RegionClients) and the in-use sources' clients made during the reads
    session_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _clients: dict[tuple[str, str, str], Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def close(self) -> None:
        """Close every AWS client made from the handle's sessions, the in-use sources' and
        assumed roles' included (``counter.attach`` saw them all): a daemon, each run's;
        and stop counting calls on its sessions (a session reused by the next run would
        keep this run's counter)."""
        self.counter.clients.close()
        self.counter.detach()

    @property
    def settings(self) -> CollectSettings:
        return self.config.policy.collect if self.config else CollectSettings()

    @property
    def several(self) -> bool:
        """Several accounts, each through its own roles (``registry.accounts``)."""
        return self.sessions is not None and self.accounts is not None

    def _account_client(self, account: str, region: str, purpose: str) -> Any:
        assert self.accounts is not None and self.sessions is not None
        target = self.accounts.target(account)
        if target is None:
            from hygiene.errors import ApplyError

            listed = ", ".join(self.accounts.ids) or "none"
            raise ApplyError(
                f"account {account} is not one of the registry accounts ({listed}): "
                "nothing is read or changed there"
            )
        key = (account, region, purpose)
        with self._lock:
            if key in self._clients:
                return self._clients[key]
        session = self.sessions.open(target, purpose)
        if purpose == "scanner":
            pool = RegionClients(session, region, self.settings, self.endpoint_url)
            with self._lock:
                self.pools.setdefault((account, region), pool)
                return self._clients.setdefault(key, pool.shared)
        client = ecr_client(session, region, self.settings, self.endpoint_url)
        with self._lock:
            return self._clients.setdefault(key, client)

    def scan_client(self, account: str | None, region: str) -> Any:
        """The scanner's client for ``account`` in ``region``."""
        if not self.several or account is None:
            return self.client(account or "", region)
        return self._account_client(account, region, "scanner")

    def _discovery_regions(self, config: Config) -> list[str]:
        return list(self.clients) or list(config.policy.registry.regions)

    def _discovery_endpoint(self) -> str | None:
        # the embedded registry serves every service; elsewhere the ECR endpoint is not
        # ECS's or Lambda's (boto3 reads AWS_ENDPOINT_URL_ECS … itself)
        return self.endpoint_url if is_loopback(self.endpoint_url) else None

    def prepare_discovery(self, config: Config) -> PreparedClients | None:
        """The in-use sources' clients of the tool's own account, made now (a scan makes
        them while the registry is read; :meth:`discover` asks the sources after the
        reads). None with ``registry.accounts`` (each account's are made by
        :meth:`discover`) or when one cannot be made (:meth:`discover` makes them
        again and fails as it would have)."""
        if self.several:
            return None
        try:
            with self.session_lock:
                return prepare_clients(
                    self.session,
                    config.policy.in_use,
                    config.policy.collect,
                    regions=self._discovery_regions(config),
                    endpoint_url=self._discovery_endpoint(),
                )
        except Exception:  # discover() makes them again, and fails as it would have
            log.debug("in-use clients not made ahead", exc_info=True)
            return None

    def discover(
        self,
        config: Config,
        *,
        running_only: bool = False,
        prepared: PreparedClients | None = None,
    ) -> Discovery:
        """Read the in-use sources (docs/in-use.md): the workloads of the tool's own
        account, or with ``registry.accounts`` of every registry account through its
        scanner role (in its regions), plus the roles of ``in_use.assume_roles``;
        every call is counted. ``prepared``: clients :meth:`prepare_discovery` made."""
        accounts: list[AwsAccount] | None = None
        if self.several:
            from hygiene.collect.accounts import AccountError

            assert self.accounts is not None and self.sessions is not None
            accounts = []
            for target in self.accounts.targets:
                label = str(target.id)
                try:
                    session = self.sessions.open(target, "scanner")
                except AccountError as exc:
                    accounts.append(
                        AwsAccount(label, None, str(exc), target.regions, refused_code(exc))
                    )
                    continue
                accounts.append(AwsAccount(label, session, "", target.regions))
        return discover_in_use(
            self.session,
            config.policy.in_use,
            config.policy.collect,
            regions=self._discovery_regions(config),
            in_use_file=config.policy.protections.in_use_images_file,
            endpoint_url=self._discovery_endpoint(),
            attach=self.counter.attach,
            running_only=running_only,
            accounts=accounts,
            prepared=prepared,
        )

    def client(self, account: str, region: str) -> Any:
        """``clients(account, region)`` for apply: the cleaner role's client in that
        account (raises :class:`ApplyError` for an account the registry does not list);
        with one account, the scan's client for that region, or a new one from the same
        session (same credentials, endpoint and retry mode)."""
        if self.several:
            return self._account_client(account, region, "cleaner")
        if region not in self.clients:
            self.clients[region] = ecr_client(
                self.session, region, self.settings, self.endpoint_url
            )
        return self.clients[region]

    def targets(self) -> list[ScanTarget]:
        """What a scan reads: each account in each of its regions."""
        if not self.several:
            return [
                ScanTarget(None, r, fixed_client(c), self._fresh(None, r))
                for r, c in self.clients.items()
            ]
        assert self.accounts is not None
        return [
            ScanTarget(t.id, region, self._opener(t.id, region), self._fresh(t.id, region))
            for t in self.accounts.targets
            for region in t.regions
        ]

    def _opener(self, account: str | None, region: str) -> Callable[[], Any]:
        return lambda: self.scan_client(account, region)

    def _fresh(self, account: str | None, region: str) -> Callable[[], Any]:
        """Makes a new scanner client of ``account`` in ``region`` (see
        :class:`RegionClients`); the shared one when that region's were not made here."""

        def fresh() -> Any:
            pool = self.pools.get((account, region))
            return pool.fresh() if pool is not None else self.scan_client(account, region)

        return fresh


@dataclass(frozen=True)
class RegistryAccess:
    """How to reach the registry: command-line values, or the embedded registry's."""

    profile: str | None = None
    regions: tuple[str, ...] = ()
    endpoint_url: str | None = None
    session: boto3.Session | None = None
    source: str = "ecr"
    accounts: tuple[str, ...] = ()

    def open(self, config: Config) -> RegistryHandle:
        return open_registry(
            config,
            profile=self.profile,
            regions=self.regions,
            endpoint_url=self.endpoint_url,
            session=self.session,
            source=self.source,
            accounts=self.accounts,
        )


def open_registry(
    config: Config,
    *,
    profile: str | None = None,
    regions: Sequence[str] = (),
    endpoint_url: str | None = None,
    session: boto3.Session | None = None,
    source: str = "ecr",
    accounts: Sequence[str] = (),
) -> RegistryHandle:
    """Build the clients of the registry from the standard credential chain.

    Command-line values win over ``registry`` in the config; ``accounts`` limits a
    several-account registry to these ids. Missing credentials fail here, before any
    call, with a message that says what to run. With ``registry.accounts.organization``
    the accounts are listed here (one ListAccounts per run).
    """
    settings = config.policy.registry
    profile = profile or settings.profile
    chosen_regions = tuple(regions)  # the command line's: they replace every account's
    regions = list(regions) or list(settings.regions)
    endpoint_url = endpoint_url or settings.endpoint_url
    if session is None:
        session = make_session(profile, regions[0])
        check_credentials(session, profile)
    counter = ApiCallCounter()
    counter.attach(session)
    if settings.accounts is None:
        if accounts:
            raise ConfigError(
                "--account: registry.accounts is not configured (one account, read with the "
                "tool's own credentials)"
            )
        lock = threading.Lock()
        pools: dict[tuple[str | None, str], RegionClients] = {
            (None, region): RegionClients(
                session, region, config.policy.collect, endpoint_url, lock=lock
            )
            for region in regions
        }
        clients = {region: pool.shared for (_, region), pool in pools.items()}
        return RegistryHandle(
            session, clients, counter, endpoint_url, source, config, pools=pools, session_lock=lock
        )
    # the embedded registry serves every service; elsewhere boto3 picks STS and
    # Organizations endpoints itself (AWS_ENDPOINT_URL_STS … are honoured)
    aws_endpoint = endpoint_url if is_loopback(endpoint_url) else None
    sessions = AccountSessions(session, settings, endpoint_url=aws_endpoint, attach=counter.attach)
    listed = resolve_accounts(
        settings, regions=chosen_regions, organizations=sessions.organizations
    )
    if accounts:
        unknown = sorted(set(accounts) - set(listed.ids))
        if unknown:
            raise ConfigError(
                f"--account {', '.join(unknown)}: not one of the registry accounts "
                f"({', '.join(listed.ids) or 'none'})"
            )
        listed = AccountList(
            [t for t in listed.targets if t.id in accounts], listed.skipped, listed.organization
        )
    return RegistryHandle(
        session, {}, counter, endpoint_url, source, config, accounts=listed, sessions=sessions
    )


PROPOSAL_CHUNK = 200  # proposals encoded at a time by write_json
# findings encoded at a time by write_json: each chunk's text is one object of ~1.1 MiB
# (5,000 image findings, 5.5 MiB, kept the kernel busy 1-3 s longer at a million
# images: docs/benchmarks.md, "Round 5")
FINDINGS_CHUNK = 1_000


@dataclass
class ScanResult:
    inventory: Inventory
    findings: Sequence[Finding] = field(default_factory=list)
    kept: list[KeptImage] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    mute_warnings: list[Any] = field(default_factory=list)  # Message (expired mutelist entries)
    snapshot: Path | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON contract of ``hygiene scan --format json`` (docs/json-contract.md)."""
        return {
            "run": self.inventory.run.to_json(),
            "inventory": self.inventory.summary(),
            "findings": [f.to_json() for f in self.findings],
            "kept": [k.to_json() for k in self.kept],
            "proposals": [p.to_json() for p in self.proposals],
            "mute_warnings": [message_json(w) for w in self.mute_warnings],
            "snapshot": str(self.snapshot) if self.snapshot else None,
        }

    def write_json(self, stream: IO[bytes]) -> None:
        """:meth:`to_json` written to ``stream`` as indented JSON and a newline, part by
        part (:mod:`hygiene.jsonout`): the document is never whole in memory."""
        from hygiene.jsonout import Chunks, findings_chunks, write_document

        write_document(
            stream,
            [
                ("run", self.inventory.run.to_json()),
                ("inventory", self.inventory.summary()),
                # encoded only (copy=False)
                ("findings", findings_chunks(self.findings, FINDINGS_CHUNK, copy=False)),
                ("kept", Chunks.of(self.kept, KeptImage.to_json)),
                # a delete proposal's evidence lists every image of it: few at a time
                (
                    "proposals",
                    Chunks.of(self.proposals, lambda p: p.to_json(copy=False), size=PROPOSAL_CHUNK),
                ),
                ("mute_warnings", [message_json(w) for w in self.mute_warnings]),
                ("snapshot", str(self.snapshot) if self.snapshot else None),
            ],
        )
        stream.write(b"\n")


def collect(
    handle: RegistryHandle,
    config: Config,
    *,
    now: datetime | None = None,
    progress: bool | None,
    stop: threading.Event | None = None,
    shard: Shard | None = None,
    reading: threading.Event | None = None,
) -> Inventory:
    """Read the registry (every account and region of ``handle``; with ``shard``, that
    shard's repositories only). ``reading`` is set once the first repository's read is
    in (or the reads are over): the work that can wait for it does not compete with the
    first requests."""
    # a handle may serve several scans (nightly + weekly); the first one also counts the
    # calls made when it was opened (ListAccounts)
    before = handle.counter.as_dict() if handle.scans else {}
    handle.scans += 1

    def calls_of_this_scan() -> dict[str, int]:
        after = handle.counter.as_dict()
        return {op: n - before.get(op, 0) for op, n in after.items() if n - before.get(op, 0)}

    skipped = handle.accounts.skipped if handle.accounts is not None else {}
    targets = handle.targets()
    if shard is not None and targets:
        # Throttling is per account and region (docs/ecr-facts.md), and a process reads
        # its targets one after the other: shards that all started with the same one
        # would share its budget. Each starts at its own place in the list instead.
        start = shard.index * len(targets) // shard.count
        targets = targets[start:] + targets[:start]
    # The workloads are asked after the registry's last answer (a workload started while
    # the repositories were read still counts), while the answers become frames: in a
    # thread of its own, since both take a while and one waits on the network.
    # Their clients are made meanwhile, in the same thread, before it asks, once the
    # first repository's read is in: not while the first requests are made.
    asked: list[Future[Discovery]] = []
    prepared: list[Future[PreparedClients | None]] = []
    reading = reading or threading.Event()
    failed = threading.Event()

    def prepare() -> PreparedClients | None:
        reading.wait()
        if failed.is_set() or (stop is not None and stop.is_set()):
            return None
        return handle.prepare_discovery(config)

    def ask_workloads() -> None:
        reading.set()
        if shard is None and not (stop is not None and stop.is_set()):
            asked.append(
                background.submit(lambda: handle.discover(config, prepared=prepared[0].result()))
            )

    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="in-use") as background,
        progress_reporter(progress) as advance,
    ):

        def advance_reads(repository: str, done: int, total: int) -> None:
            reading.set()
            advance(repository, done, total)

        if shard is None:
            prepared.append(background.submit(prepare))
        try:
            inventory = collect_inventory(
                targets,
                config.policy.collect,
                now=now,
                api_calls=calls_of_this_scan,
                progress=advance_reads,
                source=handle.source,
                stop=stop,
                shard=shard,
                skipped_accounts=skipped,
                after_reads=ask_workloads,
            )
        except BaseException:
            failed.set()
            raise
        finally:
            reading.set()  # however the reads ended
        if shard is not None or (stop is not None and stop.is_set()):
            # a shard's part: the merge asks the workloads once for the whole run; a
            # stopped scan is already incomplete (a "stop" error)
            return inventory
        discovery = asked[0].result() if asked else handle.discover(config)
    inventory.run.api_calls = calls_of_this_scan()
    inventory.run.finished_at = datetime.now(UTC)
    add_in_use(inventory, discovery)
    return inventory


def add_in_use(inventory: Inventory, discovery: Discovery) -> None:
    """Record what the workloads run in ``inventory`` (its ``in_use`` frame, the sources'
    states in ``run.in_use``); a source that failed is also a scan error, so the run is
    incomplete (docs/in-use.md). The error names the workloads' account when it is
    another account's, as its registry's errors do; whatever account failed, the rules
    engine keeps every image of the run and apply's re-check deletes nothing while a
    source cannot be read, because any account's workloads may pull from any registry."""
    inventory.in_use = build_in_use(u.to_json() for u in discovery.uses)
    inventory.run.in_use = list(discovery.statuses)
    for status in discovery.failed:
        inventory.run.errors.append(
            ScanError(
                region="",
                repository=None,
                operation=f"in-use {status.name}",
                message=status.detail,
                account=status.account,
            )
        )
    for operation, count in discovery.calls.items():
        inventory.run.api_calls[operation] = inventory.run.api_calls.get(operation, 0) + count


def merge_parts_of(config: Config, *, stop: threading.Event | None = None) -> MergedRun:
    """The inventory of the sharded run ``collect.parts`` names: its parts, merged."""
    from datetime import timedelta

    from hygiene.collect.shards import gather, part_store

    parts = config.policy.collect.parts
    if parts is None:
        raise ConfigError("no parts to merge: give --parts (or collect.parts)")
    store = part_store(parts.location, lambda: parts_client(config))
    return gather(
        store,
        parts.run_id,
        wait=timedelta(seconds=parts.wait_seconds),
        max_age=timedelta(seconds=parts.max_age_seconds),
        poll_seconds=parts.poll_seconds,
        stop=stop,
    )


def parts_client(config: Config) -> Any:
    """The S3 client of the parts bucket, from the tool's own credentials."""
    settings = config.policy.registry
    session = make_session(settings.profile, settings.regions[0])
    check_credentials(session, settings.profile)
    endpoint = (
        settings.endpoint_url
        if settings.endpoint_url and is_loopback(settings.endpoint_url)
        else None
    )
    return session.client("s3", endpoint_url=endpoint)


def evaluate_rules(inventory: Inventory, config: Config, now: datetime) -> Any:
    """The rules engine's :class:`~hygiene.rules.Evaluation` (findings, kept, mutes)."""
    from hygiene.rules import evaluate as evaluate_inventory

    return evaluate_inventory(inventory, config, now)


def plan_all(
    evaluation: Any, inventory: Inventory, config: Config, now: datetime
) -> list[Proposal]:
    """Every proposal of the scan: :func:`hygiene.plan.plan` dispatches each finding to
    the action its rule declares (lifecycle policies included)."""
    from hygiene.plan import plan

    with paused_gc():
        return plan(evaluation, inventory, config, now)


def evaluate(inventory: Inventory, config: Config, now: datetime) -> ScanResult:
    """Pure: inventory → findings, kept images and proposals (nothing is stored)."""
    with paused_gc():
        evaluation = evaluate_rules(inventory, config, now)
        return ScanResult(
            inventory=inventory,
            findings=evaluation.findings,
            kept=list(evaluation.kept),
            proposals=plan_all(evaluation, inventory, config, now),
            mute_warnings=list(evaluation.mute_warnings),
        )


def save_snapshot(inventory: Inventory, directory: Path) -> Path:
    return write_snapshot(inventory, directory / f"{inventory.run.id}.parquet")


def evaluate_and_save(
    inventory: Inventory, config: Config, now: datetime, directory: Path
) -> ScanResult:
    """:func:`evaluate`, while the inventory's snapshot is written to ``directory`` in a
    thread (pyarrow encodes and writes it without the GIL; the rules and the plan only
    read the inventory). The snapshot is written whatever evaluating does: when it
    fails, its error is raised after the snapshot is whole (an error writing the
    snapshot too is logged), so the inventory read can be evaluated again with
    ``--from-snapshot``. When only the snapshot fails, its error is raised."""
    writing = InBackground(save_snapshot, inventory, directory, name="snapshot")
    result, snapshot = then_wait(
        lambda: evaluate(inventory, config, now),
        writing.result,
        failed_too="writing the snapshot failed too",
    )
    result.snapshot = snapshot
    return result
