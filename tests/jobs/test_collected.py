"""``JobDeps.collected``: what collect leaves running in a thread (the wired job's
parquet snapshot) ends while the job evaluates; the run ends exactly as when collect did
that work itself (tests/jobs/fakes.py's in-memory dependencies)."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from hygiene.jobs import run_nightly, run_weekly
from hygiene.jobtypes import JobDeps, JobResult, RunStatus
from tests.jobs.fakes import World, new_world


class DiskFull(OSError):
    pass


@pytest.fixture
def world() -> World:
    return new_world()


def outcome(world: World, result: JobResult) -> dict[str, Any]:
    """What a run leaves behind (the run id aside): its record, result, alerts, reports
    and proposals."""
    [row] = world.store.runs()
    return {
        "status": result.status,
        "exit_code": result.exit_code,
        "counts": result.counts,
        "errors": result.errors,
        "api_calls": result.api_calls,
        "row": {k: v for k, v in row.items() if k not in {"id", "started_at", "finished_at"}},
        "alerts": [(a.status, a.errors) for a in world.alerts],
        "sent": len(world.sent),
        "proposals": sorted(world.store.proposals),
    }


def old_way(world: World, error: BaseException | None, calls: list[str]) -> JobDeps:
    """Collect does the work itself (the snapshot, written before it returned)."""
    deps = world.deps()

    def collect(config, stop):
        inventory = deps.collect(config, stop)
        calls.append("work")
        if error is not None:
            raise error
        return inventory

    return replace(deps, collect=collect, evaluate=recorded(deps.evaluate, calls))


def new_way(world: World, error: BaseException | None, calls: list[str]) -> JobDeps:
    """Collect leaves the work to a thread; ``collected`` waits for it."""
    deps = world.deps()

    def collected():
        calls.append("work")
        if error is not None:
            raise error

    return replace(deps, evaluate=recorded(deps.evaluate, calls), collected=collected)


def recorded(evaluate, calls: list[str]):
    def run(*args):
        calls.append("evaluate")
        return evaluate(*args)

    return run


@pytest.mark.parametrize("job", ["nightly", "weekly"])
@pytest.mark.parametrize("error", [None, DiskFull(28, "No space left on device")])
def test_the_run_ends_as_when_collect_did_the_work_itself(config, now, job, error) -> None:
    ends = []
    for way in (old_way, new_way):
        world, calls = new_world(), []
        deps = way(world, error, calls)
        if job == "nightly":
            result = run_nightly(deps, config, now, threading.Event())
        else:
            result = run_weekly(deps, config, now, stop=threading.Event())
        ends.append(outcome(world, result))
        # evaluated at most once, and the work waited for exactly once
        assert calls.count("work") == 1 and calls.count("evaluate") <= 1
    assert ends[0] == ends[1]
    if error is not None:
        assert ends[1]["status"] is RunStatus.FAILED and ends[1]["exit_code"] == 1
        assert ends[1]["errors"] == ["collect: DiskFull: [Errno 28] No space left on device"]
        assert ends[1]["counts"] == {} and ends[1]["api_calls"] == {}  # nothing counted
        assert ends[1]["sent"] == 0 and ends[1]["proposals"] == []  # nothing stored
    else:
        assert ends[1]["status"] is RunStatus.OK and ends[1]["sent"] >= 1


def test_the_work_fails_the_run_even_when_the_rules_failed_too(world, config, now) -> None:
    """Evaluate ran ahead and raised; the collect stage's own failure is the run's, as
    when evaluate never ran because collect had failed."""

    def broken_rules(*args):
        raise ValueError("a broken rule")

    def collected():
        raise DiskFull(28, "No space left on device")

    deps = replace(world.deps(), evaluate=broken_rules, collected=collected)
    result = run_nightly(deps, config, now, threading.Event())
    assert result.status is RunStatus.FAILED
    assert result.errors == ["collect: DiskFull: [Errno 28] No space left on device"]


def test_a_rule_that_fails_fails_the_evaluate_stage_as_before(world, config, now) -> None:
    def broken_rules(*args):
        raise ValueError("a broken rule")

    calls: list[str] = []
    deps = replace(world.deps(), evaluate=broken_rules, collected=lambda: calls.append("work"))
    result = run_nightly(deps, config, now, threading.Event())
    assert result.status is RunStatus.FAILED and result.exit_code == 1
    assert result.errors == ["evaluate: ValueError: a broken rule"]
    assert calls == ["work"]
    assert result.counts["images"] == 3  # collect's part was counted
    assert world.store.proposals == {} and world.sent == []


def test_a_stop_during_collect_evaluates_nothing_and_still_waits(world, config, now) -> None:
    stop = threading.Event()
    plain = world.deps()
    calls: list[str] = []

    def collect(config, event):
        inventory = plain.collect(config, event)
        stop.set()  # SIGTERM while the last batch was read
        return inventory

    deps = replace(
        plain,
        collect=collect,
        evaluate=recorded(plain.evaluate, calls),
        collected=lambda: calls.append("work"),
    )
    result = run_nightly(deps, config, now, stop)
    assert calls == ["work"]
    assert result.status is RunStatus.INCOMPLETE
    assert result.errors == ["stopped by request after collect"]


def test_an_interrupt_in_the_rules_still_waits_for_the_work(world, config, now) -> None:
    calls: list[str] = []

    def interrupted(*args):
        raise KeyboardInterrupt

    deps = replace(world.deps(), evaluate=interrupted, collected=lambda: calls.append("work"))
    with pytest.raises(KeyboardInterrupt):
        run_nightly(deps, config, now, threading.Event())
    assert calls == ["work"]
    [row] = world.store.runs()
    assert row["status"] == "failed" and row["errors"] == ["job: KeyboardInterrupt: "]
