"""Shards in separate processes: their merged inventory is the unsharded scan's.

Each shard is a ``hygiene scan --shard I/N`` process, reading the Organization's accounts
through assumed roles with IAM enforced (tests/accounts/org.py) and writing its part to a
directory; ``hygiene merge`` combines them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from hygiene.collect.shards import DirectoryParts, gather
from hygiene.config import Config, load_config
from hygiene.inventory import Inventory
from hygiene.scan import collect, open_registry
from hygiene_demo.registry import EmbeddedRegistry
from tests.accounts.org import (
    EXTERNAL_ID,
    MANAGEMENT,
    PARTS,
    REGIONS,
    Organization,
    organization,
    seed_registry,
)
from tests.builders import REPO_ROOT, RULES_DIR

pytestmark = pytest.mark.integration


@pytest.fixture
def org(embedded_server: EmbeddedRegistry) -> Iterator[Organization]:
    teams = ("ml", "infra", "suporte", "eureca", "bigsea")
    with organization(embedded_server) as built:
        # more repositories than shards, in every account and region
        for account in built.active:
            for region in REGIONS:
                names = [f"{teams[i % 5]}/svc-{i:02d}" for i in range(12)]
                seed_registry(account, region, names, images=1)
                built.repositories[(account, region)] += names
        yield built


@pytest.fixture
def rules(tmp_path: Path, org: Organization) -> Path:
    policy = yaml.safe_load((RULES_DIR / "default.yaml").read_text())
    policy["registry"] = {
        "regions": list(REGIONS),
        "endpoint_url": org.endpoint_url,
        "accounts": {
            "organization": True,
            "exclude": [MANAGEMENT],
            "external_id_env": "HYGIENE_EXTERNAL_ID",
        },
    }
    # moto's IAM enforcement checks Batch's action in lower case and rejects some
    # signatures of the workload services (docs/ecr-facts.md): the in-use sources are
    # tested without enforcement (tests/workloads), the accounts' ECR reads here
    policy["in_use"] = {"aws_sources": []}
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "default.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    (directory / "projects.yaml").write_text((RULES_DIR / "projects.yaml").read_text())
    return directory


def environment(org: Organization) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HYGIENE_"))}
    env.update(
        AWS_ACCESS_KEY_ID=org.hub_credentials["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=org.hub_credentials["aws_secret_access_key"],
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=org.endpoint_url,
        HYGIENE_EXTERNAL_ID=EXTERNAL_ID,
        PYTHONPATH=str(REPO_ROOT),
    )
    return env


def hygiene(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hygiene", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def run_shards(
    rules: Path, parts: Path | str, count: int, run_id: str, env: dict[str, str]
) -> None:
    processes = [
        hygiene(
            "scan",
            "--rules-dir",
            str(rules),
            "--shard",
            f"{i}/{count}",
            "--run-id",
            run_id,
            "--parts",
            str(parts),
            "--format",
            "json",
            env=env,
        )
        for i in range(count)
    ]
    for index, process in enumerate(processes):
        out, err = process.communicate(timeout=300)
        # 3: incomplete, the denied account could not be read
        assert process.returncode == 3, f"shard {index}/{count}: {err}"
        result = json.loads(out)
        assert result["shard"] == {"index": index, "count": count, "run_id": run_id}


def normalised(inventory: Inventory) -> tuple[pd.DataFrame, pd.DataFrame]:
    images = inventory.images.sort_values(["account", "region", "repository", "digest"])
    repositories = inventory.repositories.sort_values(["account", "region", "name"])
    return plain(images), plain(repositories)


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Categories as plain values: an all-missing column's empty categories have no dtype
    of their own to compare."""
    frame = frame.reset_index(drop=True)
    return frame.astype(
        {c: object for c in frame if isinstance(frame[c].dtype, pd.CategoricalDtype)}
    )


def unsharded(rules: Path, org: Organization) -> Inventory:
    os.environ["HYGIENE_EXTERNAL_ID"] = EXTERNAL_ID
    try:
        config: Config = load_config(rules)
        return collect(open_registry(config, session=org.hub_session()), config, progress=False)
    finally:
        del os.environ["HYGIENE_EXTERNAL_ID"]


