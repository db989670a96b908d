"""Parts of a sharded run: written whole, found, merged; a missing part makes it incomplete."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hygiene.collect.shards import (
    DirectoryParts,
    PartMeta,
    S3Parts,
    Shard,
    gather,
    latest_run,
    merge_parts,
    part_bytes,
    part_store,
    read_part,
    shard_of,
    write_part,
)
from hygiene.errors import CollectError, ConfigError
from hygiene.inventory import Inventory, RunInfo, ScanError, build_images, build_repositories
from hygiene_demo.registry import EmbeddedRegistry

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
SCOPES = [("111111111111", "us-east-1"), ("222222222222", "us-east-1")]


def registry_rows(n: int = 60) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    repositories, images = [], []
    for i in range(n):
        account, region = SCOPES[i % 2]
        name = f"ns{i % 5}/repo-{i}"
        repositories.append(
            {"account": account, "region": region, "name": name, "namespace": f"ns{i % 5}"}
        )
        for j in range(i % 3):
            images.append(
                {
                    "account": account,
                    "region": region,
                    "repository": name,
                    "namespace": f"ns{i % 5}",
                    "digest": f"sha256:{i:04d}{j:060d}",
                    "tags": [f"v{j}"],
                    "pushed_at": NOW - timedelta(days=i + j),
                    "size_bytes": 1000 * (j + 1),
                    "manifest_media_type": "application/vnd.oci.image.manifest.v1+json",
                }
            )
    return repositories, images


def inventory_of(
    repositories: list[dict[str, Any]], images: list[dict[str, Any]], **run: Any
) -> Inventory:
    frame = build_images(images)
    return Inventory(frame, build_repositories(repositories, frame), RunInfo("x", NOW, **run))


def sharded(count: int) -> dict[int, tuple[Inventory, PartMeta]]:
    """Fresh inventories of the parts (each test may change its own)."""
    return {i: read_part(data, f"part-{i}") for i, data in part_files(count).items()}


@functools.cache
def part_files(count: int) -> dict[int, bytes]:
    repositories, images = registry_rows()
    parts = {}
    for index in range(count):
        mine = {
            r["name"]
            for r in repositories
            if shard_of(r["account"], r["region"], r["name"], count) == index
        }
        inventory = inventory_of(
            [r for r in repositories if r["name"] in mine],
            [i for i in images if i["repository"] in mine],
            api_calls={"DescribeImages": len(mine)},
        )
        meta = PartMeta("run-1", index, count, tuple(SCOPES))
        parts[index] = part_bytes(inventory, meta)
    return parts


def sort(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows in key order, categories as plain values (an all-missing column's empty
    categories have no dtype of their own to compare)."""
    frame = frame.sort_values(keys).reset_index(drop=True)
    return frame.astype(
        {c: object for c in frame if isinstance(frame[c].dtype, pd.CategoricalDtype)}
    )


@pytest.mark.parametrize("count", [1, 3, 7])
def test_merged_parts_equal_the_whole_registry(count: int) -> None:
    repositories, images = registry_rows()
    whole = inventory_of(repositories, images)
    merged = merge_parts(sharded(count), "run-1")
    inventory = merged.inventory
    assert inventory.run.complete and merged.arrived == list(range(count))
    pd.testing.assert_frame_equal(
        sort(inventory.images, ["repository", "digest"]),
        sort(whole.images, ["repository", "digest"]),
    )
    pd.testing.assert_frame_equal(
        sort(inventory.repositories, ["name"]), sort(whole.repositories, ["name"])
    )
    assert inventory.run.api_calls == {"DescribeImages": 60}
    assert sorted(inventory.run.scopes) == SCOPES


def test_a_missing_part_makes_the_run_incomplete_for_every_account() -> None:
    parts = sharded(3)
    del parts[1]
    merged = merge_parts(parts, "run-1").inventory
    assert not merged.run.complete
    [error] = merged.run.errors
    assert error.account is None and "part 1/3 of run run-1 did not arrive" in error.message
    assert not merged.run.complete_for("111111111111")
    assert merged.run.finished_at is None


