"""Which shard reads a repository: deterministic, stable, even (hygiene.collect.shards)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from hygiene.collect.shards import Shard, check_run_id, shard_of
from hygiene.errors import ConfigError

ACCOUNTS = ("111111111111", "222222222222", "333333333333")
REGIONS = ("us-east-1", "sa-east-1")


def keys(n: int, start: int = 0) -> list[tuple[str, str, str]]:
    return [(ACCOUNTS[i % 3], REGIONS[i % 2], f"team{i % 17}/service-{i}") for i in range(start, n)]


def test_the_shard_of_a_repository_never_changes_when_repositories_are_added() -> None:
    before = {k: shard_of(*k, 7) for k in keys(3000)}
    after = {k: shard_of(*k, 7) for k in keys(3600)}  # 600 repositories more
    assert all(after[k] == shard for k, shard in before.items())


def test_one_more_shard_moves_about_one_repository_in_n_plus_one() -> None:
    every = keys(6000)
    moved = sum(1 for k in every if shard_of(*k, 7) != shard_of(*k, 8))
    # jump consistent hash moves 1/8 of the keys, and only onto the new shard
    assert 0.10 < moved / len(every) < 0.15
    assert all(shard_of(*k, 8) == 7 for k in every if shard_of(*k, 7) != shard_of(*k, 8))


def test_shards_are_even_and_cover_every_repository_once() -> None:
    every = keys(7000)
    shards = [Shard(i, 7) for i in range(7)]
    owners = Counter(sum(1 for s in shards if s.owns(*k)) for k in every)
    assert owners == {1: len(every)}
    sizes = Counter(shard_of(*k, 7) for k in every)
    assert min(sizes.values()) > 0.85 * 1000 and max(sizes.values()) < 1.15 * 1000


def test_the_same_in_another_process(subprocess_env: dict[str, str]) -> None:
    """Not Python's salted hash(): another interpreter puts each repository in the same shard."""
    sample = keys(50)
    here = [shard_of(*k, 5) for k in sample]
    code = (
        f"from hygiene.collect.shards import shard_of\nprint([shard_of(*k, 5) for k in {sample!r}])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**subprocess_env, "PYTHONHASHSEED": "12345"},
    )  # fmt: skip
    assert out.stdout.strip() == str(here)


@pytest.mark.parametrize(
    ("text", "expected"), [("0/1", Shard(0, 1)), ("6/7", Shard(6, 7)), (" 2/3 ", Shard(2, 3))]
)
def test_shard_spec(text: str, expected: Shard) -> None:
    assert Shard.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["7/7", "-1/3", "1", "a/3", "$(JOB_COMPLETION_INDEX)/4", "0/0", "1/1001"]
)
def test_bad_shard_spec_names_the_option(text: str) -> None:
    with pytest.raises(ConfigError, match="--shard"):
        Shard.parse(text)


@pytest.mark.parametrize("run_id", ["", "../x", "a/b", "-x", "x" * 129])
def test_bad_run_id(run_id: str) -> None:
    with pytest.raises(ConfigError, match="--run-id"):
        check_run_id(run_id)
