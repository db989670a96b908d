"""People, rules and stores for the trust tests: identities come from the moto server's
STS (AssumeRole, then GetCallerIdentity) or from the demo challenge, never from a stub
unless moto cannot say it (another account)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from hygiene.cli import proposals as proposals_cli
from hygiene.config import Config, load_config
from hygiene.plan import plan
from hygiene.store import Store
from hygiene_demo.registry import EmbeddedRegistry
from tests import builders
from tests.apply.registry import Seeder

MOTO_ACCOUNT = "123456789012"  # the embedded registry's account (moto's default)
SSO_SUFFIX = "0123456789abcdef"
ADMIN_ROLE = f"AWSReservedSSO_AdministratorAccess_{SSO_SUFFIX}"
DEVELOPER_ROLE = f"AWSReservedSSO_Developer_{SSO_SUFFIX}"
OWNER_OF_SUPORTE = "joao.silva@lsd.ufcg.edu.br"  # rules/projects.yaml
OWNER_OF_ML = "ana.costa@lsd.ufcg.edu.br"


def sts_as(ecr: EmbeddedRegistry, role: str, session: str) -> Any:
    """An STS client of the moto server holding the credentials of ``role``'s session
    ``session`` in the registry's account (as IAM Identity Center would hand out)."""
    base = dict(endpoint_url=ecr.endpoint_url, region_name="us-east-1")
    sts = boto3.client("sts", aws_access_key_id="testing", aws_secret_access_key="testing", **base)
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{MOTO_ACCOUNT}:role/{role}", RoleSessionName=session
    )["Credentials"]
    return boto3.client(
        "sts",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        **base,
    )


def signed_in(monkeypatch: pytest.MonkeyPatch, sts: Any) -> None:
    """Make the CLI's STS client ``sts`` (the production one ignores endpoint settings)."""
    monkeypatch.setattr(proposals_cli, "STS", lambda config: sts)


def rules(directory: Path, admins: list[str], **changes: Any) -> Path:
    """rules/ with ``admins``, the embedded registry's account, one attempt per call."""
    policy = builders.shipped_policy()
    policy["admins"] = admins
    policy["registry"]["account"] = MOTO_ACCOUNT
    policy["collect"]["max_attempts"] = 1
    for section, values in changes.items():
        policy.setdefault(section, {}).update(values)
    return builders.write_rules(directory, policy)


ADMIN_MAIL = "registry-admins@lsd.ufcg.edu.br"


def stale_release(seeder: Seeder, name: str) -> str:
    """Repository ``name`` with a stale release (``v0``, pushed 400 days ago: IM002
    proposes its deletion) and three recent ones it keeps; returns the repository."""
    repo = seeder.repo(name)
    seeder.image(repo, "v0", days_old=400)
    for n in (1, 2, 3):
        seeder.image(repo, f"r{n}", days_old=n)
    return repo


def mailing_rules(directory: Path, smtp: Any, out_dir: Path, **changes: Any) -> Path:
    """:func:`rules` for a job that mails through the local ``smtp`` server: admins
    AdministratorAccess (:data:`ADMIN_MAIL`), one delivery attempt, reports written to
    ``out_dir``, no AWS in-use source; ``changes`` add to those sections (``report``'s
    locale …) or set others."""
    report = {"out_dir": str(out_dir), **changes.pop("report", {})}
    smtp_settings = {"host": smtp.host, "port": smtp.port, "security": "none"}
    return rules(
        directory,
        ["AdministratorAccess"],
        notify={
            "retries": 0,
            "email": True,
            "admin_emails": [ADMIN_MAIL],
            "smtp": {**smtp_settings, "username_env": None},
        },
        report=report,
        in_use={"aws_sources": []},
        **changes,
    )


def proposal_in_grace(
    store: Store, seeder: Seeder, config: Config, now: datetime, namespace: str = "suporte"
) -> dict[str, Any]:
    """Two stale images of ``<namespace>/api`` proposed for deletion, owners notified
    9 days ago (past the 7-day grace), nobody decided yet; one kept image beside them."""
    repo = seeder.repo(f"{namespace}/api")
    digests = [seeder.image(repo) for _ in range(2)]
    kept = seeder.image(repo, tag="latest")
    proposals = plan(
        builders.evaluation([seeder.finding("IM002", repo, d) for d in digests]),
        seeder.inventory(),
        config,
        now,
    )
    builders.store_proposals(store, proposals, now - timedelta(days=10))
    store.mark_notified(now - timedelta(days=9), namespace=namespace)
    (proposal,) = proposals
    return {"id": proposal.id, "repo": repo, "digests": digests, "kept": kept}


def deployed_store(url: str, rules_dir: Path) -> Store:
    """The store as the scheduled job leaves it: the deployed rules' trust policy pinned."""
    store = Store(url)
    builders.deployed(store, load_config(rules_dir))
    return store
