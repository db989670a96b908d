"""Admin entries and owners, anchored to the configured accounts (issue: who may approve)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hygiene.authz.patterns import CallerArn, check_entry, parse_caller, parse_entry
from hygiene.authz.policy import TrustPolicy
from hygiene.collect.accounts import ASSUMED_ROLE_ARN
from hygiene.errors import ConfigError

LAB = "851296927411"
OTHER = "999999999999"
SSO_ADMIN = "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
SSO_DEV = "AWSReservedSSO_Developer_fedcba9876543210"


def assumed(account: str, role: str, session: str) -> str:
    return f"arn:aws:sts::{account}:assumed-role/{role}/{session}"


def policy(*admins: str, accounts: tuple[str, ...] = (LAB,), **objectors: list[str]) -> TrustPolicy:
    return TrustPolicy(
        accounts=accounts,
        admins=admins,
        objectors={k: tuple(v) for k, v in objectors.items()},
    )


def test_bare_permission_set_matches_only_sso_roles_of_configured_accounts() -> None:
    p = policy("AdministratorAccess")
    assert p.is_admin(assumed(LAB, SSO_ADMIN, "alice@lsd.ufcg.edu.br"))
    # the same permission set in an account that is not ours
    assert not p.is_admin(assumed(OTHER, SSO_ADMIN, "mallory"))
    # a plain role named like the permission set, or like an SSO role without the suffix
    assert not p.is_admin(assumed(LAB, "AdministratorAccess", "mallory"))
    assert not p.is_admin(assumed(LAB, "AWSReservedSSO_AdministratorAccess_notahexsuffix00", "m"))
    assert not p.is_admin(assumed(LAB, "AWSReservedSSO_AdministratorAccess_0123456789ABCDEF", "m"))
    assert not p.is_admin(assumed(LAB, SSO_DEV, "bob"))
    # a permission set whose name merely starts with the entry
    assert not p.is_admin(
        assumed(LAB, "AWSReservedSSO_AdministratorAccessLite_0123456789abcdef", "m")
    )
    assert not p.is_admin(f"arn:aws:iam::{LAB}:user/AdministratorAccess")


def test_arn_patterns_are_anchored_and_star_never_crosses_a_slash() -> None:
    entry = f"arn:aws:sts::{LAB}:assumed-role/AWSReservedSSO_AdministratorAccess_*/*"
    p = policy(entry)
    assert p.is_admin(assumed(LAB, SSO_ADMIN, "alice"))
    assert not p.is_admin(assumed(OTHER, SSO_ADMIN, "alice"))
    # `*` in the role part must not swallow "/session" of another shape
    narrow = policy(f"arn:aws:sts::{LAB}:assumed-role/Admin*")
    assert not narrow.is_admin(assumed(LAB, "Admin", "mallory"))
    assert not narrow.is_admin(assumed(LAB, "AdminX", "mallory"))
    role = policy(f"arn:aws:sts::{LAB}:assumed-role/Admin/*")
    assert role.is_admin(assumed(LAB, "Admin", "alice"))
    assert not role.is_admin(f"arn:aws:sts::{LAB}:assumed-role/Admin/alice/extra")
    assert not role.is_admin(assumed(LAB, "Admins", "alice"))
    # an ARN-shaped identity from another partition or a prefix/suffix trick
    assert not role.is_admin(f"arn:aws-cn:sts::{LAB}:assumed-role/Admin/alice")
    assert not role.is_admin(f"xarn:aws:sts::{LAB}:assumed-role/Admin/alice")
    user = policy(f"arn:aws:iam::{LAB}:user/ops/alice")
    assert user.is_admin(f"arn:aws:iam::{LAB}:user/ops/alice")
    assert not user.is_admin(f"arn:aws:iam::{LAB}:user/ops/alice2")


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("arn:aws:sts::*:assumed-role/Admin/*", "12 literal digits"),
        ("arn:aws:sts::85129692741?:assumed-role/Admin/*", "12 literal digits"),
        (f"arn:aws:sts:us-east-1:{LAB}:assumed-role/Admin/*", "no region"),
        (f"arn:aws:s3::{LAB}:bucket", "only sts and iam"),
        (f"arn:aws:iam::{LAB}:role/Admin", "never an iam role"),
        (f"arn:aws:sts::{LAB}:assumed-role/[Aa]dmin/*", "wildcards"),
        ("os:*", "literal user"),
        ("os:", "literal user"),
        ("Administrator*", "no wildcards"),
        ("a/b", "neither an ARN"),
        (" AdministratorAccess", "spaces"),
    ],
)
def test_malformed_entries_are_refused(entry: str, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("?", r"\?")):
        check_entry(entry)


def test_an_arn_of_an_account_that_is_not_configured_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="not a configured registry account"):
        parse_entry(f"arn:aws:sts::{OTHER}:assumed-role/Admin/*", [LAB])
    with pytest.raises(ConfigError, match=r"admins\[1\]"):
        policy("AdministratorAccess", f"arn:aws:sts::{OTHER}:assumed-role/Admin/*")


def test_without_a_configured_account_arn_entries_match_nobody() -> None:
    p = policy("AdministratorAccess", f"arn:aws:sts::{LAB}:assumed-role/Admin/*", accounts=())
    assert not p.is_admin(assumed(LAB, SSO_ADMIN, "alice"))
    assert not p.is_admin(assumed(LAB, "Admin", "alice"))


def test_os_entries_are_literal() -> None:
    p = policy("os:root")
    assert p.is_admin("os:root")
    assert not p.is_admin("os:rootkit") and not p.is_admin("os:roo")


def test_owners_are_recognised_from_sso_sessions_in_configured_accounts_only() -> None:
    p = policy(suporte=["joao.silva@lsd.ufcg.edu.br"], ml=["ana.costa@lsd.ufcg.edu.br"])
    joao = "Joao.Silva@lsd.ufcg.edu.br"  # Identity Center user names are case-insensitive
    assert p.may_object(assumed(LAB, SSO_DEV, joao), ["suporte"])
    assert not p.may_object(assumed(LAB, SSO_DEV, joao), ["suporte", "ml"])
    assert not p.may_object(assumed(LAB, SSO_DEV, joao), [None])
    assert not p.may_object(assumed(LAB, SSO_DEV, joao), [])
    # any role whose session name the caller chooses (sts:AssumeRole --role-session-name)
    assert not p.may_object(assumed(LAB, "CIDeployer", joao), ["suporte"])
    # an SSO session of another account
    assert not p.may_object(assumed(OTHER, SSO_DEV, joao), ["suporte"])
    assert not p.may_object(f"arn:aws:iam::{LAB}:user/{joao}", ["suporte"])


def test_caller_arns_are_parsed_strictly() -> None:
    caller = parse_caller(assumed(LAB, SSO_ADMIN, "alice@lsd.ufcg.edu.br"))
    assert caller is not None
    assert caller.sso_permission_set == "AdministratorAccess"
    assert caller.sso_user == "alice@lsd.ufcg.edu.br"
    assert parse_caller("os:root") is None
    assert parse_caller(f"arn:aws:sts::{LAB[:-1]}:assumed-role/A/b") is None
    assert parse_caller(f"arn:aws:sts::{LAB}:assumed-role/A/b c") is None


def test_the_digest_changes_with_anything_that_decides_who_may_act() -> None:
    base = policy("AdministratorAccess", suporte=["joao@x.br"])
    assert base.digest == policy("AdministratorAccess", suporte=["joao@x.br"]).digest
    changed = [
        policy("AdministratorAccess", "os:eve", suporte=["joao@x.br"]),
        policy("AdministratorAccess", suporte=["eve@x.br"]),
        policy("AdministratorAccess", accounts=(LAB, "111111111111"), suporte=["joao@x.br"]),
        TrustPolicy(base.accounts, base.admins, base.objectors, auto_safe=True),
    ]
    assert len({base.digest, *(c.digest for c in changed)}) == 5
    assert TrustPolicy.from_document(base.document()) == base
    assert changed[0].differences(base) == ["admins added: os:eve"]


def test_the_anchoring_accounts_are_the_ones_the_configuration_names() -> None:
    from hygiene.authz.policy import configured_accounts
    from tests import builders

    assert configured_accounts(builders.config({"registry": {"account": LAB}})) == (LAB,)
    several = {"include": [{"id": OTHER}, {"id": LAB, "assume": False}]}
    assert configured_accounts(builders.config({"registry": {"accounts": several}})) == (
        LAB,
        OTHER,
    )
    organization = {"organization": True}
    assert configured_accounts(builders.config({"registry": {"accounts": organization}})) == ()
    assert configured_accounts(builders.config()) == ()


def test_the_rules_digest_follows_what_decides_deletions_only(config) -> None:  # type: ignore[no-untyped-def]
    """A hand-run apply must run with the deployed rules (protections, mutelist, rule
    options …), not with where this machine keeps its kubeconfig or how it sends mail."""
    from pathlib import Path

    from hygiene.authz.policy import rules_digest

    def changed(section: str, **update: object):  # type: ignore[no-untyped-def]
        part = getattr(config.policy, section).model_copy(update=update)
        return config.model_copy(
            update={"policy": config.policy.model_copy(update={section: part})}
        )

    base = rules_digest(config)
    protected = [*config.policy.protections.protected_tags, "exp-*"]
    assert rules_digest(changed("protections", protected_tags=protected)) != base
    assert rules_digest(changed("lifecycle", expire_untagged_days=30)) != base
    assert rules_digest(changed("notify", admin_emails=["someone@lab.example"])) == base
    kubernetes = config.policy.in_use.kubernetes.model_copy(
        update={"kubeconfig": Path("/home/someone/.kube/config")}
    )
    assert rules_digest(changed("in_use", kubernetes=kubernetes)) == base
    assert TrustPolicy.from_config(config).rules == base


# ------------------------------------------------------ ASCII only (IAM names, account ids)

# Letters and digits of other scripts: Python's \w and \d accept them, IAM does not
# (account ids are 12 ASCII digits; IAM and Identity Center names are [A-Za-z0-9+=,.@_-]).
NON_ASCII_DIGITS = st.characters(categories=["Nd"]).filter(lambda c: not c.isascii())
NON_ASCII_LETTERS = st.characters(categories=["L"]).filter(lambda c: not c.isascii())
NON_ASCII_WORD = st.one_of(NON_ASCII_DIGITS, NON_ASCII_LETTERS)


@given(NON_ASCII_DIGITS, st.integers(0, 11))
def test_an_account_with_another_scripts_digit_is_no_account(digit: str, at: int) -> None:
    account = LAB[:at] + digit + LAB[at + 1 :]  # e.g. Arabic-Indic ٨ for 8
    with pytest.raises(ValueError, match="12 literal digits"):
        check_entry(f"arn:aws:sts::{account}:assumed-role/Admin/*")
    assert parse_caller(assumed(account, SSO_ADMIN, "alice")) is None
    arn = f"arn:aws:sts::{account}:assumed-role/cleaner/hygiene"
    assert ASSUMED_ROLE_ARN.match(arn) is None
    assert ASSUMED_ROLE_ARN.match(f"arn:aws:sts::{LAB}:assumed-role/cleaner/hygiene")


@given(NON_ASCII_WORD, st.integers(0, 19))
def test_iam_names_are_ascii(char: str, at: int) -> None:
    name = "AdministratorAccess"
    forged = name[:at] + char + name[at:]
    with pytest.raises(ValueError, match="permission set"):
        check_entry(forged)  # a permission set name
    with pytest.raises(ValueError, match="IAM name characters"):
        check_entry(f"arn:aws:sts::{LAB}:assumed-role/{forged}/*")
    # an Identity Center role with such a name is no permission set's session
    role = f"AWSReservedSSO_{forged}_0123456789abcdef"
    assert parse_caller(assumed(LAB, role, "alice")) is None
    resource = f"assumed-role/{role}/alice"
    caller = CallerArn(f"arn:aws:sts::{LAB}:{resource}", "aws", "sts", LAB, resource)
    assert caller.sso_permission_set is None and caller.sso_user is None


@given(NON_ASCII_LETTERS)
def test_a_partition_of_another_script_is_no_assumed_role(letter: str) -> None:
    assert ASSUMED_ROLE_ARN.match(f"arn:aws{letter}:sts::{LAB}:assumed-role/cleaner/h") is None
    assert ASSUMED_ROLE_ARN.match(f"arn:aws-cn:sts::{LAB}:assumed-role/cleaner/h")
    assert ASSUMED_ROLE_ARN.match(f"arn:aws-us-gov:sts::{LAB}:assumed-role/cleaner/h")


@pytest.mark.parametrize(
    "entry",
    [
        "Administração",  # a permission set name with Portuguese letters
        f"arn:aws:sts::{LAB}:assumed-role/Operação/*",
        "arn:aws:sts::٨٥١٢٩٦٩٢٧٤١١:assumed-role/Admin/*",  # Arabic-Indic digits
        f"arn:aws:sts::{LAB[:-1]}١:assumed-role/Admin/*",
    ],
)
def test_config_check_names_the_file_and_key_of_a_non_ascii_admin(
    entry: str, tmp_path, capsys
) -> None:
    from hygiene.cli import cli
    from hygiene.cli.common import run_cli
    from tests import builders

    policy = builders.shipped_policy()
    policy["admins"] = ["AdministratorAccess", entry]
    policy["registry"]["account"] = LAB
    directory = builders.write_rules(tmp_path / "rules", policy)
    assert run_cli(cli, ["config", "check", "--rules-dir", str(directory)]) == 2
    err = capsys.readouterr().err
    assert "default.yaml" in err and "admins[1]" in err and entry in err


@given(st.characters(codec="utf-8").filter(lambda c: not c.isascii()))
def test_a_caller_arn_is_printable_ascii(char: str) -> None:
    assert parse_caller(assumed(LAB, SSO_ADMIN, "alice")) is not None
    assert parse_caller(assumed(LAB, SSO_ADMIN, f"ali{char}ce")) is None
