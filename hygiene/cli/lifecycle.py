"""``hygiene lifecycle show|validate|preview|diff|propose``: generated ECR lifecycle policies.

Thin shell over :mod:`hygiene.lifecycle`. Commands that need images read an inventory
from ``--from-snapshot FILE`` or, without it, from the live registry through
:func:`live_inventory` (the one place the collector is called from here).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hygiene.cli.common import load, rules_dir_option
from hygiene.errors import LifecycleError

if TYPE_CHECKING:
    from hygiene.config import Config
    from hygiene.inventory import Inventory
    from hygiene.model import Proposal


def live_inventory(config: Config) -> Inventory:
    """Collect the live registry through the scan's code path."""
    from hygiene.scan import collect, open_registry

    return collect(open_registry(config), config, progress=None)


def ecr_client_for(config: Config, region: str) -> Any:
    """An ECR client for ``region`` built the way the scan builds them."""
    from hygiene.scan import open_registry

    return open_registry(config, regions=[region]).clients[region]


def run_ecr_preview(client: Any, repository: str, text: str, *, registry_id: str) -> Any:
    """ECR's own preview of ``text`` on ``repository`` (live; tests replace this)."""
    from hygiene.lifecycle.ecr_preview import run_ecr_preview as run

    return run(client, repository, text, registry_id=registry_id)


def load_inventory(config: Config, snapshot: Path | None) -> Inventory:
    from hygiene.inventory import read_snapshot

    return read_snapshot(snapshot) if snapshot is not None else live_inventory(config)


def snapshot_option(func: Any) -> Any:
    return click.option(
        "--from-snapshot",
        "snapshot",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        default=None,
        help="Read the inventory from a parquet snapshot instead of the registry.",
    )(func)


def scope_options(func: Any) -> Any:
    func = click.option(
        "--namespace", "-n", default=None, help="Every repository of this namespace."
    )(func)
    return click.argument("repository", required=False)(func)


def now_option(func: Any) -> Any:
    return click.option(
        "--now",
        type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
        default=None,
        help="Evaluate as of this UTC time (default: now).",
    )(func)


def _now(value: datetime | None) -> datetime:
    return datetime.now(UTC) if value is None else value.replace(tzinfo=UTC)


def _scoped_repositories(
    inventory: Inventory, repository: str | None, namespace: str | None
) -> Iterator[Any]:
    if repository is None and namespace is None:
        raise click.UsageError("give a REPOSITORY or --namespace NS")
    from hygiene.lifecycle.propose import select_repositories

    rows = select_repositories(inventory, repository=repository, namespace=namespace)
    if rows.empty:
        raise LifecycleError(
            f"no repository matches {repository or 'namespace ' + str(namespace)!r} "
            f"in the inventory ({inventory.run.source})"
        )
    yield from rows.itertuples(index=False)


def _notes(notes: Any) -> None:
    for note in notes:
        click.echo(f"note: {note}", err=True)


@click.group("lifecycle")
def lifecycle_group() -> None:
    """Generate, validate, preview, diff and propose ECR lifecycle policies."""


@lifecycle_group.command("show")
@scope_options
@rules_dir_option
def show(repository: str | None, namespace: str | None, rules_dir: Path) -> None:
    """Print the generated policy for REPOSITORY or --namespace NS (or the default).

    No AWS call is made. Notes about dropped or widened rules go to stderr.
    """
    from hygiene.lifecycle import generate_policy

    config = load(rules_dir)
    generated = generate_policy(config, namespace=namespace, repository=repository)
    _notes(generated.notes)
    click.echo(generated.text)


