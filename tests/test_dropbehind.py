"""Large files written with their pages let go behind the writer (:mod:`hygiene.dropbehind`).

What the kernel holds of a file is read with ``mincore(2)`` on a mapping that touches no
page (:func:`resident_pages`); the pages written are made clean by the test's own
``fsync`` where a test needs the advice to act at once (otherwise the kernel's writeback
decides when).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import itertools
import json
import mmap
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from hygiene import dropbehind
from hygiene.cli import cli
from hygiene.dropbehind import DropBehindFile, open_for_writing, stdout_writer
from hygiene_demo.registry import EmbeddedRegistry
from tests import builders

MiB = 2**20
PAGE = mmap.PAGESIZE

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int]
_libc.mmap.argtypes += [ctypes.c_int, ctypes.c_long]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


def resident_pages(path: Path) -> int:
    """How many of ``path``'s pages the page cache holds (``mincore`` of a shared,
    read-only mapping; mapping a file reads none of it)."""
    size = path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        address = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert address not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
        try:
            pages = (size + PAGE - 1) // PAGE
            vector = (ctypes.c_ubyte * pages)()
            assert _libc.mincore(address, size, vector) == 0, os.strerror(ctypes.get_errno())
            return sum(v & 1 for v in vector)
        finally:
            _libc.munmap(address, size)
    finally:
        os.close(fd)


def _write_clean(out: io.BufferedWriter, chunks: int, size: int = MiB) -> None:
    """``chunks`` chunks of ``size`` bytes, each written back to disk (``fsync``) before
    the next: the pages the writer advises about are clean when it does."""
    for n in range(chunks):
        out.write(bytes([n % 251]) * size)
        out.flush()
        os.fsync(out.fileno())


def test_written_pages_are_let_go(tmp_path: Path) -> None:
    let_go, kept = tmp_path / "let-go.bin", tmp_path / "kept.bin"
    with open_for_writing(let_go, window=MiB) as out:
        _write_clean(out, 32)  # type: ignore[arg-type]
    with kept.open("wb") as plain:
        _write_clean(plain, 32)
    pages = 32 * MiB // PAGE
    # the plain file stays in the page cache: what the test would see without the advice
    assert resident_pages(kept) == pages
    # let go: at most the last two windows (asked about again at close, maybe not yet
    # written back then)
    assert resident_pages(let_go) <= 2 * MiB // PAGE
    assert let_go.read_bytes() == kept.read_bytes()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=3 * PAGE), max_size=40), st.integers(1, 4 * PAGE))
def test_the_bytes_are_those_written(tmp_path_factory: pytest.TempPathFactory,
                                     chunks: list[bytes], window: int) -> None:  # fmt: skip
    path = tmp_path_factory.mktemp("bytes") / "out.bin"
    with open_for_writing(path, window=window) as out:
        for chunk in chunks:
            assert out.write(chunk) == len(chunk)
    assert path.read_bytes() == b"".join(chunks)


def test_every_written_byte_is_advised_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The calls cover the file from its first byte to its last, one a window, each
    starting where the pages may not yet have been written back (two windows back)."""
    calls: list[tuple[int, int]] = []
    real = os.posix_fadvise

    def recorded(fd: int, offset: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_DONTNEED
        calls.append((offset, length))
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", recorded)
    window = 4 * PAGE
    with DropBehindFile(tmp_path / "out.bin", window=window) as raw:
        for _ in range(10):
            assert raw.write(b"x" * (3 * PAGE)) == 3 * PAGE
    assert calls[0][0] == 0 and calls[-1][0] + calls[-1][1] == 30 * PAGE
    for (offset, length), (next_offset, _) in itertools.pairwise(calls):
        end = offset + length
        assert offset <= next_offset <= end  # no gap between calls
        assert next_offset == max(offset, end - 2 * window)  # earlier pages: not again
    # a call each time a window's worth has been written since the last (every other
    # write of 3 pages), and one at close for the tail
    assert len(calls) == 5 + 1


def test_refused_advice_writes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_: object) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "posix_fadvise", refused)
    path = tmp_path / "out.bin"
    with DropBehindFile(path, window=PAGE) as raw:
        assert raw.advising  # a regular file
        for n in range(8):
            raw.write(bytes([n]) * PAGE)
            assert not raw.advising  # refused at the first call: not asked again
    assert path.read_bytes() == b"".join(bytes([n]) * PAGE for n in range(8))


