"""``hygiene proposals | approve | reject | apply | audit``: the admin's commands.

A thin shell: options are parsed here, the work is done by :mod:`hygiene.store`,
:mod:`hygiene.authz` and :mod:`hygiene.apply`. See docs/approvals.md.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

from hygiene.cli.common import TEXT, load, rules_dir_option
from hygiene.cli.expect import Expectation, expect_option
from hygiene.cli.tables import csv_text, print_proposals, print_table, warn_altered, when
from hygiene.errors import ConfigError, ExitCode, HygieneError
from hygiene.model import ProposalState

if TYPE_CHECKING:
    from hygiene.apply import ClientFactory
    from hygiene.authz import Identity, PinnedTrust
    from hygiene.config import Config
    from hygiene.store import Store

STATES = [s.value for s in ProposalState]


def ecr_clients(config: Config) -> ClientFactory:
    """``clients(account, region)`` → a boto3 ECR client, built exactly like the scan's
    (same credential chain, retry mode and endpoint; see :func:`hygiene.scan.open_registry`).
    boto3 reads ``AWS_ENDPOINT_URL(_ECR)`` itself."""
    from hygiene.scan import open_registry

    return open_registry(config).client


def sts_client_for(config: Config) -> Any:
    """The STS client that says who the caller is: the configured profile's credentials,
    the partition's real endpoint (:func:`hygiene.authz.identity.sts_client`)."""
    from hygiene.authz.identity import sts_client
    from hygiene.collect.session import make_session

    region = config.policy.registry.regions[0]
    return sts_client(make_session(config.policy.registry.profile, region), region)


def workload_check(config: Config) -> Any:
    """Apply's re-check of the workloads (docs/in-use.md), with the scan's credentials."""
    from hygiene.scan import open_registry
    from hygiene.wiring import in_use_check

    return in_use_check(open_registry(config), config)


# Tests replace these hooks (the STS one with a client of the moto server).
CLIENTS: Callable[[Config], ClientFactory] = ecr_clients
STS: Callable[[Config], Any] = sts_client_for
IN_USE: Callable[[Config], Any] = workload_check


def caller(config: Config, clients: Callable[[], ClientFactory]) -> Identity:
    """Who runs this command: STS's answer, or ``os:<user>`` when ``$HYGIENE_DEMO_TOKEN``
    is proven by the registry endpoint this command's ECR client uses."""
    from hygiene.authz import configured_accounts, resolve_identity

    def endpoint() -> str | None:  # asked only when $HYGIENE_DEMO_TOKEN is set
        account = next(iter(configured_accounts(config)), "")
        client = clients()(account, config.policy.registry.regions[0])
        return str(client.meta.endpoint_url)

    return resolve_identity(sts=lambda: STS(config), endpoint_url=endpoint)


def _note_differences(config: Config, pinned: PinnedTrust) -> None:
    from hygiene.authz import config_differs

    differences = config_differs(config, pinned)
    if differences:
        click.echo(
            "note: your rules differ from the deployed configuration ("
            + "; ".join(differences)
            + f"); the deployed one decides ({pinned.describe()})",
            err=True,
        )


def store_option(func: Any) -> Any:
    return click.option(
        "--store",
        "store_url",
        envvar="HYGIENE_STORE_URL",
        default=None,
        metavar="URL",
        help="Store database URL (default: store.url in default.yaml; env HYGIENE_STORE_URL).",
    )(func)


def _open(rules_dir: Path, store_url: str | None) -> tuple[Config, Store]:
    from hygiene.store import Store

    config = load(rules_dir)
    return config, Store.from_config(config, store_url)


