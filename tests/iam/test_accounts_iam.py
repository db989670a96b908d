"""The policies of several accounts: the hub's own, the member roles', their trust."""

from __future__ import annotations

import json

from hygiene import iam
from hygiene.cli import cli
from hygiene.cli.common import run_cli
from tests.builders import REPO_ROOT


def actions(document: dict) -> set[str]:
    found: set[str] = set()
    for statement in document["Statement"]:
        value = statement["Action"]
        found |= {value} if isinstance(value, str) else set(value)
    return found


def test_member_roles_have_the_registry_calls_only() -> None:
    scanner, cleaner = iam.member_policy_document("scanner"), iam.member_policy_document("cleaner")
    # the registry's and its workloads' reads; nothing of the hub's
    assert not {a.split(":")[0] for a in actions(scanner)} & {"sts", "ses", "organizations", "s3"}
    assert actions(scanner) == actions(iam.policy_document("scanner")) - {
        "sts:GetCallerIdentity", "ses:SendEmail", "ses:SendRawEmail"
    }  # fmt: skip
    assert actions(cleaner) - actions(scanner) == actions(iam.policy_document("cleaner")) - actions(
        iam.policy_document("scanner")
    )


def test_hub_assumes_the_member_roles_and_reads_no_registry() -> None:
    hub = iam.hub_policy_document()
    assert not any(a.startswith("ecr:") for a in actions(hub))
    [assume] = [s for s in hub["Statement"] if s["Sid"] == "AssumeMemberRoles"]
    assert assume["Resource"] == [
        "arn:aws:iam::*:role/registry-hygiene-cleaner",
        "arn:aws:iam::*:role/registry-hygiene-scanner",
    ]
    # nothing the one-account scanner could do is lost between the hub and a member role
    assert actions(iam.policy_document("scanner")) <= actions(hub) | actions(
        iam.member_policy_document("scanner")
    )


def test_hub_may_be_limited_to_some_accounts() -> None:
    hub = iam.hub_policy_document(accounts=["111111111111"], cleaner_role=None)
    [assume] = [s for s in hub["Statement"] if s["Sid"] == "AssumeMemberRoles"]
    assert assume["Resource"] == ["arn:aws:iam::111111111111:role/registry-hygiene-scanner"]


def test_hub_parts_bucket_only_under_its_prefix(capsys) -> None:
    argv = ["iam", "policy", "--role", "hub", "--parts", "s3://lsd-hygiene/nightly/parts/"]
    assert run_cli(cli, argv) == 0
    document = json.loads(capsys.readouterr().out)
    statements = {s["Sid"]: s for s in document["Statement"]}
    assert statements["ShardParts"]["Resource"] == "arn:aws:s3:::lsd-hygiene/nightly/parts/*"
    listing = statements["ListShardParts"]
    assert listing["Resource"] == "arn:aws:s3:::lsd-hygiene"
    assert listing["Condition"] == {
        "StringLike": {"s3:prefix": ["nightly/parts", "nightly/parts/*"]}
    }
    assert run_cli(cli, ["iam", "policy", "--role", "scanner", "--parts", "s3://b/p"]) == 2


def test_trust_policy_names_the_hub_and_the_external_id(capsys) -> None:
    hub = "arn:aws:iam::851296927411:role/registry-hygiene"
    assert run_cli(cli, ["iam", "trust-policy", "--hub", hub, "--external-id", "lsd-1"]) == 0
    [statement] = json.loads(capsys.readouterr().out)["Statement"]
    assert statement["Principal"] == {"AWS": hub}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "lsd-1"}}
    assert run_cli(cli, ["iam", "trust-policy", "--hub", "851296927411"]) == 2


def test_committed_member_roles_template_is_the_generated_one(capsys) -> None:
    committed = (REPO_ROOT / "cron" / "iam" / "member-roles.cfn.json").read_text()
    assert run_cli(cli, ["iam", "member-roles"]) == 0
    assert capsys.readouterr().out == committed
    template = json.loads(committed)
    scanner = template["Resources"]["ScannerRole"]["Properties"]
    cleaner = template["Resources"]["CleanerRole"]["Properties"]
    assert scanner["RoleName"] == "registry-hygiene-scanner"
    trust = scanner["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"AWS": {"Ref": "HubPrincipalArn"}}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}
    [clean] = [
        s for s in cleaner["Policies"][0]["PolicyDocument"]["Statement"]
        if s["Sid"] == "CleanRegistry"
    ]  # fmt: skip
    # the cleaner of an account may change that account's repositories only
    assert clean["Resource"] == {"Fn::Sub": "arn:aws:ecr:*:${AWS::AccountId}:repository/*"}
    assert actions(scanner["Policies"][0]["PolicyDocument"]) == actions(
        iam.member_policy_document("scanner")
    )
