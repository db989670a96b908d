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

Then ``--repeat`` rounds of one timed run of each program (floor, ``hygiene scan`` and,
with ``--baseline``, another checkout's ``hygiene scan``). The order changes from round
to round (:func:`benchmarks.timeline.orders`: rotated by one place each round, reversed
every other block of rounds), so no program always runs first, or always right after
another: before round 9 the floor ran first and the baseline last in every round.

Each run is timed from the endpoint's side too (:mod:`benchmarks.timeline`): the
process's start → its first request (``before``), → the last ECR answer (``reads``), →
its exit (``after``), and the CPU of the process (``wait4``) and of the server (moto
and the proxy, in this process), in total and per phase. It prints, per size, the
medians of each phase and, at the end, each round's own ratio (the scan and the floor of
the same round) and, last, the ratio of the medians ``hygiene scan / floor`` (the
issue's ratio).

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
import sys
import tempfile
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


PROGRAMS = ("floor", "scan", "baseline")
NAMES = {"floor": "floor", "scan": "hygiene scan", "baseline": "baseline"}


def run_size(
    repositories: int,
    images: int,
    latency: float,
    repeat: int,
    baseline: Path | None = None,
    *,
    bytecode_cache: bool = True,
) -> dict[str, Any]:
    """One sitting at one size: an untimed run of each program, then ``repeat`` rounds of
    one timed run of each, in :func:`benchmarks.timeline.orders` order."""
    from benchmarks.timeline import TimedProxy, orders, run_timed
    from hygiene_demo.registry import EmbeddedRegistry
    from hygiene_demo.scale import seed_scale_registry

    work = Path(tempfile.mkdtemp(prefix="hygiene-scan-bench-"))
    env = _environment(work / "bytecode" if bytecode_cache else None)
    programs = PROGRAMS if baseline is not None else PROGRAMS[:2]
    runs: dict[str, list[dict[str, Any]]] = {program: [] for program in programs}
    rounds = orders(programs, repeat)
    try:
        with EmbeddedRegistry() as registry:
            registry.reset()  # moto's registry is one per process: a size seeded before is gone
            manifest = seed_scale_registry(registry, repositories, images, NOW)
            with TimedProxy(registry.endpoint_url, latency=latency) as proxy:
                url = proxy.endpoint_url
                commands = {
                    "floor": ([sys.executable, "-m", "benchmarks.scan", "--floor", url], CHECKOUT),
                    "scan": (scan_command(CHECKOUT, url, work / "snapshots"), CHECKOUT),
                }
                if baseline is not None:
                    commands["baseline"] = (
                        scan_command(baseline, url, work / "snapshots"),
                        baseline,
                    )
                outputs = {"floor": "floor.txt", "scan": "scan.json", "baseline": "baseline.json"}

                def run(program: str) -> dict[str, Any]:
                    command, cwd = commands[program]
                    with open(work / outputs[program], "w") as out:
                        return run_timed(command, proxy=proxy, stdout=out, cwd=cwd, env=env)

                # warm-up, not timed: disk caches, the bytecode cache, and moto, which
                # loads the emulation of ECS, Lambda and Batch when first asked (the floor
                # never asks; the scan's in-use discovery does, ~1 s the first time)
                for program in programs:
                    run(program)
                for order in rounds:
                    for program in order:
                        runs[program].append(run(program))
        document = json.loads((work / "scan.json").read_text())
        floor_calls = json.loads((work / "floor.txt").read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summary(
        runs,
        rounds,
        repositories=repositories,
        images=len(manifest.images),
        latency=latency,
        floor_calls=floor_calls,
        scan_images=document["inventory"]["images"],
        scan_complete=document["run"]["complete"],
        bytecode_cache=bytecode_cache,
        baseline=baseline,
    )


def _round(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def _median(values: list[float], digits: int = 2) -> float:
    return round(statistics.median(values), digits)


def summary(
    runs: dict[str, list[dict[str, Any]]],
    rounds: list[list[str]],
    *,
    baseline: Path | None = None,
    latency: float,
    **facts: Any,
) -> dict[str, Any]:
    """The sitting's figures from each program's runs (in round order): the medians of
    the wall times, the ratio of the medians (the issue's ratio), each round's own ratio
    (paired: the scan and the floor of the same round) and each phase's median."""
    walls = {
        program: [run["wall"] for run in program_runs] for program, program_runs in runs.items()
    }
    floor = statistics.median(walls["floor"])
    paired = [s / f for s, f in zip(walls["scan"], walls["floor"], strict=True)]
    timeline = {
        program: {
            key: _median([run[key] for run in program_runs], 3)
            for key in program_runs[0]
            if all(run.get(key) is not None for run in program_runs)
        }
        for program, program_runs in runs.items()
    }
    result: dict[str, Any] = {
        **facts,
        "latency_ms": latency * 1000,
        "floor_requests": runs["floor"][-1]["requests"],
        "scan_requests": runs["scan"][-1]["requests"],
        "order": rounds,
        "floor_seconds": [round(s, 2) for s in walls["floor"]],
        "scan_seconds": [round(s, 2) for s in walls["scan"]],
        "floor_median": round(floor, 2),
        "scan_median": _median(walls["scan"]),
        "timeline": timeline,
        "runs": {
            program: [{key: _round(value) for key, value in run.items()} for run in program_runs]
            for program, program_runs in runs.items()
        },
        "paired_ratios": [round(r, 3) for r in paired],
        "paired_ratio_median": _median(paired, 3),
        # the reads phase alone, round by round: the same requests, so ~1 when the scan
        # does nothing during its reads that slows them
        "paired_reads": [
            round(s["reads"] / f["reads"], 3)
            for s, f in zip(runs["scan"], runs["floor"], strict=True)
        ],
        "ratio": round(statistics.median(walls["scan"]) / floor, 3),
    }
    if "baseline" in runs:
        base = walls["baseline"]
        base_paired = [b / f for b, f in zip(base, walls["floor"], strict=True)]
        result.update(
            baseline=str(baseline),
            baseline_seconds=[round(s, 2) for s in base],
            baseline_median=_median(base),
            baseline_ratio=round(statistics.median(base) / floor, 3),
            baseline_paired_ratios=[round(r, 3) for r in base_paired],
            baseline_paired_ratio_median=_median(base_paired, 3),
            scan_over_baseline=[round(s / b, 3) for s, b in zip(walls["scan"], base, strict=True)],
        )
    return result


def phase_table(result: dict[str, Any]) -> str:
    """The medians of each program's timeline, one line each (seconds)."""
    lines = [
        f"{'median s':14}{'wall':>7}{'before':>8}{'reads':>8}{'after':>8}"
        f"{'CPU':>7}{'(before':>9}{'reads':>7}{'after)':>8}"
        f"{'server CPU':>12}{'(reads)':>9}"
    ]
    for program, t in result["timeline"].items():
        split = "".join(
            f"{t[key]:>7.2f}" if key in t else f"{'–':>7}"
            for key in ("cpu_before", "cpu_reads", "cpu_after")
        )
        reads = f"{t['server_cpu_reads']:>9.2f}" if "server_cpu_reads" in t else f"{'–':>9}"
        lines.append(
            f"{NAMES[program]:14}{t['wall']:>7.2f}{t['before']:>8.2f}{t['reads']:>8.2f}"
            f"{t['after']:>8.2f}{t['cpu']:>7.2f}  {split}{t['server_cpu']:>12.2f}{reads}"
        )
    return "\n".join(lines)


def _ratios(ratios: list[float]) -> str:
    return f"{', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f})"


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
        "in each round with the floor and this one's, in turn in each place: an A/B "
        "comparison on a shared machine",
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
            f"{result['latency_ms']:.0f} ms a request; requests floor "
            f"{result['floor_requests']:,}, hygiene scan {result['scan_requests']:,}; "
            f"bytecode cache {'on' if result['bytecode_cache'] else 'off'}; order of each "
            f"round {', '.join('/'.join(order) for order in result['order'])})",
            flush=True,
        )
        print(phase_table(result), flush=True)
    print(json.dumps(results, indent=2))
    for result in results:
        size = f"{result['repositories']}×{result['images'] // result['repositories']}"
        print(
            f"runs {size}: floor {result['floor_seconds']}, hygiene scan {result['scan_seconds']}"
        )
        if "baseline_ratio" in result:
            print(
                f"baseline {size}: {result['baseline']} hygiene scan / floor = "
                f"{result['baseline_ratio']:.2f} (median {result['baseline_median']:.2f} s, "
                f"runs {result['baseline_seconds']}; round by round "
                f"{_ratios(result['baseline_paired_ratios'])}; this scan / baseline round by "
                f"round {_ratios(result['scan_over_baseline'])})"
            )
        print(
            f"reads round by round {size}: hygiene scan / floor {_ratios(result['paired_reads'])}"
        )
        print(f"round by round {size}: hygiene scan / floor {_ratios(result['paired_ratios'])}")
        print(
            f"ratio {size}: hygiene scan / floor = {result['ratio']:.2f} (medians: floor "
            f"{result['floor_median']:.2f} s, hygiene scan {result['scan_median']:.2f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
