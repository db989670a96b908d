"""Ending a one-shot command's process without Python's teardown.

After ``hygiene scan`` has written its document, the process holds the whole inventory,
the findings and the proposals: hundreds of thousands of objects at 100,000 images.
Python's normal exit then frees them one by one and runs full garbage collections over
them (the interpreter's finalisation collects even when the collector is disabled), and
the collector, turned back on after :func:`hygiene.gcpause.paused_gc`, walks them once
more: about 1.5 s after a 100,000-image scan (docs/benchmarks.md, "Scan against the API
floor"), time in which the command has nothing left to say.

A command whose work is over when it returns, and which writes nothing that needs
closing (a read-only scan: its JSON is on stdout, its snapshot closed), asks for
:func:`request_fast_end`; only the console-script entry point (:func:`hygiene.cli.main`
without ``argv``, i.e. a real process) honours it. :func:`end_process` then does what
Python's exit does that anyone can see: waits for non-daemon threads, runs the ``atexit``
handlers (logging's flush, thread pools, temporary directories), flushes the standard
streams, and exits with the command's code, skipping only the freeing of memory the
operating system reclaims anyway. In-process callers (tests, ``CliRunner``) never end
early: they pass ``argv`` or invoke the click group directly.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

# exit status Python itself uses when flushing stdout fails at exit (a closed pipe)
FLUSH_FAILED = 120


class _State:
    process = False  # the console script runs: this process ends with the command
    fast = False  # the command asked for a fast end


def begin_process() -> None:
    """Called by the console-script entry point before the command runs."""
    _State.process = True
    _State.fast = False


def ends_with_process() -> bool:
    """Whether the running command's process ends when it returns (the console script,
    not a test calling the command in-process)."""
    return _State.process


def request_fast_end() -> None:
    """Ask the entry point to end the process with :func:`end_process` (no effect
    in-process)."""
    _State.fast = True


def fast_end_requested() -> bool:
    return _State.process and _State.fast


_KEPT: list[object] = []


def keep_until_end(*objects: object) -> None:
    """Hold ``objects`` until the process ends (only in a process that ends with the
    command): a command returning would otherwise free them, one object at a time,
    before :func:`end_process` could leave them to the operating system (0.1 s of a
    100,000-image scan's inventory, findings and proposals)."""
    if _State.process:
        _KEPT.extend(objects)


def end_process(code: int) -> NoReturn:
    """Exit with ``code`` after what a normal exit does that is visible outside the
    process (see the module docstring), without freeing the heap."""
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            thread.join()
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                code = code or FLUSH_FAILED
        os._exit(code)
