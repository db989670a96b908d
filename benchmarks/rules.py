"""Benchmark of the rules engine: ``python -m benchmarks.rules`` (``make bench``).

Builds a synthetic registry (default 1,000,000 images in 10,000 repositories, plus
smaller sizes to show how cost grows), evaluates every rule on it and prints wall time
and peak resident memory. Each size runs in a fresh process so its peak memory is its
own. The registry is realistic in shape: skewed repository sizes, multi-arch indexes
with platform manifests, cosign signatures (some orphaned), dangling untagged images,
mixed tag schemes, half the images never pulled, fragmented and unregistered namespaces.

Run from the top of the checkout (``benchmarks`` is a folder there, not an installed
package):

    python -m benchmarks.rules                      # 100k, 250k, 500k, 1M
    python -m benchmarks.rules --sizes 1000000      # one size
    python -m benchmarks.rules --sizes 1000000 --in-use   # an image in use in every repository
    python -m benchmarks.rules --images 200000 --repositories 2000 --worker   # JSON, one run
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hygiene.config import Config, Policy, Project, ProjectsRegistry
from hygiene.inventory import (
    IMAGE_DTYPES,
    INDEX_MEDIA_TYPES,
    Inventory,
    RunInfo,
    build_repositories,
    coerce,
)

CHECKOUT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
ACCOUNT = "851296927411"
REGION = "us-east-1"
PROJECTS = ("suporte", "ml", "eureca", "bigsea", "labs")
NAMESPACES = (
    *PROJECTS,
    "suporte-cloud",
    "suporte_services",
    "big-sea",
    "eureca-api",
    "eureca-web",
    "suport",
    "thesis",
    "ops",
)
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = sorted(INDEX_MEDIA_TYPES)[0]


def synthetic_inventory(n_images: int, n_repositories: int, seed: int = 7) -> Inventory:
    """A registry of about ``n_images`` images in ``n_repositories`` repositories."""
    rng = np.random.default_rng(seed)
    # units: 0 = single image, 1 = multi-arch index + 2 manifests, 2 = image + signature
    kinds = rng.choice(3, size=n_images, p=[0.72, 0.12, 0.16])
    sizes = np.array([1, 3, 2])[kinds]
    count = int(np.searchsorted(np.cumsum(sizes), n_images)) + 1
    kinds, sizes = kinds[:count], sizes[:count]
    weights = rng.pareto(1.2, n_repositories) + 0.2
    unit_repo = rng.choice(n_repositories, size=count, p=weights / weights.sum())
    unit_age = rng.uniform(0, 730, size=count)  # days since push
    pulled = rng.random(count) < 0.5
    unit_pull_age = np.where(pulled, unit_age * rng.random(count), np.nan)
    dangling = (kinds == 0) & (rng.random(count) < 0.15)

    unit_of = np.repeat(np.arange(count), sizes)
    position = np.arange(len(unit_of)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    n = len(unit_of)
    kind = kinds[unit_of]
    role = np.select(
        [kind == 0, (kind == 1) & (position == 0), kind == 1, position == 0],
        ["image", "index", "child", "image"],
        default="signature",
    )
    digests = np.array([f"sha256:{i:064x}" for i in range(n)], dtype=object)
    first = np.cumsum(sizes) - sizes  # row of each unit's first image
    repo = unit_repo[unit_of]

    # tags: release tags ranked by push time within a repository; latest on the newest
    top = (role == "image") | (role == "index")
    tagged = top & ~dangling[unit_of]
    order = np.lexsort((unit_age[unit_of], repo))
    rank = np.zeros(n, dtype=np.int64)
    ranked = order[tagged[order]]
    rank[ranked] = pd.Series(repo[ranked]).groupby(repo[ranked]).cumcount().to_numpy() + 1
    scheme = (repo % 10)[:, None] == np.arange(10)
    tags: list[list[str]] = [[] for _ in range(n)]
    for row in np.flatnonzero(tagged).tolist():
        r = int(rank[row])
        if scheme[row, 9] and r % 7 == 0:
            tags[row] = [f"v1.{r}.0"]  # a repository with a mixed scheme
        elif scheme[row, 8]:
            tags[row] = [f"2025{(r % 12) + 1:02d}{(r % 28) + 1:02d}"]
        else:
            tags[row] = [f"1.{r}.0", f"sha-{row:07x}"]
        if r == 1:
            tags[row].append("latest")
        if r % 50 == 0:
            tags[row].append(f"prod-{r}")
    signatures = np.flatnonzero(role == "signature")
    subjects = first[unit_of[signatures]]
    orphan = rng.random(len(signatures)) < 0.05
    for row, subject, gone in zip(
        signatures.tolist(), subjects.tolist(), orphan.tolist(), strict=True
    ):
        target = f"{n + row:064x}" if gone else digests[subject][len("sha256:") :]
        tags[row] = [f"sha256-{target}.sig"]

    children: list[list[str]] = [[] for _ in range(n)]
    parents: list[list[str]] = [[] for _ in range(n)]
    for row in np.flatnonzero(role == "index").tolist():
        children[row] = [digests[row + 1], digests[row + 2]]
        parents[row + 1] = parents[row + 2] = [digests[row]]

    names = _repository_names(n_repositories, rng)
    repo_names = names[repo]
    namespaces = np.array(
        [name.split("/")[0] if "/" in name else None for name in names], dtype=object
    )[repo]
    now = pd.Timestamp(NOW)
    pushed = now - pd.to_timedelta(unit_age[unit_of], unit="D")
    last_pull = now - pd.to_timedelta(unit_pull_age[unit_of], unit="D")
    size = rng.integers(10_000_000, 500_000_000, size=n)
    is_index = role == "index"
    signature_subject = np.full(n, None, dtype=object)
    for row in signatures.tolist():
        signature_subject[row] = "sha256:" + tags[row][0][len("sha256-") : len("sha256-") + 64]
    frame = pd.DataFrame(
        {
            "account": ACCOUNT,
            "region": REGION,
            "repository": repo_names,
            "namespace": namespaces,
            "digest": digests,
            "tags": tags,
            "tag_count": [len(t) for t in tags],
            "pushed_at": pushed,
            "last_pull": last_pull,
            "size_bytes": size,
            "storage_bytes": np.where(is_index, 0, size),
            "manifest_media_type": np.where(is_index, INDEX, MANIFEST),
            "artifact_media_type": None,
            "status": "ACTIVE",
            "is_index": is_index,
            "child_digests": children,
            "parent_indexes": parents,
            "subject_digest": signature_subject,
            "is_signature_tag": role == "signature",
        }
    )
    images = coerce(frame, IMAGE_DTYPES)
    repositories = build_repositories(_repository_records(names, rng), images)
    return Inventory(images, repositories, RunInfo(id="bench", started_at=NOW, source="bench"))


def _repository_names(count: int, rng: np.random.Generator) -> np.ndarray:
    namespace = rng.choice(len(NAMESPACES), size=count, p=_namespace_weights())
    names = []
    for i, ns in enumerate(namespace.tolist()):
        if i % 200 == 0:
            names.append(f"tool{i}")  # outside any namespace
        elif i % 97 == 0:
            names.append(f"{NAMESPACES[ns]}/team{i % 5}/svc_{i}")  # naming convention
        else:
            names.append(f"{NAMESPACES[ns]}/team{i % 7}/svc-{i}")
    return np.array(names, dtype=object)


def _namespace_weights() -> np.ndarray:
    weights = np.array([8, 6, 6, 4, 4] + [1] * (len(NAMESPACES) - 5), dtype=float)
    return weights / weights.sum()


def _repository_records(names: np.ndarray, rng: np.random.Generator) -> list[dict[str, Any]]:
    records = []
    for i, name in enumerate(names.tolist()):
        policy = None
        if i % 250 == 0:
            policy = json.dumps(
                {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}]}
            )
        records.append(
            {
                "account": ACCOUNT,
                "region": REGION,
                "name": name,
                "namespace": name.split("/")[0] if "/" in name else None,
                "created_at": NOW - pd.Timedelta(days=int(rng.integers(1, 1500))),
                "tag_mutability": "MUTABLE" if i % 3 == 0 else "IMMUTABLE",
                "scan_on_push": i % 4 != 0,
                "encryption": "AES256" if i % 2 else "KMS",
                "kms_key": None if i % 2 else f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k{i}",
                "lifecycle_policy": None if i % 5 == 0 else '{"rules": []}',
                "repository_policy": policy,
                "resource_tags": {"hygiene:keep": "true"} if i % 500 == 0 else {},
                "scan_error": "ThrottlingException" if i % 1000 == 999 else None,
            }
        )
    return records


def bench_config() -> Config:
    return Config(
        policy=Policy(),
        projects=ProjectsRegistry(
            projects={p: Project(owners=[f"owner.{p}@lsd.ufcg.edu.br"]) for p in PROJECTS}
        ),
    )


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def in_use_everywhere(inventory: Inventory) -> pd.DataFrame:
    """The heavy case of the in-use rules (``--in-use``): the oldest image of every
    repository is named by a workload, and every repository with a lifecycle policy
    carries the tool's generated one (which RP004 previews on every such repository).
    Changes ``inventory``'s policies; returns the in-use references."""
    from hygiene.inventory import build_in_use
    from hygiene.lifecycle.generate import generate_policy

    repositories = inventory.repositories
    text = generate_policy(bench_config(), repository="x/y").text
    policies = repositories["lifecycle_policy"].astype(object)
    repositories["lifecycle_policy"] = policies.where(policies.isna(), text)
    oldest = inventory.images.sort_values("pushed_at").drop_duplicates("repository")
    return build_in_use(
        {"source": "file", "where": f"in-use.txt:{n}", "account": ACCOUNT, "region": REGION,
         "repository": repository, "tag": None, "digest": digest, "running": False}
        for n, (repository, digest) in enumerate(
            zip(oldest["repository"].astype(str), oldest["digest"].astype(str), strict=True)
        )
    )  # fmt: skip


