"""``hygiene run`` and ``hygiene schedule`` through the real CLI (``hygiene runs`` reads
the real store: tests/apply/test_identity_cli.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from hygiene import jobs
from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.errors import ExitCode


def test_run_nightly_then_read_the_history(make_rules, world, capsys):
    rules = str(make_rules())
    assert run_cli(cli, ["run", "nightly", "--rules-dir", rules]) == 0
    assert "nightly run 1: ok" in capsys.readouterr().out

    [run] = world.store.runs()
    assert run["kind"] == "nightly" and run["status"] == "ok"
    assert run["counts"]["images"] == 3
    assert world.store.closed == 1  # the command closes its store when its job ends


def test_second_run_exits_5_while_the_lock_is_held(make_rules, world, capsys):
    rules = str(make_rules())
    with world.store.lock(jobs.LOCK_NAME):
        code = run_cli(cli, ["run", "nightly", "--rules-dir", rules])
    assert code == ExitCode.LOCKED == 5
    assert "error: another run holds the lock 'registry'" in capsys.readouterr().err
    assert world.store.runs() == []


def test_incomplete_nightly_exits_3(make_rules, world, capsys):
    world.registry.broken.add("ml/train")
    assert run_cli(cli, ["run", "nightly", "--rules-dir", str(make_rules())]) == 3
    assert "AccessDenied" in capsys.readouterr().err
    assert len(world.alerts) == 1


def test_run_weekly_for_one_namespace(make_rules, world, capsys):
    argv = ["run", "weekly", "--rules-dir", str(make_rules()), "--namespace", "ml"]
    assert run_cli(cli, argv) == 0
    assert [r["audience"] for r in world.sent] == ["ml"]
    assert run_cli(cli, [*argv[:-1], "nope"]) == 2
    assert "'nope': not a registered project" in capsys.readouterr().err


def start(
    argv: list[str], tmp_path: Path, repositories: int, env: dict[str, str]
) -> subprocess.Popen:
    env = {
        **env,
        jobs.DEPS_ENV: "tests.jobs.fakes:slow_file_deps",
        "FAKE_STORE_FILE": str(tmp_path / "runs.json"),
        "FAKE_REPOSITORIES": str(repositories),
        "FAKE_BATCH_DELAY": "0.02",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hygiene", *argv],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_runs(tmp_path: Path) -> list[dict]:
    path = tmp_path / "runs.json"
    return json.loads(path.read_text()) if path.exists() else []


def terminate_when_running(process: subprocess.Popen, tmp_path: Path) -> tuple[str, str]:
    deadline = time.monotonic() + 60
    while not read_runs(tmp_path) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    assert read_runs(tmp_path), "the job never started"
    time.sleep(0.3)  # let it read a few repositories
    process.send_signal(signal.SIGTERM)
    return process.communicate(timeout=60)


# A process (~2 s): SIGTERM handling can only be tested on a process of its own.
def test_sigterm_stops_the_daemon_cleanly_with_the_run_recorded(
    make_rules, tmp_path, subprocess_env
):
    rules = make_rules()
    argv = ["schedule", "--rules-dir", str(rules), "--run-now", "nightly"]
    process = start(argv, tmp_path, 3000, subprocess_env)
    _out, err = terminate_when_running(process, tmp_path)

    assert process.returncode == 0, err
    [run] = read_runs(tmp_path)
    assert run["status"] == "incomplete", run
    assert "collect: us-east-1 (registry) stop: stopped before the end" in run["errors"]
    assert "stopped by request after collect" in run["errors"]
    assert 0 < run["counts"]["repositories"] < 3000  # it stopped early, between batches
    assert run["finished_at"]
    assert "SIGTERM received: finishing the current batch" in err
    assert "scheduler stopped" in err


# A process (~2 s): SIGTERM handling can only be tested on a process of its own.
def test_sigterm_stops_a_one_shot_run_with_exit_3(make_rules, tmp_path, subprocess_env):
    argv = ["run", "nightly", "--rules-dir", str(make_rules())]
    process = start(argv, tmp_path, 3000, subprocess_env)
    out, err = terminate_when_running(process, tmp_path)

    assert process.returncode == ExitCode.INCOMPLETE, err
    [run] = read_runs(tmp_path)
    assert run["status"] == "incomplete" and run["finished_at"]
    assert "nightly run 1: incomplete" in out


def test_json_log_lines(make_rules, world, capsys):
    argv = ["run", "nightly", "--rules-dir", str(make_rules()), "--log-format", "json"]
    assert run_cli(cli, argv) == 0
    lines = capsys.readouterr().err.splitlines()
    entries = [json.loads(line) for line in lines]
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    assert any(e["message"].startswith("nightly run 1: ok") for e in entries)
