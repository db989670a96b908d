"""An AWS Organization in the embedded moto server, with IAM enforced.

moto keys every backend by account and, when ``MOTO_ACCOUNT_ID`` is not set, takes the
account of a request from its access key: credentials from ``AssumeRole`` into
``arn:aws:iam::<account>:role/…`` read and write that account's registry. With moto's
IAM enforcement on (``/moto-api/reset-auth``), each call is checked against the caller's
policies, so the generated member-account policies are tested for real: the scanner role
can read and cannot delete.

The Organization: the management account (moto's default, where the tool's own IAM user
``hub`` lives), three ACTIVE member accounts, one SUSPENDED (closed) account, and one
*denied* account whose roles the hub may not assume. moto does not evaluate a role's trust
policy across accounts, so the denial is an explicit Deny in the hub's own policy, as an
SCP or a missing trust relationship would give on AWS: AssumeRole fails with AccessDenied.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import requests

from hygiene import iam
from hygiene_demo.registry import DUMMY_CREDENTIALS, EmbeddedRegistry

MANAGEMENT = "123456789012"
REGIONS = ("us-east-1", "sa-east-1")
EXTERNAL_ID = "lsd-registry-hygiene"
PARTS = "s3://lsd-registry-hygiene/nightly/parts"  # the hub may write and read only there
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
PUSHED = datetime(2025, 1, 10, tzinfo=UTC)


@dataclass
class Organization:
    registry: EmbeddedRegistry
    active: list[str]
    suspended: str
    denied: str
    hub_credentials: dict[str, str]
    repositories: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    @property
    def endpoint_url(self) -> str:
        return self.registry.endpoint_url

    def hub_session(self, region: str = "us-east-1") -> boto3.Session:
        return boto3.Session(**self.hub_credentials, region_name=region)

    def enforce_iam(self, on: bool = True) -> None:
        """moto checks every request against the caller's IAM policies from now on."""
        response = requests.post(
            self.endpoint_url + "/moto-api/reset-auth", data=b"0" if on else b"inf", timeout=10
        )
        response.raise_for_status()


def reset_everything(registry: EmbeddedRegistry) -> None:
    """Every moto backend emptied and IAM enforcement off (what other tests expect)."""
    requests.post(registry.endpoint_url + "/moto-api/reset-auth", data=b"inf", timeout=10)
    requests.post(registry.endpoint_url + "/moto-api/reset", timeout=30)


def _trust_policy() -> str:
    return json.dumps(iam.trust_policy_document(f"arn:aws:iam::{MANAGEMENT}:user/hub", EXTERNAL_ID))


def _session_in(registry: EmbeddedRegistry, account: str) -> boto3.Session:
    sts = registry.session().client("sts", endpoint_url=registry.endpoint_url)
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
        RoleSessionName="setup",
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    )


def put_image(backend: Any, repository: str, salt: str, tag: str | None) -> None:
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + hashlib.sha256(salt.encode()).hexdigest(),
                "size": 1000 + len(salt),
            },
            "layers": [],
        }
    )
    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    image = backend.put_image(repository, manifest, tag, OCI_MANIFEST, digest)
    image.image_pushed_at = int(PUSHED.timestamp())


def seed_registry(account: str, region: str, names: list[str], images: int = 2) -> None:
    """Repositories with ``images`` images each, straight into moto's backend."""
    from moto.ecr.models import ecr_backends

    backend = ecr_backends[account][region]
    for name in names:
        backend.create_repository(
            repository_name=name,
            registry_id=account,
            encryption_config={"encryptionType": "AES256"},
            image_scan_config={"scanOnPush": False},
            image_tag_mutability="MUTABLE",
            tags=[],
        )
        for n in range(images):
            put_image(backend, name, f"{account}/{region}/{name}/{n}", "latest" if n == 0 else None)


@contextmanager
def organization(
    registry: EmbeddedRegistry, repositories: dict[tuple[str, str], list[str]] | None = None
) -> Iterator[Organization]:
    """Build the Organization; IAM is enforced while the context is open."""
    reset_everything(registry)
    endpoint = registry.endpoint_url
    management = boto3.Session(**DUMMY_CREDENTIALS, region_name="us-east-1")
    org = management.client("organizations", endpoint_url=endpoint)
    org.create_organization(FeatureSet="ALL")
    made = []
    for name in ("ml", "infra", "suporte", "closed", "denied"):
        status = org.create_account(Email=f"{name}@lsd.ufcg.edu.br", AccountName=name)
        made.append(status["CreateAccountStatus"]["AccountId"])
    active, suspended, denied = made[:3], made[3], made[4]
    org.close_account(AccountId=suspended)

    hub_iam = management.client("iam", endpoint_url=endpoint)
    hub_iam.create_user(UserName="hub")
    policy = iam.hub_policy_document(parts=PARTS)
    management.client("s3", endpoint_url=endpoint).create_bucket(Bucket="lsd-registry-hygiene")
    policy["Statement"].append(
        {
            "Sid": "NotThisAccount",
            "Effect": "Deny",
            "Action": "sts:AssumeRole",
            "Resource": f"arn:aws:iam::{denied}:role/*",
        }
    )
    hub_iam.put_user_policy(UserName="hub", PolicyName="hub", PolicyDocument=json.dumps(policy))
    key = hub_iam.create_access_key(UserName="hub")["AccessKey"]
    hub_credentials = {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
    }

    for account in [*active, denied]:
        member_iam = _session_in(registry, account).client("iam", endpoint_url=endpoint)
        for role in ("scanner", "cleaner"):
            name = f"registry-hygiene-{role}"
            document = iam.member_policy_document(role)  # type: ignore[arg-type]
            for statement in document["Statement"]:
                # moto authorises ECR calls against the resource "*", never a repository
                # ARN, so the cleaner's repository-scoped writes would match nothing
                statement["Resource"] = "*"
            member_iam.create_role(RoleName=name, AssumeRolePolicyDocument=_trust_policy())
            member_iam.put_role_policy(
                RoleName=name, PolicyName=name, PolicyDocument=json.dumps(document)
            )

    layout = repositories or {
        (account, region): [f"{team}/{kind}" for kind in ("api", "web")]
        for account, team in zip(active, ("ml", "infra", "suporte"), strict=True)
        for region in REGIONS
    }
    for (account, region), names in layout.items():
        seed_registry(account, region, names)
    result = Organization(registry, active, suspended, denied, hub_credentials, dict(layout))
    result.enforce_iam()
    try:
        yield result
    finally:
        reset_everything(registry)