def test_merged_shards_equal_the_unsharded_scan(
    org: Organization, rules: Path, tmp_path: Path
) -> None:
    whole = unsharded(rules, org)
    assert len(whole.repositories) == len(org.active) * len(REGIONS) * 14
    env = environment(org)
    expected_images, expected_repositories = normalised(whole)
    for count in (1, 3, 7):
        parts = tmp_path / f"parts-{count}"
        run_shards(rules, parts, count, f"run-{count}", env)
        merged = gather(DirectoryParts(parts), f"run-{count}")
        assert merged.arrived == list(range(count))
        images, repositories = normalised(merged.inventory)
        pd.testing.assert_frame_equal(images, expected_images)
        pd.testing.assert_frame_equal(repositories, expected_repositories)
        run = merged.inventory.run
        # the same accounts are complete and incomplete as in the unsharded scan
        assert {e.account for e in run.errors} == {org.denied}
        assert run.skipped_accounts == whole.run.skipped_accounts
        per_part = merged.api_calls_per_part
        assert sum(p.get("DescribeImages", 0) for p in per_part.values()) == len(whole.repositories)


def test_hygiene_merge_evaluates_once_and_a_missing_part_makes_it_incomplete(
    org: Organization, rules: Path, tmp_path: Path
) -> None:
    env = environment(org)
    parts = tmp_path / "parts"
    run_shards(rules, parts, 3, "nightly-1", env)
    merge = hygiene("merge", "--rules-dir", str(rules), "--parts", str(parts), "--run-id",
                    "nightly-1", "--format", "json", "--fail-on", "never", env=env)  # fmt: skip
    out, err = merge.communicate(timeout=300)
    assert merge.returncode == 3, err  # the denied account
    result = json.loads(out)
    assert result["inventory"]["repositories"] == len(org.active) * len(REGIONS) * 14
    assert {e["account"] for e in result["run"]["errors"]} == {org.denied}
    assert result["findings"], "evaluated once over the merged inventory"

    (parts / "nightly-1" / "part-1.parquet").unlink()
    merge = hygiene("merge", "--rules-dir", str(rules), "--parts", str(parts), "--run-id",
                    "nightly-1", "--format", "json", "--fail-on", "never", env=env)  # fmt: skip
    out, err = merge.communicate(timeout=300)
    assert merge.returncode == 3, err
    result = json.loads(out)
    missing = [e for e in result["run"]["errors"] if e["account"] is None]
    assert [e["message"] for e in missing] == ["part 1/3 of run nightly-1 did not arrive"]
    assert not result["run"]["complete"]


def test_parts_in_s3_with_the_hubs_generated_policy(org: Organization, rules: Path) -> None:
    """Shards write to S3 and merge reads from it, allowed by nothing but the generated
    hub policy's parts statements (IAM enforced)."""
    env = environment(org)
    run_shards(rules, PARTS, 2, "s3-run", env)
    merge = hygiene("merge", "--rules-dir", str(rules), "--parts", PARTS, "--format", "json",
                    "--fail-on", "never", "--no-snapshot", env=env)  # fmt: skip
    out, err = merge.communicate(timeout=300)
    assert merge.returncode == 3, err  # the denied account, nothing else
    result = json.loads(out)
    assert result["run"]["source"] == "parts:s3-run"  # the newest run under the prefix
    assert result["inventory"]["repositories"] == len(org.active) * len(REGIONS) * 14
    assert {e["account"] for e in result["run"]["errors"]} == {org.denied}
    s3 = org.hub_session().client("s3", endpoint_url=org.endpoint_url)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lsd-registry-hygiene")["Contents"]]
    assert sorted(keys) == [f"nightly/parts/s3-run/part-{i}.parquet" for i in range(2)]


def test_one_account_with_its_own_credentials_is_sharded_too(
    ecr: EmbeddedRegistry, config: Config
) -> None:
    """Without registry.accounts the account of a repository, for its shard, is the one
    ECR names (registryId): every shard agrees on it."""
    names = [f"team{i % 3}/svc-{i}" for i in range(20)]
    seed_registry(ecr.account, "us-east-1", names, images=1)
    from hygiene.collect.shards import Shard

    read = []
    for index in range(3):
        handle = open_registry(config, endpoint_url=ecr.endpoint_url, session=ecr.session(),
                               regions=["us-east-1"])  # fmt: skip
        inventory = collect(handle, config, progress=False, shard=Shard(index, 3))
        assert inventory.run.complete
        assert inventory.run.scopes == [(ecr.account, "us-east-1")]
        read.append(set(inventory.repositories["name"].astype(str)))
    assert set().union(*read) == set(names)
    assert sum(len(r) for r in read) == len(names)  # each repository read by one shard
    assert all(read)