@click.command("proposals")
@rules_dir_option
@store_option
@click.option("--state", type=click.Choice(STATES), multiple=True, help="Filter by state (repeat).")
@click.option("--namespace", help="Filter by namespace ('-' for repositories outside one).")
@click.option("--account", help="Filter by account id (default: every account).")
@click.option("--rule", help="Filter by rule code or prefix (IM002, IM).")
@click.option("--id", "ids", multiple=True, help="Only this proposal id (repeat).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
def proposals_cmd(
    rules_dir: Path,
    store_url: str | None,
    state: tuple[str, ...],
    namespace: str | None,
    account: str | None,
    rule: str | None,
    ids: tuple[str, ...],
    fmt: str,
) -> None:
    """List proposals (default: every state) with their ids, safety and grace date.

    Use --format json to see the evidence (digests, tags, push/pull times, bytes).
    """
    _, store = _open(rules_dir, store_url)
    found = store.proposals(
        state=list(state) or None,
        namespace=namespace,
        rule=rule,
        ids=list(ids) or None,
        account=account,
    )
    print_proposals(found, fmt, store.url)


@click.command("approve")
@rules_dir_option
@store_option
@click.argument("ids", nargs=-1)
@click.option(
    "--namespace", help="Approve every open proposal of this namespace (in every account)."
)
@click.option("--rule", help="With --namespace: only proposals from this rule code/prefix.")
@click.option("--account", help="With --namespace: only proposals in this account.")
@expect_option
def approve_cmd(
    rules_dir: Path,
    store_url: str | None,
    ids: tuple[str, ...],
    namespace: str | None,
    rule: str | None,
    account: str | None,
    expect: Expectation | None,
) -> None:
    """Approve proposals by id, or all proposed ones of a namespace (admins only).

    Unsafe fixes still wait for their grace date; `hygiene apply` carries them out (the
    nightly job's apply, with apply.apply_approved, only past the grace date, safe fixes
    too). With --namespace, give --expect N:DIGEST as the nightly report prints it (N
    the number of proposals you reviewed, DIGEST a hash of their ids), or --expect N: if
    the selection has another number, or (with DIGEST) other proposals, nothing is
    approved (exit 2).
    """
    from hygiene.authz import deployed, require_admin
    from hygiene.cli.decisions import admin_gettext, approved_line, select_ids

    config, store = _open(rules_dir, store_url)
    pinned = deployed(store.pinned_trust(), store.url)
    approver = require_admin(caller(config, _lazy(config)), pinned, "approve")
    _note_differences(config, pinned)
    states = [ProposalState.PROPOSED.value]
    chosen = select_ids(store, ids, namespace, rule, states, account, expect)
    gettext = admin_gettext(config)
    for stored in store.approve(chosen, approver):
        click.echo(approved_line(stored, config, datetime.now(UTC), gettext))
        warn_altered(stored)


@click.command("reject")
@rules_dir_option
@store_option
@click.argument("ids", nargs=-1)
@click.option(
    "--reason",
    type=TEXT,
    required=True,
    help="Why (shown to the owners and kept in the audit).",
)
@click.option("--namespace", help="Reject every open proposal of this namespace (admins only).")
@click.option("--rule", help="With --namespace: only proposals from this rule code/prefix.")
@expect_option
def reject_cmd(
    rules_dir: Path,
    store_url: str | None,
    ids: tuple[str, ...],
    reason: str,
    namespace: str | None,
    rule: str | None,
    expect: Expectation | None,
) -> None:
    """Reject (object to) proposals; they are never applied.

    Admins may reject anything. A project's owners and members may reject proposals in
    their own namespace by id, signed in through IAM Identity Center (their session name,
    their e-mail): that is how an owner objects to a deletion announced in the weekly
    report. Rejecting a whole namespace or rule at once (--namespace, --rule) is for
    admins, with the same verification as approving.
    """
    from hygiene.authz import deployed, require_admin, require_objector
    from hygiene.cli.decisions import select_ids

    config, store = _open(rules_dir, store_url)
    pinned = deployed(store.pinned_trust(), store.url)
    identity = caller(config, _lazy(config))
    if namespace or rule:
        approver = require_admin(identity, pinned, "reject")
        open_states = [ProposalState.PROPOSED.value, ProposalState.APPROVED.value]
        chosen = select_ids(store, ids, namespace, rule, open_states, expect=expect)
    else:
        if expect is not None:
            raise ConfigError("--expect goes with --namespace (ids are rejected all or nothing)")
        if not ids:
            raise ConfigError("give proposal ids, or --namespace NS [--rule CODE] (admins)")
        chosen = list(ids)
        targets = store.proposals(ids=chosen)
        approver = require_objector(identity, pinned, {t.proposal.namespace for t in targets})
    _note_differences(config, pinned)
    for stored in store.reject(chosen, approver, reason):
        click.echo(f"rejected {stored.id} ({stored.proposal.summary})")
        warn_altered(stored)


@click.command("apply")
@rules_dir_option
@store_option
@click.option(
    "--dry-run", is_flag=True, help="Re-read and report what would change; write nothing."
)
@click.option("--id", "ids", multiple=True, help="Only these proposal ids (repeat).")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def apply_cmd(
    rules_dir: Path, store_url: str | None, dry_run: bool, ids: tuple[str, ...], fmt: str
) -> int:
    """Carry out approved proposals past their grace date (and safe ones if auto_safe).

    Every target is re-read first, and the workloads are asked again what they run;
    changed or in-use ones are skipped. Every approval is verified
    against the deployed configuration, which must be yours too. Admins only (anyone may
    --dry-run). Exit 4 if you are not an admin or your rules are not the deployed ones,
    5 if another run holds the lock, 6 if the registry is unreachable, 7 if an action
    failed or a read the re-check needs was refused (AccessDenied: nothing of that
    proposal was deleted); a failed run alerts the admins, and so does a run that keeps
    a proposal for a retry the third time in a row.
    """
    from hygiene.apply import apply
    from hygiene.authz import deployed, require_admin
    from hygiene.cli.apply_alerts import alert_failed_apply, alert_kept

    config, store = _open(rules_dir, store_url)
    clients = CLIENTS(config)
    actor = caller(config, lambda: clients)
    if not dry_run:
        require_admin(actor, deployed(store.pinned_trust(), store.url), "apply")
    earlier = {r.id for r in store.runs(last=1, kind="apply")}
    try:
        result = apply(
            store,
            clients,
            config,
            dry_run=dry_run,
            actor=actor,
            ids=list(ids) or None,
            demo_id=actor.demo_id,
            in_use=IN_USE(config),
        )
    except HygieneError as exc:
        if not dry_run:
            alert_failed_apply(config, store, earlier, exc.message)
        raise
    if result.failed or result.refused:
        why = ", ".join(
            part
            for part in (
                f"{len(result.failed)} action(s) failed" if result.failed else "",
                f"{len(result.refused)} proposal(s) kept: a read was refused "
                "(AccessDenied, Forbidden, Unauthorized)"
                if result.refused
                else "",
            )
            if part
        )
        alert_failed_apply(config, store, earlier, why)
    elif result.kept and result.run_id is not None:
        alert_kept(config, result.run_id, result.kept)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        from hygiene.cli.apply_output import apply_lines, stored_by_id

        lines = apply_lines(result, stored_by_id(store, result), now=datetime.now(UTC))
        click.echo("\n".join(lines))
    return int(ExitCode.APPLY_FAILED) if result.failed or result.refused else 0


def _lazy(config: Config) -> Callable[[], ClientFactory]:
    """The ECR clients, built only if needed (the demo check reads their endpoint)."""
    return functools.cache(lambda: CLIENTS(config))


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    value = value.strip()
    units = {"d": "days", "h": "hours", "m": "minutes", "w": "weeks"}
    if value[:-1].isdigit() and value[-1:] in units:
        return datetime.now(UTC) - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(
            f"--since {value!r}: use an ISO date/time (2026-11-01) or an age (7d, 12h)"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.command("audit")
@rules_dir_option
@store_option
@click.option("--since", help="ISO date/time or age (7d, 12h, 30m, 2w).")
@click.option("--proposal", "proposal_id", help="Only rows of this proposal.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
def audit_cmd(
    rules_dir: Path, store_url: str | None, since: str | None, proposal_id: str | None, fmt: str
) -> None:
    """Show the audit log: every decision and every change made to the registry."""
    _, store = _open(rules_dir, store_url)
    entries = store.audit_log(since=_since(since), proposal_id=proposal_id)
    if fmt == "json":
        click.echo(json.dumps([e.to_json() for e in entries], indent=2))
        return
    rows = [
        {
            "id": e.id,
            "at": when(e.at),
            "actor": e.actor,
            "action": e.action,
            "proposal": e.proposal_id or "",
            "repository": e.repository or "",
            "digest": (e.digest or "")[:19],
            "outcome": e.outcome,
            "detail": e.detail,
        }
        for e in entries
    ]
    if fmt == "csv":
        click.echo(csv_text(rows, list(rows[0]) if rows else ["id"]), nl=False)
        return
    columns = [(k, k) for k in ("id", "at", "actor", "action", "proposal", "repository")]
    columns += [("digest", "digest"), ("outcome", "outcome"), ("detail", "detail")]
    print_table(rows, columns, f"{len(rows)} audit row(s)", optional=["detail", "digest", "actor"])


@click.command("runs")
@rules_dir_option
@store_option
@click.option("--last", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.option("--kind", help="Only runs of this kind (nightly, weekly, scan, apply).")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def runs_cmd(rules_dir: Path, store_url: str | None, last: int, kind: str | None, fmt: str) -> None:
    """Show the run history: when each run started, how long it took, its status
    (running, ok, degraded, incomplete, failed, abandoned) and counts.

    Times are in schedule.timezone (JSON: ISO 8601 UTC)."""
    config, store = _open(rules_dir, store_url)
    zone = ZoneInfo(config.policy.schedule.timezone)
    history = store.runs(last=last, kind=kind)
    if fmt == "json":
        click.echo(json.dumps([r.to_json() for r in history], indent=2))
        return
    rows = [
        {
            "id": r.id,
            "kind": r.kind,
            "started": when(r.started_at, zone),
            "seconds": "-" if r.duration_seconds is None else f"{r.duration_seconds:.0f}",
            "status": r.status,
            "errors": len(r.errors),
            "counts": " ".join(f"{k}={v}" for k, v in sorted(r.counts.items())),
        }
        for r in history
    ]
    columns = [(k, k) for k in ("id", "kind", "started", "seconds", "status", "errors", "counts")]
    columns[2] = ("started", f"started ({config.policy.schedule.timezone})")
    print_table(rows, columns, f"last {len(rows)} run(s)", optional=["counts", "errors"])


def register(group: click.Group) -> None:
    for command in (proposals_cmd, approve_cmd, reject_cmd, apply_cmd, audit_cmd, runs_cmd):
        group.add_command(command)


__all__ = ["CLIENTS", "IN_USE", "STS", "HygieneError", "caller", "ecr_clients", "register"]