@lifecycle_group.command("validate")
@click.argument("policy_file", type=click.File("r"))
@rules_dir_option
def validate(policy_file: Any, rules_dir: Path) -> None:
    """Check a policy file ('-' for stdin) against every ECR constraint.

    Prints every problem and exits 2 when there is one; prints OK otherwise.
    """
    from hygiene.lifecycle import validate_policy

    config = load(rules_dir)
    text = policy_file.read()
    try:
        policy = validate_policy(
            text,
            allow_since_image_pulled_expire=config.policy.lifecycle.allow_since_image_pulled_expire,
            source=policy_file.name,
        )
    except LifecycleError as exc:
        for problem in exc.problems:
            click.echo(f"{policy_file.name}: {problem}", err=True)
        count = len(exc.problems)
        raise LifecycleError(
            f"{policy_file.name}: {count} problem{'s' if count > 1 else ''}; "
            "ECR would refuse this policy",
            exc.problems,
        ) from exc
    click.echo(f"OK: {policy_file.name}: {len(policy.rules)} rules, {len(text)} characters")


@lifecycle_group.command("preview")
@scope_options
@click.option(
    "--policy",
    "policy_source",
    default="generated",
    show_default=True,
    help="'generated', 'current' (the repository's policy) or a policy FILE.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option(
    "--compare-ecr",
    is_flag=True,
    help="Also run ECR's own preview (live registry) and report every difference.",
)
@snapshot_option
@now_option
@rules_dir_option
def preview(
    repository: str | None,
    namespace: str | None,
    policy_source: str,
    fmt: str,
    compare_ecr: bool,
    snapshot: Path | None,
    now: datetime | None,
    rules_dir: Path,
) -> None:
    """What a policy would expire/archive in REPOSITORY (or each repo of --namespace).

    Evaluated locally with ECR's semantics (docs/lifecycle.md); nothing is changed.
    """
    import pandas as pd

    from hygiene.lifecycle import check_policy, generate_policy, preview_policy
    from hygiene.lifecycle.ecr_preview import compare_previews
    from hygiene.units import human_bytes

    config = load(rules_dir)
    inventory = load_inventory(config, snapshot)
    when = _now(now)
    given_text = None
    if policy_source not in ("generated", "current"):
        try:
            given_text = Path(policy_source).read_text(encoding="utf-8")
        except OSError as exc:
            raise LifecycleError(f"--policy {policy_source}: cannot read: {exc.strerror}") from exc
    results = []
    for row in _scoped_repositories(inventory, repository, namespace):
        name = str(row.name)
        if policy_source == "generated":
            text = generate_policy(config, repository=name).text
        elif policy_source == "current":
            if pd.isna(row.lifecycle_policy):
                click.echo(f"{name}: no current lifecycle policy", err=True)
                continue
            text = str(row.lifecycle_policy)
        else:
            text = str(given_text)
        if policy_source != "generated":
            for problem in check_policy(text, allow_since_image_pulled_expire=True):
                click.echo(f"note: {name}: ECR would refuse this policy: {problem}", err=True)
        images = inventory.images
        mine = images[
            (images["repository"].astype(str) == name)
            & (images["region"].astype(str) == str(row.region))
        ]
        result = preview_policy(
            text,
            mine,
            now=when,
            repository=name,
            never_pulled=config.policy.lifecycle.preview_never_pulled,
        )
        results.append(result)
        _notes(f"{name}: {n}" for n in result.notes)
        if compare_ecr:
            client = ecr_client_for(config, str(row.region))
            remote = run_ecr_preview(client, name, text, registry_id=str(row.account))
            differences = compare_previews(result, remote)
            for line in differences:
                click.echo(f"differs: {name}: {line}", err=True)
            if not differences:
                click.echo(f"{name}: ECR's preview agrees ({len(remote)} images)", err=True)
    if fmt == "json":
        click.echo(json.dumps([r.to_json() for r in results], indent=2))
        return
    for result in results:
        click.echo(
            f"{result.repository}: expire {result.images} images, {human_bytes(result.bytes)}"
            + (
                f"; archive {result.transitioned_images} images, "
                f"{human_bytes(result.transitioned_bytes)}"
                if result.transitioned_images
                else ""
            )
        )
        for action in result.actions.itertuples(index=False):
            tags = ",".join(action.tags) or "<untagged>"
            via = f" (with {str(action.via)[:19]})" if not pd.isna(action.via) else ""
            click.echo(
                f"  {action.action:<10} rule {action.rule_priority:<4} {action.digest}  "
                f"{tags}  pushed {action.pushed_at:%Y-%m-%d}{via}"
            )


