"""Start-up of the command line: ``python -m benchmarks.startup``.

Runs ``hygiene --help``, ``hygiene rules`` and ``hygiene rules IM002`` (with the
checkout's ``rules/``) in fresh processes, ``--repeat`` times each after one warm-up run
(disk caches), and prints the median, minimum and maximum wall time of each, the median
of the processes' CPU time, and the load average before and after: the machine is shared,
so read the figures with the load (the CPU time moves less with it).

``--checkout`` runs another checkout's code (its directory first on ``PYTHONPATH``, its
``rules/``) with this interpreter and its packages, to compare before and after.

The runs of a command share a bytecode cache (``PYTHONPYCACHEPREFIX`` in a temporary
directory) that the warm-up run writes, as ``python -m benchmarks.scan`` does: an installed
package has its bytecode (pip compiles it at install), but a checkout run with
``PYTHONDONTWRITEBYTECODE=1`` (this machine's environment) compiled every module of
``hygiene`` it imports from source in every run, and the figures before round 9 include
that. ``--no-bytecode-cache`` measures the old way.

    python -m benchmarks.startup
    python -m benchmarks.startup --repeat 15
    python -m benchmarks.startup --checkout ../main
    python -m benchmarks.startup --no-bytecode-cache
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
COMMANDS = (["--help"], ["rules"], ["rules", "IM002"])


def _load() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def environment(checkout: Path, bytecode: Path | None = None) -> dict[str, str]:
    """The runs' environment: ``checkout``'s code and rules; with ``bytecode``, that
    directory as their bytecode cache (written by the warm-up, read by the runs)."""
    env = {**os.environ, "HYGIENE_RULES_DIR": str(checkout / "rules"), "PYTHONPATH": str(checkout)}
    if bytecode is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode)
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timings(
    python: str,
    checkout: Path,
    argv: list[str],
    repeat: int,
    bytecode: Path | None = None,
    cpu: list[float] | None = None,
) -> list[float]:
    """Wall seconds of ``python -m hygiene <argv>`` run ``repeat`` times (after one warm-up),
    and each run's CPU seconds appended to ``cpu``; raises when the command fails."""
    command = [python, "-m", "hygiene", *argv]
    env = environment(checkout, bytecode)
    runs = []
    for attempt in range(repeat + 1):
        started, used = time.perf_counter(), _children_cpu()
        subprocess.run(command, check=True, cwd=checkout, env=env, stdout=subprocess.DEVNULL)
        if attempt:
            runs.append(time.perf_counter() - started)
            if cpu is not None:
                cpu.append(_children_cpu() - used)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.startup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--checkout", type=Path, default=CHECKOUT)
    parser.add_argument(
        "--no-bytecode-cache",
        dest="bytecode_cache",
        action="store_false",
        help="no bytecode cache: the runs compile what the calling environment says (with "
        "PYTHONDONTWRITEBYTECODE=1, every module of the checkout in every run)",
    )
    args = parser.parse_args(argv)
    print(f"load average before: {_load()}")
    with tempfile.TemporaryDirectory(prefix="hygiene-startup-bench-") as work:
        bytecode = Path(work) / "bytecode" if args.bytecode_cache else None
        for command in COMMANDS:
            cpu: list[float] = []
            runs = timings(
                sys.executable, args.checkout.resolve(), command, args.repeat, bytecode, cpu
            )
            print(
                f"hygiene {' '.join(command):12} median {statistics.median(runs):.3f} s "
                f"(min {min(runs):.3f}, max {max(runs):.3f}; {len(runs)} runs; "
                f"CPU median {statistics.median(cpu):.3f} s)",
                flush=True,
            )
    print(f"bytecode cache {'on' if args.bytecode_cache else 'off'}")
    print(f"load average after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