def test_a_part_of_another_run_or_shard_count_is_left_out() -> None:
    parts = sharded(3)
    other = sharded(4)
    parts[2] = other[2]
    merged = merge_parts(parts, "run-1", 3).inventory
    messages = [e.message for e in merged.run.errors]
    assert any("part-2 is shard 2/4" in m for m in messages)
    assert set(merged.images["repository"].astype(str)) <= {
        str(r) for i in (0, 1) for r in parts[i][0].images["repository"]
    }


def test_an_account_one_shard_did_not_read_is_incomplete_for_that_account_only() -> None:
    parts = sharded(2)
    inventory, meta = parts[1]
    parts[1] = (inventory, PartMeta(meta.run_id, meta.index, meta.count, (SCOPES[0],)))
    run = merge_parts(parts, "run-1").inventory.run
    assert not run.complete
    assert run.complete_for("111111111111") and not run.complete_for("222222222222")


def test_errors_of_a_part_are_kept() -> None:
    parts = sharded(2)
    inventory, _meta = parts[0]
    inventory.run.errors.append(
        ScanError("us-east-1", "ns1/repo-1", "DescribeImages", "Throttling", "111111111111")
    )
    run = merge_parts(parts, "run-1").inventory.run
    assert not run.complete_for("111111111111") and run.complete_for("222222222222")


def test_a_snapshot_is_not_a_part(tmp_path: Path) -> None:
    from hygiene.inventory import write_snapshot

    repositories, images = registry_rows(4)
    path = write_snapshot(inventory_of(repositories, images), tmp_path / "s.parquet")
    with pytest.raises(ConfigError, match="not a part of a sharded run"):
        read_part(path.read_bytes(), str(path))


def test_directory_parts_are_written_whole_and_found(tmp_path: Path) -> None:
    store = DirectoryParts(tmp_path / "parts")
    repositories, images = registry_rows(6)
    where = write_part(store, inventory_of(repositories, images), Shard(1, 2), "run-7", SCOPES)
    assert where.endswith("run-7/part-1.parquet")
    assert [p.name for p in (tmp_path / "parts" / "run-7").iterdir()] == ["part-1.parquet"]
    found = store.parts("run-7")
    assert list(found) == [1]
    inventory, meta = read_part(store.read(found[1]), found[1].where)
    assert (meta.index, meta.count, meta.run_id) == (1, 2, "run-7")
    assert len(inventory.repositories) == 6 and inventory.run.id == "run-7"
    assert store.runs() == ["run-7"]


def test_gather_waits_for_the_last_part_then_merges(tmp_path: Path) -> None:
    store = DirectoryParts(tmp_path)
    parts = sharded(3)
    clock = [NOW]
    written = []

    def sleep(seconds: float) -> None:
        clock[0] += timedelta(seconds=seconds)
        index = len(written)
        if index < 3:  # one more shard finishes at each poll
            inventory, _ = parts[index]
            write_part(store, inventory, Shard(index, 3), "run-1", SCOPES)
            written.append(index)

    merged = gather(
        store, "run-1", wait=timedelta(minutes=10), poll_seconds=60,
        clock=lambda: clock[0], sleep=sleep,
    )  # fmt: skip
    assert merged.inventory.run.complete and merged.arrived == [0, 1, 2]
    assert clock[0] - NOW == timedelta(minutes=3)


def test_gather_gives_up_after_the_wait_and_the_run_is_incomplete(tmp_path: Path) -> None:
    store = DirectoryParts(tmp_path)
    inventory, _ = sharded(3)[0]
    write_part(store, inventory, Shard(0, 3), "run-1", SCOPES)
    clock = [NOW]

    def sleep(seconds: float) -> None:
        clock[0] += timedelta(seconds=seconds)

    merged = gather(
        store, "run-1", wait=timedelta(minutes=5), poll_seconds=60,
        clock=lambda: clock[0], sleep=sleep,
    )  # fmt: skip
    assert not merged.inventory.run.complete and merged.arrived == [0]
    assert clock[0] - NOW == timedelta(minutes=5)


