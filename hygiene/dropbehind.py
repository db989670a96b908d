"""Large files written without keeping them in the page cache.

At a million images a run writes gigabytes: the scan document (1.6 GiB), the report's
exports. Linux keeps every written page cached until memory runs short, so each page
written is a page of memory taken afresh. On the benchmark machine a fresh page costs
system time (writing 1.6 GiB with ``dd``: 3.7–5.2 s of ``sys`` afresh, 0.3–0.4 s with
``oflag=nocache``; docs/benchmarks.md, "Round 11: written pages let go").

:func:`open_for_writing` and :func:`stdout_writer` give a buffered binary writer that,
every :data:`WINDOW` bytes, tells the kernel with ``posix_fadvise(POSIX_FADV_DONTNEED)``
that the pages written so far will not be read again, as ``dd oflag=nocache`` does. The
kernel then starts writing them back and drops those already written back, so the next
pages reuse them. The advice never drops a page that is not yet on disk (Linux's
``generic_fadvise`` invalidates clean pages only), so nothing written is lost.

A pipe or a terminal, a system without ``posix_fadvise`` or a refused call: the file is
written as is, without advice.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

WINDOW = 32 * 2**20  # bytes written between two calls: one call per 32 MiB
BUFFER = 2**20  # the buffered writer's buffer (the scan document writes 20,000 findings a go)


def _advisable(fd: int) -> bool:
    """Whether the kernel can be advised about ``fd``'s pages: a regular file, where the
    system has ``posix_fadvise``."""
    return hasattr(os, "posix_fadvise") and stat.S_ISREG(os.fstat(fd).st_mode)


class DropBehindFile(io.FileIO):
    """A raw file that advises the kernel to drop what it has written, a window behind.

    Each call covers the pages from where the last calls left off to the end written so
    far: it starts the writeback of the newest and drops those written back since. The
    pages of the last two windows may still be on their way to disk, so they are asked
    about again at the next call; the rest are not asked again.
    """

    def __init__(self, file: str | Path | int, *, closefd: bool = True, window: int = WINDOW):
        super().__init__(file, "w", closefd=closefd)
        self.window = window
        self.advising = _advisable(self.fileno())
        self._from = self.tell() if self.advising else 0  # first byte not yet let go
        self._since = 0  # bytes written since the last call

    def write(self, data: ReadableBuffer, /) -> int:
        written = super().write(data)
        if written and self.advising:
            self._since += written
            if self._since >= self.window:
                self._since = 0
                self.let_go()
        return written

    def let_go(self) -> None:
        """Advise the kernel about the pages from where the last call left off to the end
        written so far."""
        end = self.tell()
        if end <= self._from:
            return
        try:
            os.posix_fadvise(self.fileno(), self._from, end - self._from, os.POSIX_FADV_DONTNEED)
        except OSError:  # advice refused (a file system without it): write on, unadvised
            self.advising = False
            return
        self._from = max(self._from, end - 2 * self.window)

    def close(self) -> None:
        if not self.closed and self.advising:
            self.let_go()  # the tail: starts its writeback, drops what is already written
        super().close()


def open_for_writing(path: Path, *, window: int = WINDOW) -> BinaryIO:
    """``path`` opened for writing (created or truncated), as ``path.open("wb")``, with
    the written pages let go behind the writer (:class:`DropBehindFile`)."""
    return io.BufferedWriter(DropBehindFile(path, window=window), buffer_size=BUFFER)


@contextmanager
def stdout_writer(*, window: int = WINDOW) -> Iterator[BinaryIO]:
    """A binary writer on standard output, flushed when the block ends. When standard
    output is a regular file (``hygiene scan --format json > scan.json``), a
    :class:`DropBehindFile` over the same descriptor, which stays open; otherwise
    ``sys.stdout.buffer`` itself."""
    sys.stdout.flush()
    out = sys.stdout.buffer
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a test runner, say
        fd = -1
    if fd < 0 or not _advisable(fd):
        yield out
        out.flush()
        return
    out.flush()
    with io.BufferedWriter(DropBehindFile(fd, closefd=False, window=window), BUFFER) as writer:
        yield writer
