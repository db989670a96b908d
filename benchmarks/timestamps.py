"""The collector's reads with botocore's timestamp parser and with the tool's:
``python -m benchmarks.timestamps``.

Serves a seeded embedded registry (:mod:`hygiene_demo.scale`, no injected latency) and,
alternating, reads it whole with the production collector (``collect_inventory``, 8
workers) in fresh processes: once through a plain ``boto3.Session`` (botocore's
``parse_timestamp``: a ``dateutil`` local zone per time) and once through the tool's
session (:mod:`hygiene.collect.timestamps`: the same instant in UTC, in C). Prints each
process's CPU, peak RSS and minor page faults (``wait4``), medians per variant, and
checks the two inventories are equal.

    python -m benchmarks.timestamps                          # 1,000 × 100, 3 rounds
    python -m benchmarks.timestamps --size 200x50 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.scan import NOW, _environment

VARIANTS = ("botocore", "tool")


def read_once(endpoint_url: str, variant: str, out: Path) -> None:
    """In the child: read the registry with ``variant``'s session; write a digest of the
    inventory (to compare the two) to ``out``."""
    import hashlib

    import boto3
    import pandas as pd

    from hygiene.collect.ecr import collect_inventory
    from hygiene.collect.session import ecr_client
    from hygiene.collect.timestamps import new_session
    from hygiene.config import CollectSettings

    options: dict[str, Any] = {
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "region_name": "us-east-1",
    }
    session = boto3.Session(**options) if variant == "botocore" else new_session(**options)
    settings = CollectSettings(max_workers=8)
    client = ecr_client(session, "us-east-1", settings, endpoint_url)
    inventory = collect_inventory({"us-east-1": client}, settings)
    digest = hashlib.sha256()
    for frame in (inventory.images, inventory.repositories):
        digest.update(pd.util.hash_pandas_object(frame.astype(str), index=False).values)
    out.write_text(json.dumps({"images": len(inventory.images), "hash": digest.hexdigest()}))


def _child(endpoint_url: str, variant: str, out: Path) -> dict[str, float]:
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.timestamps", "--child", endpoint_url, variant, str(out)],
        env=_environment(),
    )
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the {variant} read failed")
    return {
        "cpu": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_mib": usage.ru_maxrss // 1024,
        "faults": usage.ru_minflt,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.timestamps",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", default="1000x100", help="repositories x images")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        read_once(args.child[0], args.child[1], Path(args.child[2]))
        return 0

    from hygiene_demo.registry import EmbeddedRegistry
    from hygiene_demo.scale import seed_scale_registry

    repositories, images = (int(part) for part in args.size.split("x"))
    runs: dict[str, list[dict[str, float]]] = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory() as work, EmbeddedRegistry() as registry:
        registry.reset()
        seed_scale_registry(registry, repositories, images, NOW)
        outputs = {variant: Path(work) / f"{variant}.json" for variant in VARIANTS}
        for round_ in range(args.repeat + 1):  # the first round warms up, not counted
            order = VARIANTS if round_ % 2 else VARIANTS[::-1]
            for variant in order:
                run = _child(registry.endpoint_url, variant, outputs[variant])
                if round_:
                    runs[variant].append(run)
                    print(variant, run, flush=True)
        documents = {variant: json.loads(outputs[variant].read_text()) for variant in VARIANTS}
    if documents["botocore"] != documents["tool"]:
        raise SystemExit(f"the inventories differ: {documents}")
    print(f"{repositories} × {images}: {documents['tool']['images']:,} images, equal inventories")
    for variant in VARIANTS:
        medians = {
            key: statistics.median(run[key] for run in runs[variant])
            for key in ("cpu", "peak_mib", "faults")
        }
        print(
            f"{variant:9s} CPU {medians['cpu']:.2f} s  peak {medians['peak_mib']:.0f} MiB  "
            f"minor faults {medians['faults']:,.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
