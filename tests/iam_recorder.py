"""Pytest plugin: record every AWS operation hygiene code calls; fail if one is undeclared.

How it records: a ``before-call`` handler is appended to ``botocore.handlers.
BUILTIN_HANDLERS``, which every botocore session registers when it is created, so the
hook sees the calls of every client, whichever session the code builds. A call counts as
the code's when the innermost frame from the ``hygiene`` package on the calling thread's
stack is closer to the call than any frame of the ``hygiene_demo`` package or the
``benchmarks`` folder (the embedded registry, the seeder, the demo): seeding, by them or
by tests through their own clients, is not recorded.

How it checks under pytest-xdist: the controller creates a directory and exports it in
``$HYGIENE_IAM_RECORD_DIR`` before the workers start; each process appends the
operations it saw to its own file there; ``pytest_sessionfinish`` on the controller (after
every worker is done) reads them all, compares them with :func:`hygiene.iam.undeclared`
and fails the session (exit status 1) with a list of the undeclared operations.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import botocore.handlers
import pytest

import hygiene
import hygiene_demo
from hygiene import iam

RECORD_ENV = "HYGIENE_IAM_RECORD_DIR"
PACKAGE_DIR = Path(hygiene.__file__).resolve().parent
# Code that talks to the emulator to build test/demo/benchmark registries, not to a real one.
SCAFFOLDING_DIRS = (
    Path(hygiene_demo.__file__).resolve().parent,
    PACKAGE_DIR.parent / "benchmarks",
)


def calling_module(frame: FrameType | None) -> str | None:
    """The hygiene module on the stack closest to the call, unless scaffolding is closer."""
    while frame is not None:
        filename = frame.f_code.co_filename
        path = Path(filename).resolve() if filename.endswith(".py") else None
        if path is not None:
            if any(path.is_relative_to(d) for d in SCAFFOLDING_DIRS):
                return None
            if path.is_relative_to(PACKAGE_DIR):
                return ".".join(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
        frame = frame.f_back
    return None


class Recorder:
    """``service:Operation`` → the hygiene modules that called it."""

    def __init__(self, sink: Path | None = None) -> None:
        self.sink = sink
        self.calls: dict[str, set[str]] = {}
        self._mutex = threading.Lock()

    def record(self, action: str, module: str) -> None:
        with self._mutex:
            modules = self.calls.setdefault(action, set())
            if module in modules:
                return
            modules.add(module)
            if self.sink is not None:
                with self.sink.open("a", encoding="utf-8") as out:
                    out.write(f"{action}\t{module}\n")


_active: list[Recorder] = [Recorder()]


def _before_call(model: Any = None, **_: Any) -> None:
    if model is None:
        return
    module = calling_module(sys._getframe(1))
    if module is None:
        return
    action = f"{model.service_model.signing_name}:{model.name}"
    _active[-1].record(action, module)


if ("before-call", _before_call) not in botocore.handlers.BUILTIN_HANDLERS:
    botocore.handlers.BUILTIN_HANDLERS.append(("before-call", _before_call))


@contextmanager
def recording() -> Iterator[Recorder]:
    """Record into a fresh recorder (for testing the recorder itself)."""
    recorder = Recorder()
    _active.append(recorder)
    try:
        yield recorder
    finally:
        _active.remove(recorder)


def call_as_hygiene_module(relative: str, source: str, namespace: dict[str, Any]) -> None:
    """Run ``source`` with a code object whose file is inside the hygiene package, the way
    a call from that module looks to the recorder."""
    exec(compile(source, str(PACKAGE_DIR / relative), "exec"), namespace)


def read_records(directory: Path) -> dict[str, set[str]]:
    calls: dict[str, set[str]] = {}
    for file in sorted(directory.glob("ops-*.txt")):
        for line in file.read_text(encoding="utf-8").splitlines():
            action, _, module = line.partition("\t")
            calls.setdefault(action, set()).add(module)
    return calls


# --------------------------------------------------------------------------- pytest hooks


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if _is_controller(config):
        directory = Path(tempfile.mkdtemp(prefix="hygiene-iam-"))
        os.environ[RECORD_ENV] = str(directory)  # inherited by the xdist workers
        config.stash[_DIR_KEY] = directory
    _active[0].sink = Path(os.environ[RECORD_ENV]) / f"ops-{os.getpid()}.txt"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _is_controller(session.config):
        return
    directory = session.config.stash[_DIR_KEY]
    calls = read_records(directory)
    missing = iam.undeclared(calls)
    session.config.stash[_RESULT_KEY] = (calls, missing)
    shutil.rmtree(directory, ignore_errors=True)
    if missing and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    result = config.stash.get(_RESULT_KEY, None)
    if result is None:
        return
    calls, missing = result
    if missing:
        terminalreporter.section("IAM coverage", red=True)
        for action in missing:
            callers = ", ".join(sorted(calls[action]))
            terminalreporter.write_line(
                f"{action} (called from {callers}) is not declared in hygiene/iam.py", red=True
            )
        terminalreporter.write_line(
            "declare it with iam.declare(...) and regenerate cron/iam/*.json", red=True
        )
    else:
        terminalreporter.write_line(
            f"IAM coverage: {len(calls)} AWS operation(s) called by hygiene code, all declared"
        )


_DIR_KEY = pytest.StashKey[Path]()
_RESULT_KEY = pytest.StashKey[tuple[dict[str, set[str]], list[str]]]()
