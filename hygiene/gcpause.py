"""Pausing Python's cyclic garbage collector while a scan is processed.

An inventory holds millions of container objects (tag lists, child lists) and each stage
after it builds hundreds of thousands more (findings, evidence entries, report rows).
Every collection of the oldest generation walks all of them: at a million images the
collector took more time than the work itself (docs/benchmarks.md). Nothing in these
stages builds reference cycles worth collecting, and reference counting still frees
memory as it goes; the collector runs again when the block ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc(*, resume: bool = True) -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (nested blocks: the outermost
    one turns it back on). ``resume=False`` leaves it off: for a process that ends with
    the block (:mod:`hygiene.cli.ending`), whose first collection after the block would
    walk every object it made only to find nothing to free."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled and resume:
            gc.enable()
