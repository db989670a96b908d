"""The scan document written plainly and with its written pages let go:
``python -m benchmarks.dropbehind``.

Builds the synthetic registry of :mod:`benchmarks.rules`, evaluates and plans it as
``hygiene scan`` does, then writes the scan document (``ScanResult.write_json``) several
times each way, turning the order round by round (plain then let go, let go then plain,
…): plainly (``path.open("wb")``) and through :func:`hygiene.dropbehind.open_for_writing`,
as ``hygiene scan --format json > file`` writes it. Every write goes to a new file, kept
until the end, so neither way reuses the pages the other's deleted file freed. Prints
wall, user and system seconds of each write, the medians per way, and checks that both
ways wrote the same bytes.

    python -m benchmarks.dropbehind                       # 1M images, 3 rounds
    python -m benchmarks.dropbehind --images 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.rules import NOW, bench_config, synthetic_inventory

WAYS = ("plain", "let go")


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(2**22):
            digest.update(block)
    return digest.hexdigest()


def run(images: int, repeat: int) -> dict[str, Any]:
    """Each way's writes: ``{"plain": [(wall, user, sys), …], "let go": …, "bytes": n}``."""
    from hygiene.dropbehind import open_for_writing
    from hygiene.gcpause import paused_gc
    from hygiene.scan import evaluate

    inventory = synthetic_inventory(images, max(images // 100, 1))
    scan = evaluate(inventory, bench_config(), NOW)  # as `hygiene scan` does
    times: dict[str, list[tuple[float, float, float]]] = {way: [] for way in WAYS}
    digests: set[str] = set()
    work = Path(tempfile.mkdtemp(prefix="hygiene-dropbehind-"))
    try:
        for round_ in range(repeat):
            for way in WAYS if round_ % 2 == 0 else WAYS[::-1]:
                path = work / f"{round_}-{way.replace(' ', '-')}.json"
                before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                with (
                    paused_gc(),  # as in `hygiene scan`
                    open_for_writing(path) if way == "let go" else path.open("wb") as out,
                ):
                    scan.write_json(out)
                wall = time.perf_counter() - started
                after = resource.getrusage(resource.RUSAGE_SELF)
                user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
                times[way].append((wall, user, system))
                print(f"  {way:7} wall {wall:6.2f} s  user {user:5.2f} s  sys {system:5.2f} s")
                digests.add(_digest(path))
                size = path.stat().st_size
                gc.collect()
    finally:
        shutil.rmtree(work)
    if len(digests) != 1:
        raise SystemExit("the two ways wrote different documents")
    return {**times, "bytes": size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="writes each way")
    args = parser.parse_args(argv)
    result = run(args.images, args.repeat)
    print(f"{args.images:,} images: scan document {result['bytes'] / 2**20:,.1f} MiB, same bytes")
    for way in WAYS:
        wall, user, system = (statistics.median(t[i] for t in result[way]) for i in range(3))
        print(f"  median {way:7} wall {wall:6.2f} s  user {user:5.2f} s  sys {system:5.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
