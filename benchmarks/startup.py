"""Start-up of the command line: ``python -m benchmarks.startup``.

Runs ``hygiene --help``, ``hygiene rules`` and ``hygiene rules IM002`` (with the
checkout's ``rules/``) in fresh processes, ``--repeat`` times each after one warm-up run
(disk caches), and prints the median, minimum and maximum wall time of each and the load
average before and after: the machine is shared, so read the figures with the load.

``--checkout`` runs another checkout's code (its directory first on ``PYTHONPATH``, its
``rules/``) with this interpreter and its packages, to compare before and after.

    python -m benchmarks.startup
    python -m benchmarks.startup --repeat 15
    python -m benchmarks.startup --checkout ../main
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
COMMANDS = (["--help"], ["rules"], ["rules", "IM002"])


def _load() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def timings(python: str, checkout: Path, argv: list[str], repeat: int) -> list[float]:
    """Wall seconds of ``python -m hygiene <argv>`` run ``repeat`` times (after one warm-up);
    raises when the command fails."""
    command = [python, "-m", "hygiene", *argv]
    env = {**os.environ, "HYGIENE_RULES_DIR": str(checkout / "rules"), "PYTHONPATH": str(checkout)}
    runs = []
    for attempt in range(repeat + 1):
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=checkout, env=env, stdout=subprocess.DEVNULL)
        if attempt:
            runs.append(time.perf_counter() - started)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.startup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--checkout", type=Path, default=CHECKOUT)
    args = parser.parse_args(argv)
    print(f"load average before: {_load()}")
    for command in COMMANDS:
        runs = timings(sys.executable, args.checkout.resolve(), command, args.repeat)
        print(
            f"hygiene {' '.join(command):12} median {statistics.median(runs):.3f} s "
            f"(min {min(runs):.3f}, max {max(runs):.3f}; {len(runs)} runs)",
            flush=True,
        )
    print(f"load average after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