def test_a_pipe_is_written_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, write_end = os.pipe()
    raw = DropBehindFile(write_end, window=PAGE)
    assert not raw.advising  # a pipe: no advice
    stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(write_end, "w", closefd=False)))
    monkeypatch.setattr(sys, "stdout", stdout)
    with stdout_writer(window=PAGE) as out:
        assert out is stdout.buffer
        out.write(b"through the pipe\n")
    raw.close()
    assert os.read(read_end, 100) == b"through the pipe\n"
    os.close(read_end)


def test_stdout_redirected_to_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``> file``: the writer advises on standard output's own descriptor, which stays
    open; ``>> file``: what the file held is kept."""
    path = tmp_path / "scan.json"
    path.write_bytes(b"before\n")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(fd, "w")))
    monkeypatch.setattr(sys, "stdout", stdout)
    stdout.write("text first\n")  # buffered in sys.stdout: written before the writer's
    with stdout_writer(window=MiB) as out:
        assert isinstance(out, io.BufferedWriter) and isinstance(out.raw, DropBehindFile)
        assert out.raw.advising
        _write_clean(out, 8)
    stdout.write("after\n")
    stdout.flush()
    assert os.fstat(fd)  # still open
    stdout.close()
    assert resident_pages(path) <= 2 * MiB // PAGE  # before reading it back
    data = path.read_bytes()
    assert data.startswith(b"before\ntext first\n") and data.endswith(b"after\n")
    assert len(data) == len(b"before\ntext first\nafter\n") + 8 * MiB


def test_no_fileno_gives_stdout_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.BytesIO()
    stdout = io.TextIOWrapper(buffer)
    monkeypatch.setattr(sys, "stdout", stdout)
    with stdout_writer() as out:
        assert out is buffer
        out.write(b"captured")
    assert buffer.getvalue() == b"captured"


def test_without_posix_fadvise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "posix_fadvise")
    path = tmp_path / "out.bin"
    with open_for_writing(path, window=PAGE) as out:
        assert not dropbehind._advisable(out.fileno())
        out.write(b"y" * (4 * PAGE))
    assert path.read_bytes() == b"y" * (4 * PAGE)


def test_scan_to_a_file_is_the_scan_through_a_pipe(ecr: EmbeddedRegistry, tmp_path: Path) -> None:
    """``hygiene scan --format json > file`` (the writer on standard output's descriptor)
    writes the document a pipe gets."""
    ecr.client().create_repository(repositoryName="ml/trainer")
    rules = builders.write_rules(tmp_path / "rules", builders.shipped_policy())
    online = CliRunner().invoke(
        cli,
        ["scan", "--rules-dir", str(rules), "--endpoint-url", ecr.endpoint_url]
        + ["--format", "json", "--snapshot-dir", str(tmp_path / "snaps"), "--fail-on", "never"],
    )
    assert online.exit_code == 0, online.output
    snapshot = json.loads(online.stdout)["snapshot"]
    command = [sys.executable, "-m", "hygiene", "scan", "--rules-dir", str(rules)]
    command += ["--from-snapshot", snapshot, "--format", "json", "--fail-on", "never"]
    path = tmp_path / "scan.json"
    with path.open("wb") as stdout:
        assert subprocess.run(command, stdout=stdout, check=False).returncode == 0
    piped = subprocess.run(command, capture_output=True, check=True).stdout
    written = path.read_bytes()
    assert written.endswith(b"}\n") and piped.endswith(b"}\n")
    from_file, from_pipe = json.loads(written), json.loads(piped)
    assert from_file.pop("run")["source"] == from_pipe.pop("run")["source"]
    assert from_file == from_pipe and from_file["inventory"]["repositories"] == 1