@lifecycle_group.command("diff")
@scope_options
@snapshot_option
@rules_dir_option
def diff(
    repository: str | None, namespace: str | None, snapshot: Path | None, rules_dir: Path
) -> None:
    """Unified diff of each repository's current policy against the generated one.

    Exit code 0 either way; the diff is empty when the policies are equivalent.
    """
    import pandas as pd

    from hygiene.lifecycle import diff_policies, generate_policy

    config = load(rules_dir)
    inventory = load_inventory(config, snapshot)
    for row in _scoped_repositories(inventory, repository, namespace):
        name = str(row.name)
        current = None if pd.isna(row.lifecycle_policy) else str(row.lifecycle_policy)
        generated = generate_policy(config, repository=name)
        result = diff_policies(current, generated.text, repository=name)
        if result.changed:
            click.echo(result.text, nl=False)
        else:
            click.echo(f"{name}: current policy is equivalent to the generated one", err=True)


@lifecycle_group.command("propose")
@click.argument("repository", required=False)
@click.option("--namespace", "-n", default=None, help="Every repository of this namespace.")
@click.option(
    "--replace-existing/--only-missing",
    default=None,
    help="Also propose replacing a different existing policy "
    "(default: lifecycle.replace_existing).",
)
@click.option(
    "--save",
    is_flag=True,
    help="Also record the proposals in the store, for `hygiene approve` (the nightly run "
    "does this by itself for repositories without a policy).",
)
@click.option(
    "--store",
    "store_url",
    envvar="HYGIENE_STORE_URL",
    default=None,
    metavar="URL",
    help="Store URL for --save (default: store.url; env HYGIENE_STORE_URL).",
)
@snapshot_option
@now_option
@rules_dir_option
def propose_cmd(
    repository: str | None,
    namespace: str | None,
    replace_existing: bool | None,
    save: bool,
    store_url: str | None,
    snapshot: Path | None,
    now: datetime | None,
    rules_dir: Path,
) -> None:
    """Print put-lifecycle-policy proposals (unsafe fixes) as JSON; --save stores them.

    Without REPOSITORY or --namespace every repository is considered. Repositories whose
    current policy is equivalent, that were not read completely, or that opt out get none.
    Saved proposals go through the usual approval, grace period and live re-check.
    With --save the registry is read under the registry lock (exit 5 while a nightly,
    weekly or apply run holds it), so a plan is never saved over another run's changes.
    """
    config = load(rules_dir)
    if not save:
        _propose(config, repository, namespace, replace_existing, snapshot, now)
        return
    from hygiene.store import Store

    with Store.from_config(config, store_url) as store, store.lock():
        proposals = _propose(config, repository, namespace, replace_existing, snapshot, now)
        # scoped: proposals of other repositories are not expired by this partial plan
        store.upsert_proposals(proposals, _now(now), complete=False)
    click.echo(f"saved {len(proposals)} proposal(s) to {store.url}", err=True)


def _propose(
    config: Config,
    repository: str | None,
    namespace: str | None,
    replace_existing: bool | None,
    snapshot: Path | None,
    now: datetime | None,
) -> list[Proposal]:
    from hygiene.lifecycle import plan_lifecycle

    inventory = load_inventory(config, snapshot)
    plan = plan_lifecycle(
        inventory,
        config,
        _now(now),
        repository=repository,
        namespace=namespace,
        replace_existing=replace_existing,
    )
    for line in plan.skipped:
        click.echo(f"skipped: {line}", err=True)
    for name in plan.kept_existing:
        click.echo(f"kept: {name}: has its own policy (use --replace-existing)", err=True)
    json.dump([p.to_json() for p in plan.proposals], sys.stdout, indent=2)
    click.echo()
    return list(plan.proposals)


def register(group: click.Group) -> None:
    group.add_command(lifecycle_group)
