"""Measure a demo scan: API calls against the minimum, and wall time.

``python -m benchmarks.collector [--repeat N]``, from the top of the checkout, seeds the
embedded registry (same data as ``hygiene demo``; needs the ``demo`` extra), scans it with
the production collector and prints, per operation, the calls made and the minimum any
collector needs:

- DescribeRepositories: ceil(R / 1000)
- DescribeImages: Σ_r ceil(I_r / 1000) (at least one call per repository, even empty)
- GetLifecyclePolicy, GetRepositoryPolicy, ListTagsForResource: one per repository
  (these settings are not in DescribeRepositories)
- GetRegistryScanningConfiguration: one per region
- BatchGetImage: Σ_r ceil(X_r / 100) where X_r is the image indexes of repository r
  (their children are only listed in the manifest). Referrers whose subject ECR does
  not report in ``subjectManifestDigest`` cost extra reads on top of this.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from datetime import UTC, datetime

from hygiene.config import load_config
from hygiene.inventory import Inventory
from hygiene.scan import collect, open_registry
from hygiene_demo.registry import EmbeddedRegistry
from hygiene_demo.seed import seed_lab_registry


def minimum_calls(inventory: Inventory) -> dict[str, int]:
    images = inventory.images
    repos = inventory.repositories
    per_repo = images.groupby("repository", observed=True).size()
    counts = [int(per_repo.get(name, 0)) for name in repos["name"]]
    must_read = images[images["is_index"]]
    read_per_repo = must_read.groupby("repository", observed=True).size()
    regions = repos["region"].nunique()
    return {
        "DescribeRepositories": max(1, math.ceil(len(repos) / 1000)) * max(1, regions),
        "DescribeImages": sum(max(1, math.ceil(n / 1000)) for n in counts),
        "BatchGetImage": int(sum(math.ceil(n / 100) for n in read_per_repo)),
        "GetLifecyclePolicy": len(repos),
        "GetRepositoryPolicy": len(repos),
        "ListTagsForResource": len(repos),
        "GetRegistryScanningConfiguration": max(1, regions),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.collector", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    config = load_config()
    now = datetime.now(UTC)
    walls: list[float] = []
    with EmbeddedRegistry(config.policy.registry.account or "123456789012") as registry:
        seed_lab_registry(registry, config.projects, now)
        for _ in range(args.repeat):
            handle = open_registry(
                config, endpoint_url=registry.endpoint_url, session=registry.session()
            )
            start = time.perf_counter()
            inventory = collect(handle, config, now=now, progress=False)
            walls.append(time.perf_counter() - start)
    made = inventory.run.api_calls
    minimum = minimum_calls(inventory)
    print(f"registry: {len(inventory.repositories)} repositories, {len(inventory.images)} images")
    print(f"{'operation':36} {'calls':>6} {'minimum':>8}")
    for op in sorted(set(made) | set(minimum)):
        print(f"{op:36} {made.get(op, 0):>6} {minimum.get(op, 0):>8}")
    print(f"{'total':36} {sum(made.values()):>6} {sum(minimum.values()):>8}")
    print(
        f"wall time of the scan over {args.repeat} runs: median {statistics.median(walls):.2f} s, "
        f"min {min(walls):.2f} s, max {max(walls):.2f} s "
        f"(max_workers={config.policy.collect.max_workers})"
    )


if __name__ == "__main__":
    main()