def test_latest_run_is_the_newest_within_max_age(tmp_path: Path) -> None:
    import os

    store = DirectoryParts(tmp_path)
    inventory, _ = sharded(1)[0]
    for run_id, age_hours in (("old", 30), ("yesterday", 20), ("tonight", 1)):
        path = Path(write_part(store, inventory, Shard(0, 1), run_id, SCOPES))
        stamp = (NOW - timedelta(hours=age_hours)).timestamp()
        os.utime(path, (stamp, stamp))
    assert latest_run(store, max_age=timedelta(hours=12), now=NOW) == "tonight"
    assert latest_run(store, max_age=timedelta(minutes=30), now=NOW) is None
    with pytest.raises(CollectError, match="no sharded run"):
        gather(store, None, max_age=timedelta(minutes=30), clock=lambda: NOW)


def test_s3_parts_through_moto(embedded_server: EmbeddedRegistry) -> None:
    """``s3://bucket/prefix/run-id/part-I.parquet`` against moto's S3."""
    session = embedded_server.session()
    s3 = session.client("s3", endpoint_url=embedded_server.endpoint_url)
    s3.create_bucket(Bucket="hygiene-parts")
    try:
        store = part_store("s3://hygiene-parts/nightly/parts", lambda: s3)
        assert isinstance(store, S3Parts)
        parts = sharded(2)
        for index, (inventory, _) in parts.items():
            where = write_part(store, inventory, Shard(index, 2), "run-9", SCOPES)
            assert where == f"s3://hygiene-parts/nightly/parts/run-9/part-{index}.parquet"
        assert store.runs() == ["run-9"]
        merged = gather(store, None, clock=lambda: datetime.now(UTC))
        assert merged.inventory.run.complete and merged.arrived == [0, 1]
        assert len(merged.inventory.repositories) == 60
    finally:
        for item in s3.list_objects_v2(Bucket="hygiene-parts").get("Contents", []):
            s3.delete_object(Bucket="hygiene-parts", Key=item["Key"])
        s3.delete_bucket(Bucket="hygiene-parts")


def test_s3_location_needs_a_bucket() -> None:
    with pytest.raises(ConfigError, match="no bucket"):
        part_store("s3:///prefix", lambda: None)


def test_a_part_that_cannot_be_written_or_read_is_a_collect_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    store = DirectoryParts(blocked)
    inventory, _ = sharded(1)[0]
    with pytest.raises(CollectError, match="cannot write part 0/1"):
        write_part(store, inventory, Shard(0, 1), "run-1", SCOPES)

    class Denied(DirectoryParts):
        def runs(self) -> list[str]:
            raise OSError("AccessDenied")

    with pytest.raises(CollectError, match="cannot read the parts"):
        gather(Denied(tmp_path), None)


@pytest.mark.integration  # a whole nightly job with its reports: ~10 s
def test_the_nightly_job_merges_the_parts_instead_of_scanning(tmp_path: Path) -> None:
    """``hygiene run nightly --parts DIR``: the wired collect stage is the merge."""
    from click.testing import CliRunner

    from hygiene.cli import cli
    from hygiene.store import Store
    from tests import builders

    store = DirectoryParts(tmp_path / "parts")
    for index, (inventory, _) in sharded(3).items():
        write_part(store, inventory, Shard(index, 3), "run-1", SCOPES)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    rules = builders.write_rules(
        tmp_path / "rules",
        {
            "store": {"url": url},
            "report": {"out_dir": str(tmp_path / "out")},
            # the merge asks the workloads (docs/in-use.md); no AWS here to ask
            "in_use": {"aws_sources": []},
        },
    )
    argv = ["run", "nightly", "--rules-dir", str(rules), "--parts", str(tmp_path / "parts")]
    result = CliRunner().invoke(cli, [*argv, "--run-id", "run-1"])
    assert result.exit_code == 0, result.output
    [run] = Store(url).runs(last=1)
    assert run.status == "ok" and run.counts["repositories"] == 60
    assert run.api_calls == {"DescribeImages": 60}  # the shards' calls, not a new scan's

    (tmp_path / "parts" / "run-1" / "part-2.parquet").unlink()
    result = CliRunner().invoke(cli, [*argv, "--run-id", "run-1"])
    assert result.exit_code == 3, result.output
    [run] = Store(url).runs(last=1)
    assert run.status == "incomplete"
    assert any("part 2/3 of run run-1 did not arrive" in e for e in run.errors)
