"""The malformed-configuration corpus: every case is refused the same, safe way.

Each folder of ``corpus/`` is one mistake a careless or malicious user could make: a
``rules/`` directory (``hygiene scan --rules-dir corpus/<case>/rules`` reproduces it by
hand) and ``expected.toml``:

``about``    what the case is;
``expect``   fragments the error output must contain (file:line, key path, reason);
``located``  false when the problem is the file itself (missing, a FIFO…): no line;
``args``     the command line (default ``scan``; ``{case}`` is the case's folder);
``setup``    what git cannot store: ``fifo:``, ``unreadable:`` or ``large:`` + a path;
``via``      ``subprocess`` to run the real ``hygiene`` program instead of in-process;
``lines``    the exact number of lines printed, where it matters.

Every case must: exit 2; print one to twenty lines, each naming the file and line
(unless ``located = false``); print no traceback and nothing on stdout; and make no
network connection. Connections are counted twice: by a listening socket that every
endpoint variable (AWS, store, Slack, instance metadata) points at, and in-process by
an audit hook on ``socket.connect``/``socket.getaddrinfo``.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from hygiene.cli import cli
from hygiene.cli.common import run_cli
from tests.conftest import CountingListener

CORPUS = Path(__file__).parent / "corpus"
MAX_LINES = 20
LOCATED = re.compile(r"^error: \S*(default|projects)\.yaml:\d+: ")
MORE = re.compile(r"^error: .*and \d+ more errors?\b")


@dataclass(frozen=True)
class Case:
    name: str
    about: str
    expect: tuple[str, ...]
    located: bool
    args: tuple[str, ...]
    setup: str | None
    via: str
    lines: int | None

    @classmethod
    def read(cls, folder: Path) -> Case:
        meta = tomllib.loads((folder / "expected.toml").read_text(encoding="utf-8"))
        unknown = set(meta) - {"about", "expect", "located", "args", "setup", "via", "lines"}
        assert not unknown, f"{folder.name}/expected.toml: unknown keys {unknown}"
        return cls(
            name=folder.name,
            about=meta["about"],
            expect=tuple(meta["expect"]),
            located=meta.get("located", True),
            args=tuple(meta.get("args", ["scan"])),
            setup=meta.get("setup"),
            via=meta.get("via", "in-process"),
            lines=meta.get("lines"),
        )


CASES = [Case.read(folder) for folder in sorted(CORPUS.iterdir()) if folder.is_dir()]


class _SocketAudit:
    """Counts socket connects and name lookups made by this process while armed."""

    armed = False
    events: list[tuple[str, str]] = []

    @classmethod
    def hook(cls, event: str, args: tuple[object, ...]) -> None:
        if cls.armed and event in ("socket.connect", "socket.getaddrinfo"):
            cls.events.append((event, repr(args)[:200]))


sys.addaudithook(_SocketAudit.hook)


def _environment(listener: CountingListener, home: Path) -> dict[str, str]:
    url = f"http://127.0.0.1:{listener.port}"
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ENDPOINT_URL_ECR": url,
        "AWS_ENDPOINT_URL_STS": url,
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "HYGIENE_ENDPOINT_URL": url,
        "HYGIENE_STORE_URL": f"postgresql+psycopg://hygiene@127.0.0.1:{listener.port}/hygiene",
        "HYGIENE_SLACK_WEBHOOK_URL": f"{url}/webhook",
        "HYGIENE_SLACK_TOKEN": "xoxb-not-a-token",
        "HOME": str(home),
    }


def _prepare(case: Case, tmp_path: Path) -> Path:
    """A copy of the case's folder (symbolic links kept), with its ``setup`` done."""
    folder = tmp_path / case.name
    shutil.copytree(CORPUS / case.name, folder, symlinks=True)
    if case.setup:
        kind, _, relative = case.setup.partition(":")
        target = folder / relative
        if kind == "fifo":
            target.unlink(missing_ok=True)
            os.mkfifo(target)
        elif kind == "unreadable":
            target.chmod(0)
        elif kind == "large":
            target.write_bytes(b"# padding to make the file too large to read\n" * 50_000)
        else:
            raise AssertionError(f"{case.name}: unknown setup {case.setup!r}")
    return folder


def _argv(case: Case, folder: Path) -> list[str]:
    args = [a.replace("{case}", str(folder)) for a in case.args]
    if "--rules-dir" not in args:
        args += ["--rules-dir", str(folder / "rules")]
    return args


def _check_output(case: Case, code: int, out: str, err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}\n{err}"
    assert "Traceback" not in out + err, err
    assert out == "", f"stdout should be empty:\n{out}"
    assert 1 <= len(lines) <= MAX_LINES, f"{len(lines)} lines:\n{err}"
    if case.lines is not None:
        assert len(lines) == case.lines, err
    for fragment in case.expect:
        assert fragment in err, f"{fragment!r} not in:\n{err}"
    if case.located:
        for line in lines:
            if not MORE.match(line):
                assert LOCATED.match(line), f"no file:line in {line!r}"


def test_corpus_is_large_and_complete() -> None:
    assert len(CASES) >= 80
    for case in CASES:
        assert case.expect, f"{case.name}: expect nothing?"
        assert (
            (CORPUS / case.name / "rules").exists()
            or (CORPUS / case.name / "rules").is_symlink()
            or "{case}" in " ".join(case.args)
        ), case.name


def _without_root_file_access() -> None:
    """In the child, before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the
    bounding set (prctl PR_CAPBSET_DROP), so root obeys file modes like any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _unreadable_needs_another_user(case: Case) -> bool:
    return bool(case.setup and case.setup.startswith("unreadable:")) and os.geteuid() == 0


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.via == "in-process" and not _unreadable_needs_another_user(c)],
    ids=lambda c: c.name,
)
def test_case_in_process(
    case: Case,
    tmp_path: Path,
    connection_counter: CountingListener,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = _prepare(case, tmp_path)
    for name, value in _environment(connection_counter, tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # outside the checkout: no ./rules to fall back on
    before = connection_counter.count
    _SocketAudit.events.clear()
    _SocketAudit.armed = True
    try:
        code = run_cli(cli, _argv(case, folder))
    finally:
        _SocketAudit.armed = False
    captured = capsys.readouterr()
    _check_output(case, code, captured.out, captured.err)
    assert _SocketAudit.events == []
    assert connection_counter.count == before


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.via == "subprocess" or _unreadable_needs_another_user(c)],
    ids=lambda c: c.name,
)
def test_case_through_the_program(
    case: Case, connection_counter: CountingListener, subprocess_env: dict[str, str]
) -> None:
    """The real ``hygiene`` program, started from a directory outside the checkout
    (without root's file-access capabilities for an unreadable file when the tests run
    as root, who reads a mode-000 file anyway)."""
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        folder = _prepare(case, tmp)
        env = {
            "PATH": subprocess_env.get("PATH", ""),
            "PYTHONPATH": subprocess_env["PYTHONPATH"],
            **_environment(connection_counter, tmp),
        }
        preexec = _without_root_file_access if _unreadable_needs_another_user(case) else None
        before = connection_counter.count
        result = subprocess.run(
            [sys.executable, "-m", "hygiene", *_argv(case, folder)],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=preexec,
            check=False,
        )
        _check_output(case, result.returncode, result.stdout, result.stderr)
        assert connection_counter.count == before
