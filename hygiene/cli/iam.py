"""``hygiene iam``: the IAM policies generated from the declared permissions."""

from __future__ import annotations

import click

from hygiene import iam


@click.group("iam")
def iam_group() -> None:
    """IAM permissions the tool needs (generated from what each component declares)."""


@iam_group.command("policy")
@click.option(
    "--role",
    type=click.Choice(list(iam.ROLES)),
    required=True,
    help="scanner: read-only (scan, report, notify); cleaner: also the apply writes; "
    "discovery: the in-use reads a role in another account allows (in_use.assume_roles).",
)
@click.option("--account", help="Limit writes to this account's repositories (12 digits).")
@click.option("--region", help="Limit writes to this region's repositories.")
def policy(role: iam.Role, account: str | None, region: str | None) -> None:
    """Print the IAM policy JSON for ROLE (the files in cron/iam/ are this output)."""
    if account is not None and not (account.isdigit() and len(account) == 12):
        raise click.BadParameter("an AWS account id has 12 digits", param_hint="--account")
    click.echo(iam.policy_json(role, account, region), nl=False)


@iam_group.command("permissions")
def permissions() -> None:
    """List every declared permission: component, IAM action, read/write, why."""
    for p in sorted(iam.declarations(), key=lambda p: (p.access, p.component, p.action)):
        click.echo(f"{p.access.value:5}  {p.component:30} {p.action:40} {p.reason}".rstrip())


def register(group: click.Group) -> None:
    group.add_command(iam_group)
