"""A one-shot command's process ends without Python's teardown, and loses nothing.

Each case runs a child Python: what is checked is what anyone outside the process sees
(its output, its exit status, what its threads and ``atexit`` handlers wrote), and
whether the interpreter tore its heap down (an object's ``__del__`` at finalisation).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from hygiene.scan import save_snapshot
from hygiene.store import Store
from tests import builders
from tests.builders import image_row, inventory

CHECKOUT = Path(__file__).resolve().parent.parent

# an object that says so when the interpreter frees it at exit
MARKER = """
import sys
class TornDown:
    def __del__(self):
        sys.stderr.write("torn down\\n")
keep = TornDown()
"""


def _child(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=CHECKOUT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_end_process_waits_for_threads_runs_atexit_and_keeps_the_exit_code(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    log = tmp_path / "log"
    done = _child(
        MARKER
        + f"""
import atexit, threading, time
from hygiene.cli.ending import end_process
log = open({str(log)!r}, "a", buffering=1)
atexit.register(lambda: log.write("atexit\\n"))
worker = threading.Thread(target=lambda: (time.sleep(0.3), log.write("thread\\n")))
worker.start()
print("unterminated output", end="")
end_process(3)
""",
        subprocess_env,
    )
    assert done.returncode == 3
    assert done.stdout == "unterminated output"  # buffered output is flushed
    assert log.read_text().splitlines() == ["thread", "atexit"]  # as a normal exit orders them
    assert "torn down" not in done.stderr  # the heap was left to the operating system


def _scan_child(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _child(
        MARKER
        + f"""
from hygiene.cli import main
sys.argv = ["hygiene", *{argv!r}]
main()
""",
        env,
    )


def test_a_scan_process_ends_fast_with_its_whole_document(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    rows = [image_row(f"img{n}", "ml/api", pushed_days_ago=400 + n) for n in range(30)]
    snapshot = save_snapshot(inventory(rows), tmp_path)
    argv = ["scan", "--rules-dir", "rules", "--from-snapshot", str(snapshot), "--format", "json"]
    done = _scan_child([*argv, "--fail-on", "never"], subprocess_env)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # complete: the last byte was flushed
    assert document["inventory"]["images"] == 30
    assert "torn down" not in done.stderr
    # the exit status still says what the scan found (findings at or above --fail-on)
    assert _scan_child([*argv, "--fail-on", "info"], subprocess_env).returncode == 1


def test_other_commands_end_as_python_does(subprocess_env: dict[str, str]) -> None:
    done = _scan_child(["rules", "--rules-dir", "rules"], subprocess_env)
    assert done.returncode == 0, done.stderr
    assert "torn down" in done.stderr


def test_what_a_scan_made_is_kept_until_its_process_ends(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """Returning from the command does not free its result (the inventory, findings and
    proposals) one object at a time; in-process (tests), nothing is held."""
    rows = [image_row(f"img{n}", "ml/api", pushed_days_ago=400 + n) for n in range(3)]
    snapshot = save_snapshot(inventory(rows), tmp_path)
    argv = ["scan", "--rules-dir", "rules", "--from-snapshot", str(snapshot), "--format", "json"]
    marked = """
import hygiene.scan
class Freed:
    def __del__(self):
        sys.stderr.write("result freed\\n")
evaluate = hygiene.scan.evaluate
def marked(*args, **kwargs):
    result = evaluate(*args, **kwargs)
    result.inventory.marker = Freed()
    return result
hygiene.scan.evaluate = marked
"""
    done = _child(
        MARKER
        + marked
        + f"""
from hygiene.cli import main
sys.argv = ["hygiene", *{argv!r}]
main()
""",
        subprocess_env,
    )
    assert done.returncode == 0, done.stderr
    assert "result freed" not in done.stderr
    in_process = _child(
        MARKER
        + marked
        + f"""
from hygiene.cli import main
try:
    main({argv!r})
except SystemExit:
    sys.stderr.write("returned\\n")
""",
        subprocess_env,
    )
    assert in_process.stderr.index("result freed") < in_process.stderr.index("returned")


def test_a_one_shot_nightly_run_closes_its_store_and_ends_fast(
    ecr: Any, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """``hygiene run nightly`` as cron runs it, against the embedded registry and a real
    SQLite store: the run is recorded, the store closed (SQLite folds its write-ahead log
    back into the database and removes it only when its last connection closes), and
    the process ends without freeing the job's objects one by one."""
    ecr.client().create_repository(repositoryName="ml/trainer")
    database = tmp_path / "hygiene.db"
    policy = builders.shipped_policy()
    policy["store"] = {"url": f"sqlite:///{database}"}
    policy["report"]["out_dir"] = str(tmp_path / "out")
    rules = builders.write_rules(tmp_path / "rules", policy)
    env = {**subprocess_env, "AWS_ENDPOINT_URL": ecr.endpoint_url}
    env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("HYGIENE_STORE_URL", None)
    done = _scan_child(["run", "nightly", "--rules-dir", str(rules)], env)
    assert done.returncode == 0, done.stderr
    assert "nightly run" in done.stdout and ": ok" in done.stdout
    assert "torn down" not in done.stderr  # the heap was left to the operating system
    assert database.exists() and not database.with_name("hygiene.db-wal").exists()
    with Store(f"sqlite:///{database}") as store:
        (run,) = store.runs(last=1)
        assert run.kind == "nightly" and run.status == "ok" and run.finished_at is not None
        assert run.counts["repositories"] == 1
