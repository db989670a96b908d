"""``hygiene scan`` against the API floor: ``python -m benchmarks.scan``.

Serves a seeded embedded registry (:mod:`hygiene_demo.scale`: R repositories × I images)
through :class:`hygiene_demo.faults.FaultProxy`, which delays every request by
``--latency`` seconds (20 ms by default) the way a real endpoint's round trip does. Then,
in one sitting and alternating, it runs in fresh processes:

- the **floor**: a bare boto3 scan that makes the minimum calls and nothing else
  (DescribeRepositories, DescribeImages per repository, BatchGetImage for the image
  indexes and then for the untagged images no index lists and ECR reports no subject
  for (a referrer without ECR's metadata is known only by its manifest's ``subject``,
  docs/ecr-facts.md), GetLifecyclePolicy, GetRepositoryPolicy and ListTagsForResource per
  repository, GetRegistryScanningConfiguration once; 8 threads, like the collector);
- ``hygiene scan --format json`` with the checkout's ``rules/``, its output written to a
  file and its snapshot to a temporary directory: start-up, collection, rules, plan and
  the JSON document.

One run of each comes first and is not timed: it warms the disk caches and moto, which
builds its emulation of ECS, Lambda and Batch when they are first called (the scan's
in-use discovery calls them; the floor does not). It also writes every module's bytecode
to a cache of the sitting (``PYTHONPYCACHEPREFIX``, in its temporary directory) that
the timed runs read, floor and scans alike: an installed package has its bytecode
(pip compiles it at install), but a checkout run with ``PYTHONDONTWRITEBYTECODE=1``
compiles every module of its own from source in every run (about 0.1 s of CPU for the
86 modules a scan imports). ``--no-bytecode-cache`` runs them as the calling
environment says, as the sittings before round 8 did.

It prints the median wall time of each over ``--repeat`` runs and, last, the ratio
``hygiene scan / floor`` per size.

    python -m benchmarks.scan                       # 200×50 and 1,000×100, 3 runs each
    python -m benchmarks.scan --sizes 200x50 --repeat 5 --latency 0.02
    python -m benchmarks.scan --sizes 200x50 --baseline ../main   # A/B in one sitting
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
INDEXES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
ACCEPTED = [
    *INDEXES,
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
]


def floor_scan(endpoint_url: str, workers: int = 8) -> dict[str, int]:
    """The minimum calls of a scan with boto3 and nothing else; returns calls made."""
    import boto3
    from botocore.config import Config

    client = boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).client(
        "ecr",
        endpoint_url=endpoint_url,
        config=Config(
            retries={"mode": "standard", "max_attempts": 8},
            max_pool_connections=workers + 2,
        ),
    )
    calls: dict[str, int] = {}

    def count(model: Any, **_: Any) -> None:
        calls[model.name] = calls.get(model.name, 0) + 1

    client.meta.events.register("before-call.ecr.*", count)
    repositories = []
    for page in client.get_paginator("describe_repositories").paginate(
        PaginationConfig={"PageSize": 1000}
    ):
        repositories += page["repositories"]
    client.get_registry_scanning_configuration()

    def read(repository: dict[str, Any]) -> None:
        name = repository["repositoryName"]
        details: list[dict[str, Any]] = []
        for page in client.get_paginator("describe_images").paginate(
            repositoryName=name,
            filter={"tagStatus": "ANY", "imageStatus": "ANY"},
            PaginationConfig={"PageSize": 1000},
        ):
            details += page["imageDetails"]
        indexes = [d["imageDigest"] for d in details if d.get("imageManifestMediaType") in INDEXES]
        listed: set[str] = set()
        unplatformed: set[str] = set()
        for start in range(0, len(indexes), 100):
            answer = client.batch_get_image(
                repositoryName=name,
                imageIds=[{"imageDigest": d} for d in indexes[start : start + 100]],
                acceptedMediaTypes=ACCEPTED,
            )
            for image in answer["images"]:
                for entry in json.loads(image["imageManifest"]).get("manifests", []):
                    listed.add(entry["digest"])
                    if not entry.get("platform"):
                        unplatformed.add(entry["digest"])
        # untagged images no index lists (or listed without a platform), no subject yet
        unknown = [
            d["imageDigest"]
            for d in details
            if not d.get("imageTags")
            and not d.get("subjectManifestDigest")
            and d.get("imageManifestMediaType") not in INDEXES
            and (d["imageDigest"] not in listed or d["imageDigest"] in unplatformed)
        ]
        for start in range(0, len(unknown), 100):
            client.batch_get_image(
                repositoryName=name,
                imageIds=[{"imageDigest": d} for d in unknown[start : start + 100]],
                acceptedMediaTypes=ACCEPTED,
            )
        for call, missing in (
            (client.get_lifecycle_policy, "LifecyclePolicyNotFoundException"),
            (client.get_repository_policy, "RepositoryPolicyNotFoundException"),
        ):
            try:
                call(repositoryName=name)
            except client.exceptions.ClientError as exc:
                if exc.response["Error"]["Code"] != missing:
                    raise
        client.list_tags_for_resource(resourceArn=repository["repositoryArn"])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(read, repositories))
    return calls


def _environment(bytecode: Path | None = None) -> dict[str, str]:
    """The processes' environment: dummy credentials; with ``bytecode``, that directory
    as their bytecode cache (written by the first run, read by the next)."""
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR"):
        env.pop(key, None)
    if bytecode is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode)
    return env


def _timed(
    command: list[str], stdout: Any, cwd: Path = CHECKOUT, bytecode: Path | None = None
) -> float:
    started = time.perf_counter()
    subprocess.run(
        command,
        check=False,
        stdout=stdout,
        stderr=subprocess.DEVNULL,
        cwd=cwd,
        env=_environment(bytecode),
    )
    return time.perf_counter() - started


def scan_command(checkout: Path, endpoint_url: str, snapshots: Path) -> list[str]:
    """``hygiene scan --format json`` of ``checkout`` (its own virtual environment's
    ``hygiene`` and its ``rules/``) against ``endpoint_url``."""
    hygiene = (
        Path(sys.executable).with_name("hygiene")
        if checkout == CHECKOUT
        else checkout / ".venv" / "bin" / "hygiene"
    )
    return [
        str(hygiene),
        "scan",
        "--endpoint-url",
        endpoint_url,
        "--region",
        "us-east-1",
        "--rules-dir",
        str(checkout / "rules"),
        "--format",
        "json",
        "--snapshot-dir",
        str(snapshots),
        "--no-progress",
        "--fail-on",
        "never",
    ]


def run_size(
    repositories: int,
    images: int,
    latency: float,
    repeat: int,
    baseline: Path | None = None,
    *,
    bytecode_cache: bool = True,
) -> dict[str, Any]:
    from functools import partial

    from hygiene_demo.faults import FaultProxy
    from hygiene_demo.registry import EmbeddedRegistry
    from hygiene_demo.scale import seed_scale_registry

    work = Path(tempfile.mkdtemp(prefix="hygiene-scan-bench-"))
    timed = partial(_timed, bytecode=work / "bytecode" if bytecode_cache else None)
    floors: list[float] = []
    scans: list[float] = []
    baseline_scans: list[float] = []
    with EmbeddedRegistry() as registry:
        registry.reset()  # moto's registry is one per process: a size seeded before is gone
        manifest = seed_scale_registry(registry, repositories, images, NOW)
        with FaultProxy(registry.endpoint_url, latency=latency) as proxy:
            floor_command = [sys.executable, "-m", "benchmarks.scan", "--floor", proxy.endpoint_url]
            this_scan = scan_command(CHECKOUT, proxy.endpoint_url, work / "snapshots")
            base_scan = (
                scan_command(baseline, proxy.endpoint_url, work / "snapshots")
                if baseline is not None
                else None
            )
            # warm-up, not timed: disk caches, and moto, which loads the emulation of
            # ECS, Lambda and Batch when first asked (the floor never asks; the scan's
            # in-use discovery does, ~1 s the first time)
            with open(work / "floor.txt", "w") as out:
                timed(floor_command, out)
            with open(work / "scan.json", "w") as out:
                timed(this_scan, out)
            if base_scan is not None and baseline is not None:
                with open(work / "baseline.json", "w") as out:
                    timed(base_scan, out, cwd=baseline)
            before = sum(proxy.requests.values())
            for _ in range(repeat):
                with open(work / "floor.txt", "w") as out:
                    floors.append(timed(floor_command, out))
                floor_requests = sum(proxy.requests.values()) - before
                before = sum(proxy.requests.values())
                with open(work / "scan.json", "w") as out:
                    scans.append(timed(this_scan, out))
                scan_requests = sum(proxy.requests.values()) - before
                if base_scan is not None and baseline is not None:
                    with open(work / "baseline.json", "w") as out:
                        baseline_scans.append(timed(base_scan, out, cwd=baseline))
                before = sum(proxy.requests.values())
    document = json.loads((work / "scan.json").read_text())
    floor_calls = json.loads((work / "floor.txt").read_text())
    shutil.rmtree(work)
    compared: dict[str, Any] = {}
    if baseline_scans:
        baseline_median = statistics.median(baseline_scans)
        compared = {
            "baseline": str(baseline),
            "baseline_seconds": [round(s, 2) for s in baseline_scans],
            "baseline_median": round(baseline_median, 2),
            "baseline_ratio": round(baseline_median / statistics.median(floors), 3),
        }
    return {
        "repositories": repositories,
        "images": len(manifest.images),
        "latency_ms": latency * 1000,
        "floor_calls": floor_calls,
        "floor_requests": floor_requests,
        "scan_requests": scan_requests,
        "scan_images": document["inventory"]["images"],
        "scan_complete": document["run"]["complete"],
        "floor_seconds": [round(s, 2) for s in floors],
        "scan_seconds": [round(s, 2) for s in scans],
        "floor_median": round(statistics.median(floors), 2),
        "scan_median": round(statistics.median(scans), 2),
        "ratio": round(statistics.median(scans) / statistics.median(floors), 3),
        "bytecode_cache": bytecode_cache,
        **compared,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scan",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", nargs="*", default=["200x50", "1000x100"])
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="CHECKOUT",
        help="another checkout (with its .venv) whose hygiene scan runs in the same sitting, "
        "after this one's each time: an A/B comparison on a shared machine",
    )
    parser.add_argument(
        "--no-bytecode-cache",
        dest="bytecode_cache",
        action="store_false",
        help="no bytecode cache of the sitting: the processes compile what the calling "
        "environment says (with PYTHONDONTWRITEBYTECODE=1, every module without bytecode "
        "is compiled in every run)",
    )
    parser.add_argument("--floor", metavar="ENDPOINT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor:
        print(json.dumps(floor_scan(args.floor), sort_keys=True))
        return 0
    results = []
    for size in args.sizes:
        repositories, images = (int(v) for v in size.lower().split("x"))
        result = run_size(
            repositories,
            images,
            args.latency,
            args.repeat,
            args.baseline,
            bytecode_cache=args.bytecode_cache,
        )
        results.append(result)
        print(
            f"{repositories:,} repositories × {images} images ({result['images']:,} images, "
            f"{result['latency_ms']:.0f} ms a request): floor {result['floor_median']:.2f} s "
            f"({result['floor_requests']:,} requests; runs {result['floor_seconds']}), "
            f"hygiene scan {result['scan_median']:.2f} s ({result['scan_requests']:,} requests; "
            f"runs {result['scan_seconds']}; bytecode cache "
            f"{'on' if result['bytecode_cache'] else 'off'})",
            flush=True,
        )
    print(json.dumps(results, indent=2))
    for result in results:
        size = f"{result['repositories']}×{result['images'] // result['repositories']}"
        if "baseline_ratio" in result:
            print(
                f"baseline {size}: {result['baseline']} hygiene scan / floor = "
                f"{result['baseline_ratio']:.2f} (runs {result['baseline_seconds']})"
            )
        print(f"ratio {size}: hygiene scan / floor = {result['ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
