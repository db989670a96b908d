"""Sharded scans of several accounts on a latency-injected moto: wall time and API calls.

``python -m benchmarks.shards`` (from the top of the checkout, needs the ``demo`` extra)
builds 3 accounts × 2 regions × 500 repositories (2 images each) in a moto server that
answers every request after ``--latency`` seconds and, with ``--rate``, throttles ECR per
(account, region) like ECR does (:mod:`benchmarks.slow_moto`). It then runs the scan as
1, 2 and 4 shards, each shard a separate ``hygiene scan --shard I/N`` process reading the
accounts through assumed roles and writing its part to a directory, all shards of a run at
once, and merges the parts. It prints, per run and per shard, the wall time, the
repositories read, repositories per second and the API calls (from each part's run
record), and the requests the server saw and throttled.

``--worker`` is not for people: it is how the shards are started.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

ACCOUNTS = ("111111111111", "222222222222", "333333333333")
REGIONS = ("us-east-1", "sa-east-1")
ROOT = Path(__file__).resolve().parent.parent


def write_rules(directory: Path, endpoint_url: str, max_workers: int) -> Path:
    """A rules directory: the shipped one with registry.accounts and collect changed."""
    directory.mkdir(parents=True, exist_ok=True)
    policy = yaml.safe_load((ROOT / "rules" / "default.yaml").read_text())
    policy["registry"] = {
        "regions": list(REGIONS),
        "endpoint_url": endpoint_url,
        "accounts": {"include": [{"id": a} for a in ACCOUNTS]},
    }
    policy.setdefault("collect", {})["max_workers"] = max_workers
    (directory / "default.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    (directory / "projects.yaml").write_text((ROOT / "rules" / "projects.yaml").read_text())
    return directory


def seed(repositories: int) -> None:
    """Repositories of two images each, written straight into moto's backends."""
    import hashlib

    from moto.ecr.models import ecr_backends

    media = "application/vnd.oci.image.manifest.v1+json"
    for account in ACCOUNTS:
        for region in REGIONS:
            backend = ecr_backends[account][region]
            for n in range(repositories):
                name = f"team{n % 25:02d}/service-{n:04d}"
                backend.create_repository(name, account, {"encryptionType": "AES256"},
                                          {"scanOnPush": True}, "IMMUTABLE", [])  # fmt: skip
                for i in range(2):
                    config = hashlib.sha256(f"{account}{region}{name}{i}".encode()).hexdigest()
                    manifest = json.dumps({"schemaVersion": 2, "mediaType": media, "layers": [],
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                   "digest": f"sha256:{config}", "size": 1000}})  # fmt: skip
                    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
                    backend.put_image(name, manifest, f"v{i}", media, digest)


def run_shards(rules: Path, parts: Path, count: int, endpoint_url: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": endpoint_url,
        "PYTHONPATH": str(ROOT),
    }
    run_id = f"bench-{count}-{int(time.time())}"
    started = time.perf_counter()
    processes = []
    for index in range(count):
        command = [
            sys.executable, "-m", "hygiene", "scan", "--rules-dir", str(rules),
            "--shard", f"{index}/{count}", "--run-id", run_id, "--parts", str(parts),
            "--format", "json", "--no-progress",
        ]  # fmt: skip
        processes.append(
            (
                time.perf_counter(),
                subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE),
            )
        )
    shards = []
    for index, (begun, process) in enumerate(processes):
        out, err = process.communicate()
        wall = time.perf_counter() - begun
        if process.returncode not in (0, 3):
            raise SystemExit(f"shard {index}/{count} failed ({process.returncode}): {err.decode()}")
        result = json.loads(out)
        run = result["run"]
        scan = datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(
            run["started_at"]
        )
        shards.append(
            {
                "index": index,
                "wall_s": round(wall, 2),
                "scan_s": round(scan.total_seconds(), 2),
                "result": result,
            }
        )
    total = time.perf_counter() - started
    return {"count": count, "run_id": run_id, "wall_s": round(total, 2), "shards": shards}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.shards", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--repositories", type=int, default=500, help="per account and region")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument(
        "--rate", type=float, default=None, help="ECR requests/s per account+region"
    )
    parser.add_argument("--burst", type=float, default=20.0)
    parser.add_argument("--shards", default="1,2,4")
    parser.add_argument("--max-workers", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    import logging

    from benchmarks.slow_moto import SlowMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    from hygiene.collect.shards import DirectoryParts, gather

    server = SlowMotoServer()
    server.start()
    try:
        seed(args.repositories)
        wrapper = server.wrapper
        assert wrapper is not None
        results = []
        with tempfile.TemporaryDirectory(prefix="hygiene-shards-") as tmp:
            rules = write_rules(Path(tmp) / "rules", server.endpoint_url, args.max_workers)
            parts = Path(tmp) / "parts"
            for count in (int(c) for c in args.shards.split(",")):
                wrapper.latency, wrapper.rate, wrapper.burst = args.latency, args.rate, args.burst
                wrapper.reset_counts()
                result = run_shards(rules, parts, count, server.endpoint_url)
                wrapper.latency, wrapper.rate = 0.0, None
                merged = gather(DirectoryParts(parts), result["run_id"])
                inventory = merged.inventory
                result["merged"] = {
                    "repositories": len(inventory.repositories),
                    "images": len(inventory.images),
                    "complete": inventory.run.complete,
                }
                result["server"] = {
                    "ecr_requests": sum(wrapper.requests.values()),
                    "throttled": sum(wrapper.throttled.values()),
                }
                results.append(result)
                _print(result, args)
    finally:
        server.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _print(result: dict[str, Any], args: argparse.Namespace) -> None:
    merged = result["merged"]
    print(
        f"\n{result['count']} shard(s): {result['wall_s']:.1f} s wall, "
        f"{merged['repositories']} repositories ({merged['images']} images) merged, "
        f"complete={merged['complete']}; latency {args.latency * 1000:.0f} ms, "
        f"rate {args.rate or 'unlimited'} req/s per account+region; server saw "
        f"{result['server']['ecr_requests']} ECR requests, "
        f"{result['server']['throttled']} throttled"
    )
    print(
        f"{'shard':>6} {'wall s':>7} {'scan s':>7} {'repos':>6} {'repos/s':>8} {'calls':>6}  "
        "calls by operation"
    )
    for shard in result["shards"]:
        run = shard["result"]["run"]
        calls = run["api_calls"]
        repos = shard["result"]["inventory"]["repositories"]
        by_op = ", ".join(f"{k}={v}" for k, v in sorted(calls.items()))
        print(
            f"{shard['index']:>6} {shard['wall_s']:>7.1f} {shard['scan_s']:>7.1f} {repos:>6} "
            f"{repos / shard['scan_s']:>8.1f} {sum(calls.values()):>6}  {by_op}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
