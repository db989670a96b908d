"""The scheduler: triggers, persistent job store, misfires, coalescing, lock refusal."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from hygiene import jobs
from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.config import ScheduleSettings, load_config
from hygiene.errors import ConfigError
from hygiene.schedule import (
    JOB_FUNCTIONS,
    JOBS_TABLE,
    build_scheduler,
    next_fire_times,
    triggers,
)

FORTALEZA = "America/Fortaleza"


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_default_triggers_fire_at_local_times():
    fired = triggers(ScheduleSettings())
    after = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # a Saturday
    nightly = fired["nightly"].get_next_fire_time(None, after)
    weekly = fired["weekly"].get_next_fire_time(None, after)
    assert nightly.isoformat() == "2026-11-29T03:00:00-03:00"
    assert weekly.isoformat() == "2026-11-30T08:00:00-03:00"  # Monday
    assert str(nightly.tzinfo) == FORTALEZA


def test_next_fire_times_are_local_and_in_order():
    times = next_fire_times(ScheduleSettings(), datetime(2026, 11, 28, 12, 0, tzinfo=UTC), 3)
    assert [t.isoformat() for t in times["nightly"]] == [
        "2026-11-29T03:00:00-03:00",
        "2026-11-30T03:00:00-03:00",
        "2026-12-01T03:00:00-03:00",
    ]
    assert [t.day for t in times["weekly"]] == [30, 7, 14]


def test_schedule_next_prints_without_starting(make_rules, capsys):
    assert (
        run_cli(
            cli, ["schedule", "--rules-dir", str(make_rules(weekly="0 9 * * fri")), "--next", "2"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "weekly ('0 9 * * fri', America/Fortaleza):" in out
    assert out.count("T09:00:00-03:00") == 2


def test_a_bad_crontab_is_a_config_error_naming_the_key(make_rules):
    rules = make_rules(nightly="61 3 * * *")
    with pytest.raises(ConfigError, match=r"default\.yaml:\d+: schedule\.nightly: .*crontab"):
        load_config(rules)


def started(scheduler):
    scheduler.start()
    return scheduler


def test_jobs_are_persisted_by_textual_reference(make_rules, world):
    rules = make_rules()
    config = load_config(rules)
    scheduler = build_scheduler(config, rules, scheduler_class=BackgroundScheduler)
    started(scheduler)
    try:
        persisted = {j.id: j for j in scheduler.get_jobs()}
        assert {k: j.func_ref for k, j in persisted.items()} == JOB_FUNCTIONS
        nightly = persisted["nightly"]
        assert nightly.coalesce is True and nightly.max_instances == 1
        assert nightly.misfire_grace_time == config.policy.schedule.misfire_grace_seconds
        assert nightly.next_run_time.hour == 3 and str(nightly.next_run_time.tzinfo) == FORTALEZA
    finally:
        scheduler.shutdown()
    assert (Path(config.policy.store.url.removeprefix("sqlite:///"))).is_file()


def test_a_job_fires_at_its_time_and_is_rescheduled_by_its_trigger(make_rules, world):
    rules = make_rules()
    config = load_config(rules)
    scheduler = started(build_scheduler(config, rules, scheduler_class=BackgroundScheduler))
    try:
        soon = datetime.now(UTC) + timedelta(seconds=0.5)
        scheduler.modify_job("nightly", next_run_time=soon)
        assert wait_for(lambda: any(r.get("finished_at") for r in world.store.runs()))
        [run] = world.store.runs()
        assert run["kind"] == "nightly" and run["status"] == "ok"
        assert run["started_at"] >= soon - timedelta(seconds=0.05)
        assert wait_for(lambda: scheduler.get_job("nightly").next_run_time > soon)
        next_time = scheduler.get_job("nightly").next_run_time
        assert (next_time.hour, next_time.minute) == (3, 0)
        assert world.sent and world.sent[0]["audience"] == "admins"
    finally:
        scheduler.shutdown()


def persist_next_run(rules: Path, kind: str, when: datetime) -> None:
    """A daemon that ran before and stopped with ``kind`` due at ``when``."""
    config = load_config(rules)
    scheduler = build_scheduler(config, rules, scheduler_class=BackgroundScheduler)
    scheduler.start(paused=True)
    scheduler.shutdown()
    # Edit the stored job directly: a paused scheduler that is shut down may still process
    # a due job once (an APScheduler 3 race) and move its time on.
    store = SQLAlchemyJobStore(url=config.policy.store.url, tablename=JOBS_TABLE)
    store.start(BackgroundScheduler(), "default")
    job = store.lookup_job(kind)
    job.next_run_time = when
    store.update_job(job)
    store.shutdown()


def test_runs_missed_while_down_are_made_up_once(make_rules, world):
    # due every minute of the last ten (ten missed runs), but not in the next three: a
    # regular run must not start while the test counts the made-up one
    now = datetime.now(UTC)
    minutes = [m for m in range(60) if (m - now.minute) % 60 not in (0, 1, 2, 3)]
    rules = make_rules(nightly=f"{','.join(map(str, minutes))} * * * *")
    persist_next_run(rules, "nightly", datetime.now(UTC) - timedelta(minutes=10))

    scheduler = build_scheduler(load_config(rules), rules, scheduler_class=BackgroundScheduler)
    started(scheduler)
    try:
        assert wait_for(lambda: any(r.get("finished_at") for r in world.store.runs()))
        time.sleep(1.0)  # would be enough for a second (uncoalesced) run to start
        assert [r["kind"] for r in world.store.runs()] == ["nightly"]
        assert scheduler.get_job("nightly").next_run_time > datetime.now(UTC)
    finally:
        scheduler.shutdown()


def test_a_run_missed_beyond_the_grace_time_is_skipped(make_rules, world, caplog):
    rules = make_rules(nightly="0 0 1 1 *", misfire_grace_seconds=3600)
    persist_next_run(rules, "nightly", datetime(2026, 1, 1, tzinfo=UTC))

    scheduler = build_scheduler(load_config(rules), rules, scheduler_class=BackgroundScheduler)
    started(scheduler)
    try:
        assert wait_for(lambda: "was missed" in caplog.text)
        assert world.store.runs() == []
        assert scheduler.get_job("nightly").next_run_time.year == 2027
    finally:
        scheduler.shutdown()


def test_a_changed_schedule_replaces_the_persisted_time(make_rules, world):
    rules = make_rules()
    persist_next_run(rules, "nightly", datetime(2026, 1, 1, tzinfo=UTC))
    rules = make_rules(nightly="30 4 * * *")
    scheduler = build_scheduler(load_config(rules), rules, scheduler_class=BackgroundScheduler)
    started(scheduler)
    try:
        next_time = scheduler.get_job("nightly").next_run_time
        assert (next_time.hour, next_time.minute) == (4, 30) and next_time > datetime.now(UTC)
    finally:
        scheduler.shutdown()
    assert world.store.runs() == []


def test_a_scheduled_run_is_refused_while_another_holds_the_lock(make_rules, world, caplog):
    rules = make_rules()
    with world.store.lock(jobs.LOCK_NAME):
        assert jobs.scheduled_nightly(str(rules)) is None
    assert "not started: another run holds the lock" in caplog.text
    assert world.store.runs() == []
    # nothing is recorded for it, so the admins are told (a stuck holder skips every night)
    (alert,) = world.alerts
    assert alert.subject == "registry-hygiene: scheduled nightly run not started (lock held)"
    assert alert.kind == "nightly" and "another run holds the lock" in alert.errors[0]
    assert "did not start: nothing was scanned, stored, applied or reported" in alert.summary
    assert jobs.scheduled_nightly(str(rules)) == "ok"  # the daemon keeps going next time
    assert len(world.alerts) == 1  # an ok run alerts nobody


def test_a_refused_run_whose_alert_fails_still_leaves_the_daemon_going(
    make_rules, world, caplog, monkeypatch
):
    def broken(alert):
        raise OSError("SMTP down")

    monkeypatch.setattr(world, "alerts", type("Broken", (list,), {"append": broken})())
    rules = make_rules()
    with world.store.lock(jobs.LOCK_NAME):
        assert jobs.scheduled_weekly(str(rules)) is None
    assert "could not send the alert for the weekly run not started" in caplog.text


def test_a_scheduled_run_does_not_start_once_a_stop_was_requested(make_rules, world, caplog):
    jobs.STOP.set()
    assert jobs.scheduled_weekly(str(make_rules())) is None
    assert "the scheduler is stopping" in caplog.text
    assert world.store.runs() == []


def test_a_scheduled_run_with_a_bad_rule_option_does_not_start(make_rules, world, caplog):
    rules = make_rules()
    path = rules / "default.yaml"
    policy = yaml.safe_load(path.read_text())
    policy["rules"] = {"IM002": {"days": 0}}
    path.write_text(yaml.safe_dump(policy))
    assert jobs.scheduled_nightly(str(rules)) is None
    assert "rules.IM002.days: must be between 1 and 3650 (got 0)" in caplog.text
    assert world.store.runs() == []
    # no configuration ever loaded in this daemon: no channel to alert through
    assert world.alerts == []
    assert "no configuration loaded before to alert the admins through" in caplog.text


def test_a_configuration_broken_after_deployment_alerts_through_the_last_that_loaded(
    make_rules, world, caplog
):
    """Every scheduled run reloads the rules; one broken after deployment stops every
    run. The daemon tells the admins through the channels of the last configuration it
    loaded, each time a run does not start (nothing is recorded for it)."""
    rules = make_rules()
    assert jobs.scheduled_nightly(str(rules)) == "ok"
    path = rules / "default.yaml"
    policy = yaml.safe_load(path.read_text())
    policy["rules"] = {"IM002": {"days": 0}}
    path.write_text(yaml.safe_dump(policy))

    assert jobs.scheduled_weekly(str(rules)) is None

    assert len(world.store.runs()) == 1  # the nightly's: nothing recorded for the weekly
    (alert,) = world.alerts
    assert alert.subject == (
        "registry-hygiene: scheduled weekly run not started (configuration broken)"
    )
    assert alert.kind == "weekly"
    assert "rules.IM002.days: must be between 1 and 3650 (got 0)" in alert.errors[0]
    assert alert.summary.startswith(
        f"The scheduled weekly run did not start: the configuration in {rules.resolve()} does "
        "not load. Nothing was scanned, stored, applied or reported"
    )
    assert "sent through the channels of the last configuration this daemon loaded" in (
        alert.summary
    )
    assert "rules.IM002.days" in caplog.text  # and the log line, as before
    # the nightly run's store, then the one opened to alert through: both closed again
    assert world.store.closed == 2

    path.write_text(yaml.safe_dump({**policy, "rules": {"IM002": {"days": 90}}}))
    assert jobs.scheduled_nightly(str(rules)) == "ok"  # mended: the next run goes
    assert len(world.alerts) == 1


def test_every_scheduled_run_closes_its_store_whatever_its_outcome(make_rules, world, monkeypatch):
    """The daemon opens a store and AWS clients for each run (its deps); it closes both
    when the run ends: a run that went well, one refused by the lock, one that crashed."""
    rules = make_rules()
    assert jobs.scheduled_nightly(str(rules)) == "ok"
    assert (world.store.closed, world.registry_closed) == (1, 1)
    assert jobs.scheduled_weekly(str(rules)) == "ok"
    assert (world.store.closed, world.registry_closed) == (2, 2)
    with world.store.lock(jobs.LOCK_NAME):
        assert jobs.scheduled_nightly(str(rules)) is None  # not started: lock held
    assert (world.store.closed, world.registry_closed) == (3, 3)

    def crash(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(jobs, "run_nightly", crash)
    assert jobs.scheduled_nightly(str(rules)) is None
    assert (world.store.closed, world.registry_closed) == (4, 4)


def test_a_failure_to_close_the_aws_clients_still_closes_the_store(make_rules, world):
    """Closing is best effort, one part after the other: an error closing the clients is
    logged, and the store is closed all the same."""
    rules = make_rules()
    production = world.deps

    def deps():
        built = production()

        def broken() -> None:
            raise OSError("socket already gone")

        return dataclasses.replace(built, close_registry=broken)

    world.deps = deps  # type: ignore[method-assign]
    assert jobs.scheduled_nightly(str(rules)) == "ok"
    assert world.store.closed == 1