def run_once(n_images: int, n_repositories: int, *, in_use: bool = False) -> dict[str, Any]:
    from hygiene.inventory import build_in_use
    from hygiene.rules import evaluate

    started = time.perf_counter()
    inventory = synthetic_inventory(n_images, n_repositories)
    uses = in_use_everywhere(inventory) if in_use else build_in_use([])
    built = time.perf_counter() - started
    rss_before = _peak_rss_mib()
    started = time.perf_counter()
    cpu = time.process_time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    evaluation = evaluate(inventory, bench_config(), NOW, in_use=uses)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "images": len(inventory.images),
        "repositories": len(inventory.repositories),
        "build_seconds": round(built, 2),
        "evaluate_seconds": round(seconds, 2),
        "evaluate_cpu_seconds": round(cpu, 2),
        "evaluate_user_seconds": round(after.ru_utime - usage.ru_utime, 2),
        "evaluate_system_seconds": round(after.ru_stime - usage.ru_stime, 2),
        "evaluate_page_faults": after.ru_minflt - usage.ru_minflt,
        "peak_rss_mib_before_evaluate": round(rss_before),
        "peak_rss_mib": round(_peak_rss_mib()),
        "findings": len(evaluation.findings),
        "kept": len(evaluation.kept),
        "by_rule": evaluation.counts(),
        "timings": evaluation.timings,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.rules",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[100_000, 250_000, 500_000, 1_000_000]
    )
    parser.add_argument("--images", type=int, help="with --worker: images in the one run")
    parser.add_argument("--repositories", type=int, help="with --worker: repositories")
    parser.add_argument(
        "--in-use",
        action="store_true",
        help="the oldest image of every repository in use, every policy the generated one",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_once(args.images, args.repositories, in_use=args.in_use)))
        return 0
    results = []
    for size in args.sizes:
        repositories = max(size // 100, 10)
        output = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.rules",
                "--worker",
                "--images",
                str(size),
                "--repositories",
                str(repositories),
                *(["--in-use"] if args.in_use else []),
            ],
            check=True,
            capture_output=True,
            text=True,
            cwd=CHECKOUT,
        ).stdout
        result = json.loads(output.strip().splitlines()[-1])
        results.append(result)
        print(
            f"{result['images']:>9,} images {result['repositories']:>6,} repos: "
            f"evaluate {result['evaluate_seconds']:6.2f} s "
            f"(CPU {result['evaluate_cpu_seconds']:.2f} s), peak RSS "
            f"{result['peak_rss_mib']:>6,} MiB (inventory alone "
            f"{result['peak_rss_mib_before_evaluate']:,} MiB), "
            f"{result['findings']:,} findings, {result['kept']:,} kept",
            flush=True,
        )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
