"""``hygiene iam``: the IAM policies generated from the declared permissions."""

from __future__ import annotations

import json
import re

import click

from hygiene import iam
from hygiene.cli.common import REGION

ROLE_HELP = (
    "scanner: read-only (scan, report, notify); cleaner: also the apply writes (both for "
    "one account read with the tool's own credentials). With several accounts "
    "(docs/accounts.md): hub, the tool's own role; member-scanner and member-cleaner, the "
    "roles it assumes in each account. discovery: the in-use reads a role of "
    "in_use.assume_roles allows (docs/in-use.md)."
)


@click.group("iam")
def iam_group() -> None:
    """IAM permissions the tool needs (generated from what each component declares)."""


@iam_group.command("policy")
@click.option("--role", type=click.Choice(list(iam.ROLES)), required=True, help=ROLE_HELP)
@click.option("--account", help="Limit writes to this account's repositories (12 digits).")
@click.option("--region", type=REGION, help="Limit writes to this region's repositories.")
@click.option(
    "--parts",
    metavar="s3://BUCKET/PREFIX",
    help="hub: allow reading and writing the parts of sharded scans there.",
)
def policy(role: iam.Role, account: str | None, region: str | None, parts: str | None) -> None:
    """Print the IAM policy JSON for ROLE (the files in cron/iam/ are this output)."""
    if account is not None and not (account.isdigit() and len(account) == 12):
        raise click.BadParameter("an AWS account id has 12 digits", param_hint="--account")
    if parts is not None and (role != "hub" or not re.fullmatch(r"s3://[^/]+(/.*)?", parts)):
        raise click.BadParameter("only for --role hub, as s3://BUCKET/PREFIX", param_hint="--parts")
    click.echo(iam.policy_json(role, account, region, parts=parts), nl=False)


@iam_group.command("trust-policy")
@click.option(
    "--hub",
    required=True,
    metavar="ARN",
    help="The role (or user) the tool runs as, e.g. its IRSA role.",
)
@click.option("--external-id", help="The external id (registry.accounts.external_id).")
def trust_policy(hub: str, external_id: str | None) -> None:
    """Print the trust policy of the member roles: the hub may assume them."""
    if not re.fullmatch(r"arn:aws[\w-]*:iam::\d{12}:(role|user)/.+", hub):
        raise click.BadParameter("an IAM role or user ARN", param_hint="--hub")
    document = iam.trust_policy_document(hub, external_id)
    click.echo(json.dumps(document, indent=2))


@iam_group.command("member-roles")
def member_roles() -> None:
    """Print a CloudFormation template of both member roles (deploy it with a StackSet)."""
    click.echo(json.dumps(iam.member_roles_template(), indent=2))


@iam_group.command("permissions")
def permissions() -> None:
    """List every declared permission: component, IAM action, read/write, why."""
    for p in sorted(iam.declarations(), key=lambda p: (p.access, p.component, p.action)):
        click.echo(f"{p.access.value:5}  {p.component:30} {p.action:40} {p.reason}".rstrip())


def register(group: click.Group) -> None:
    group.add_command(iam_group)
