"""What runs alongside a scan's reads: the progress reporter and the warm-up imports
(:mod:`hygiene.scan` uses them)."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from hygiene.collect.ecr import ProgressCallback

log = logging.getLogger("hygiene.scan")  # the scan's log lines, as before this module


@contextmanager
def progress_reporter(enabled: bool | None = None) -> Iterator[ProgressCallback]:
    """A rich progress bar on a terminal, a log line every 10% elsewhere."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if enabled:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            # repository names are shown as text, never read as markup
            TextColumn("{task.description}", markup=False, style="progress.description"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task("scanning repositories", total=None)

            def advance(repository: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, description=f"{repository[:40]:40}")

            yield advance
        return

    def log_line(repository: str, done: int, total: int) -> None:
        step = max(1, total // 10)
        if done == total or done % step == 0:
            log.info("scanned %d/%d repositories", done, total)

    yield log_line


def warm_up(after: threading.Event | None = None, longest: float = 0.5) -> threading.Thread:
    """Import what evaluating a scan needs (pandas, pyarrow, the rules engine, the plan)
    in a background thread, while the registry is read: the reads wait on the network,
    the imports on the CPU. With ``after``, once it is set (``collect``'s ``reading``) or
    ``longest`` seconds have passed: the imports hold the interpreter for long stretches,
    which delays the first requests (made one after the other) where 8 reads in flight
    keep the registry busy meanwhile; a registry whose first read takes long does not
    wait for it. A later import of the same modules waits for them (Python's import
    lock)."""

    def run() -> None:
        if after is not None:
            after.wait(longest)
        import pyarrow.parquet  # noqa: F401

        import hygiene.findingchunks  # the document's findings (hygiene.jsonout's)
        import hygiene.jsonout
        import hygiene.lifecycle
        import hygiene.plan
        import hygiene.rules.engine  # noqa: F401
        from hygiene.findingtext import prepare_tables

        prepare_tables()  # the time tables the plan and the document make on first use

    thread = threading.Thread(target=run, name="warm-up", daemon=True)
    thread.start()
    return thread
