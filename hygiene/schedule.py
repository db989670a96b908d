"""``hygiene schedule``: the APScheduler 3 daemon running the nightly and weekly jobs.

* Cron expressions and the time zone come from ``schedule`` in ``rules/default.yaml``
  (defaults: nightly ``0 3 * * *``, weekly ``0 8 * * mon``, ``America/Fortaleza``).
* Jobs live in a persistent ``SQLAlchemyJobStore`` in the store's own database
  (table :data:`JOBS_TABLE`), referenced by text (``hygiene.jobs:scheduled_nightly``)
  so they can be persisted. When the daemon restarts with an unchanged schedule, the
  persisted next run time is kept: a run missed while the daemon was down is made up
  once (``coalesce``) if it is less than ``misfire_grace_seconds`` late.
* One instance per job, and one job at a time in this process (a one-thread executor);
  runs started by cron or by hand are kept out by the store lock.
* SIGTERM/SIGINT set :data:`hygiene.jobs.STOP`: the running job finishes its current
  batch and records its state; then the scheduler shuts down (waiting for it).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.util import undefined

from hygiene import jobs, lastconfig
from hygiene.config import Config, ScheduleSettings
from hygiene.errors import ConfigError, StoreError

log = logging.getLogger(__name__)

JOBS_TABLE = "apscheduler_jobs"
JOB_FUNCTIONS = {
    "nightly": "hygiene.jobs:scheduled_nightly",
    "weekly": "hygiene.jobs:scheduled_weekly",
}


def triggers(settings: ScheduleSettings) -> dict[str, CronTrigger]:
    """The cron trigger of each job, in the configured time zone."""
    zone = ZoneInfo(settings.timezone)
    out = {}
    for kind in JOB_FUNCTIONS:
        expression = getattr(settings, kind)
        try:
            out[kind] = CronTrigger.from_crontab(expression, timezone=zone)
        except ValueError as exc:
            raise ConfigError(f"schedule.{kind}: {expression!r}: {exc}") from exc
    return out


def next_fire_times(settings: ScheduleSettings, after: datetime, count: int = 3) -> dict:
    """The next ``count`` fire times of each job after ``after`` (for ``--next``)."""
    out: dict[str, list[datetime]] = {}
    for kind, trigger in triggers(settings).items():
        times: list[datetime] = []
        previous = None
        moment = after
        while len(times) < count:
            fire = trigger.get_next_fire_time(previous, moment)
            if fire is None:
                break
            times.append(fire)
            previous, moment = fire, fire + timedelta(seconds=1)
        out[kind] = times
    return out


def build_scheduler(
    config: Config,
    rules_dir: Path,
    *,
    scheduler_class: Callable[..., BaseScheduler] = BlockingScheduler,
    jobstore: BaseJobStore | None = None,
    deps_reference: str | None = None,
    run_now: Iterable[str] = (),
) -> BaseScheduler:
    """A configured, not yet started scheduler holding the nightly and weekly jobs.

    ``jobstore`` defaults to a SQLAlchemy job store on ``store.url``. ``run_now`` names
    jobs to run once right after start (then on their schedule again).
    """
    settings = config.policy.schedule
    zone = ZoneInfo(settings.timezone)
    scheduler = scheduler_class(
        timezone=zone,
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": settings.misfire_grace_seconds,
        },
    )
    if jobstore is None:
        try:
            jobstore = SQLAlchemyJobStore(url=config.policy.store.url, tablename=JOBS_TABLE)
        except Exception as exc:  # bad URL, missing driver
            raise StoreError(f"store.url {config.policy.store.url!r}: {exc}") from exc
    previous = _persisted_jobs(scheduler, jobstore)
    scheduler.add_jobstore(jobstore, "default")
    run_now = set(run_now)
    for kind, trigger in triggers(settings).items():
        reference = JOB_FUNCTIONS[kind]
        kwargs = {"rules_dir": str(Path(rules_dir).resolve()), "deps_reference": deps_reference}
        next_run_time: Any = undefined
        old = previous.get(kind)
        if kind in run_now:
            next_run_time = datetime.now(zone)
        elif (
            old is not None
            and old.next_run_time is not None
            and old.func_ref == reference
            and repr(old.trigger) == repr(trigger)
            and old.kwargs == kwargs
        ):
            next_run_time = old.next_run_time  # keep a missed run so it can be made up
        scheduler.add_job(
            reference,
            trigger,
            id=kind,
            name=f"{kind} run",
            kwargs=kwargs,
            replace_existing=True,
            next_run_time=next_run_time,
        )
        log.info("scheduled %s: %s (%s)", kind, getattr(settings, kind), settings.timezone)
    scheduler.add_listener(_log_missed, EVENT_JOB_MISSED)
    return scheduler


def _persisted_jobs(scheduler: BaseScheduler, jobstore: BaseJobStore) -> dict[str, Any]:
    """The jobs the store holds from an earlier daemon, by id (empty if none/unreadable)."""
    try:
        jobstore.start(scheduler, "default")  # creates the table; the scheduler restarts it
        found = {job.id: job for job in jobstore.get_all_jobs()}
        jobstore.shutdown()
    except Exception as exc:
        raise StoreError(f"cannot read the scheduler's jobs from the store: {exc}") from exc
    return found


def _log_missed(event: JobExecutionEvent) -> None:
    log.warning(
        "the %s run due at %s was missed (more than misfire_grace_seconds late)",
        event.job_id,
        event.scheduled_run_time,
    )


@contextmanager
def stop_on_signals(on_stop: Callable[[], None] | None = None) -> Iterator[threading.Event]:
    """Turn the first SIGTERM/SIGINT into :data:`hygiene.jobs.STOP` (+ ``on_stop``).

    A second signal gets the default behaviour (terminate at once). Handlers are restored
    on exit. Only the main thread can install handlers; elsewhere this is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield jobs.STOP
        return
    signals = (signal.SIGTERM, signal.SIGINT)
    saved = {s: signal.getsignal(s) for s in signals}

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        log.warning("%s received: finishing the current batch, then stopping", name)
        for s in signals:  # a second signal stops at once
            signal.signal(s, signal.SIG_DFL)
        jobs.STOP.set()
        if on_stop is not None:
            on_stop()

    for s in signals:
        signal.signal(s, handle)
    try:
        yield jobs.STOP
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def run_daemon(
    config: Config,
    rules_dir: Path,
    *,
    deps_reference: str | None = None,
    run_now: Iterable[str] = (),
) -> int:
    """Run the blocking scheduler until SIGTERM/SIGINT; return the exit code (0)."""
    scheduler = build_scheduler(config, rules_dir, deps_reference=deps_reference, run_now=run_now)
    # the channels to alert through if the rules break after this (hygiene.lastconfig)
    lastconfig.LAST.remember(config)
    stopper: list[threading.Thread] = []

    def shutdown() -> None:
        # Not in the handler itself: shutdown(wait=True) waits for the running job.
        thread = threading.Thread(target=scheduler.shutdown, kwargs={"wait": True})
        stopper.append(thread)
        thread.start()

    jobs.STOP.clear()
    with stop_on_signals(shutdown):
        log.info("scheduler started; stop with SIGTERM or Ctrl-C")
        scheduler.start()  # blocks until shut down
    for thread in stopper:
        thread.join()
    log.info("scheduler stopped")
    return 0
