"""Where a benchmarked process's time goes, seen from the endpoint it talks to.

:class:`TimedProxy` is the scan benchmark's endpoint (:class:`FaultProxy`, same latency
and moto) that also stamps every request: when it arrived, when its answer was made, and
whether it was ECR's (``X-Amz-Target`` of ECR's API). :func:`run_timed` starts one
process, samples its CPU and the server's (this process: moto and the proxy run in it)
while it runs, reaps it with ``wait4`` and splits its wall time into three phases:

- ``before``: process start → the first request arrives (imports, configuration,
  clients);
- ``reads``: the first request → the last ECR answer is made (the registry's reads);
- ``after``: the last ECR answer → the process has exited (in-use discovery, rules,
  plan, the document, the exit).

CPU is given in total (the child's from ``wait4``, the server's from
``time.process_time`` of this process) and per phase, from samples of
``/proc/<pid>/stat`` and ``time.process_time`` taken every ``SAMPLE_EVERY`` seconds (a
phase's CPU is exact to about one sample and one clock tick, 10 ms; without ``/proc`` the
per-phase split is left out).

:func:`orders` is the order of the programs round by round: rotated by one place each
round, the direction reversed every ``len(programs)`` rounds, so that over
``2 × len(programs)`` rounds each program runs in each place, and after each other
program, equally often (none is always first or always last).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from hygiene_demo.faults import FaultProxy

ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921."  # X-Amz-Target of ECR's API
PHASES = ("before", "reads", "after")
SAMPLE_EVERY = 0.02
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

Stamp = tuple[float, float, bool]  # (arrived, answered, ECR's), perf_counter seconds
Sample = tuple[float, float, float]  # (when, child's CPU, server's CPU since the start)


class TimedProxy(FaultProxy):
    """A :class:`FaultProxy` that stamps each request (:meth:`take` hands them over)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stamps: list[Stamp] = []
        self._stamps_lock = threading.Lock()

    def middleware(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        inner = super().middleware(app)

        def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            arrived = time.perf_counter()
            answer = inner(environ, start_response)
            try:
                body = list(answer)  # the answer is made once its body is
            finally:
                close = getattr(answer, "close", None)
                if close is not None:
                    close()
            ecr = environ.get("HTTP_X_AMZ_TARGET", "").startswith(ECR_TARGET)
            with self._stamps_lock:
                self._stamps.append((arrived, time.perf_counter(), ecr))
            return body

        return serve

    def __enter__(self) -> TimedProxy:
        self.start()
        return self

    def take(self) -> list[Stamp]:
        """The stamps since the last call, in the order the answers were made."""
        with self._stamps_lock:
            stamps, self._stamps = self._stamps, []
        return stamps


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (all its threads), from
    ``/proc``; None when it cannot be read (no ``/proc``, or the process is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)


class _Sampler(threading.Thread):
    """Samples the child's CPU and this process's every ``SAMPLE_EVERY`` seconds."""

    def __init__(self, pid: int, server_start: float) -> None:
        super().__init__(name="cpu-sampler", daemon=True)
        self.pid = pid
        self.server_start = server_start
        self.samples: list[Sample] = []
        self._done = threading.Event()

    def run(self) -> None:
        while True:
            cpu = process_cpu(self.pid)
            if cpu is not None:
                server = time.process_time() - self.server_start
                self.samples.append((time.perf_counter(), cpu, server))
            if self._done.wait(SAMPLE_EVERY):
                return

    def stop(self) -> None:
        self._done.set()
        self.join()


def _at(samples: Sequence[Sample], when: float, column: int) -> float:
    """The sampled value of ``column`` at ``when``: the last sample taken by then."""
    value = 0.0
    for sample in samples:
        if sample[0] > when:
            break
        value = sample[column]
    return value


def phases(
    started: float,
    ended: float,
    stamps: Sequence[Stamp],
    cpu: float,
    server_cpu: float,
    samples: Sequence[Sample] = (),
) -> dict[str, Any]:
    """One run's timeline: wall seconds of each phase (they add up to ``wall``), the
    requests, the CPU of the child and of the server, each in total and, with
    ``samples``, per phase (``cpu_before`` …; each phase's is the difference of the
    samples at its ends, the last one's the rest of the total)."""
    ecr = [answered for _, answered, is_ecr in stamps if is_ecr]
    first = min((arrived for arrived, _, _ in stamps), default=ended)
    last = max(ecr, default=first)
    timeline: dict[str, Any] = {
        "wall": ended - started,
        "before": first - started,
        "reads": last - first,
        "after": ended - last,
        "requests": len(stamps),
        "ecr_requests": len(ecr),
        "cpu": cpu,
        "server_cpu": server_cpu,
    }
    if samples:
        for column, name, total in ((1, "cpu", cpu), (2, "server_cpu", server_cpu)):
            at_first, at_last = _at(samples, first, column), _at(samples, last, column)
            timeline[f"{name}_before"] = at_first
            timeline[f"{name}_reads"] = at_last - at_first
            timeline[f"{name}_after"] = total - at_last
    return timeline


def run_timed(
    command: Sequence[str],
    *,
    proxy: TimedProxy,
    stdout: IO[Any],
    cwd: Path,
    env: dict[str, str],
) -> dict[str, Any]:
    """Run ``command`` to its end and return its :func:`phases`; raises
    :class:`RuntimeError` when it exits with a failure (a failed run is not a time)."""
    proxy.take()  # anything before this run is not its
    server_start = time.process_time()
    started = time.perf_counter()
    process = subprocess.Popen(
        list(command), stdout=stdout, stderr=subprocess.DEVNULL, cwd=cwd, env=env
    )
    sampler = _Sampler(process.pid, server_start)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    ended = time.perf_counter()
    server_cpu = time.process_time() - server_start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    sampler.stop()
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}")
    return phases(
        started,
        ended,
        proxy.take(),
        usage.ru_utime + usage.ru_stime,
        server_cpu,
        sampler.samples,
    )


def orders(programs: Sequence[str], rounds: int) -> list[list[str]]:
    """The order of ``programs`` in each of ``rounds`` rounds: round k rotated by k
    places, reversed in every other block of ``len(programs)`` rounds."""
    n = len(programs)
    result = []
    for k in range(rounds):
        turn = k % n
        order = [*programs[turn:], *programs[:turn]]
        result.append(order[::-1] if (k // n) % 2 else order)
    return result
