"""The nightly and weekly pipelines over in-memory dependencies (tests/jobs/fakes.py)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import timedelta

import pytest

from hygiene.config import ApplySettings, Config
from hygiene.errors import CollectError, ConfigError, ExitCode, LockHeldError
from hygiene.jobs import LOCK_NAME, run_nightly, run_weekly
from hygiene.jobtypes import ApplySummary, RunStatus
from hygiene.model import ProposalState
from tests.jobs.fakes import World, new_world

UNTAGGED = {"sha256:" + "b" * 64, "sha256:" + "c" * 64}


def with_apply(config: Config, **settings: bool) -> Config:
    policy = config.policy.model_copy(update={"apply": ApplySettings(**settings)})
    return config.model_copy(update={"policy": policy})


@pytest.fixture
def world() -> World:
    return new_world()


def digests(world: World) -> set[str]:
    return {i["digest"] for i in world.registry.images}


def test_nightly_applies_safe_fixes_reports_and_records(world, config, now):
    result = run_nightly(world.deps(), with_apply(config, auto_safe=True), now, threading.Event())

    assert result.status is RunStatus.OK and result.exit_code == 0
    assert digests(world) == {"sha256:" + "a" * 64}  # both untagged images deleted
    assert [p.state for p in world.store.proposals.values()] == [ProposalState.APPLIED] * 2
    [report] = world.sent
    assert report["audience"] == "admins"
    assert len(report["document"]["findings"]) == 2
    assert report["document"]["job"]["id"] == result.run_id
    assert world.alerts == []
    [row] = world.store.runs()
    assert row["status"] == "ok" and row["started_at"] == now
    assert row["finished_at"] == world.clock_now
    assert row["counts"]["images"] == 3 and row["counts"]["safe_applied"] == 2
    assert row["api_calls"] == {"DescribeImages": 2, "BatchDeleteImage": 2}


def test_nightly_without_auto_safe_changes_nothing(world, config, now):
    result = run_nightly(world.deps(), with_apply(config), now, threading.Event())

    assert result.status is RunStatus.OK
    assert len(digests(world)) == 3
    assert world.applied_calls == []
    assert result.counts["proposals"] == 2


def test_incomplete_scan_blocks_apply_and_alerts(world, config, now):
    world.registry.broken.add("ml/train")
    config = with_apply(config, auto_safe=True, apply_approved=True)

    result = run_nightly(world.deps(), config, now, threading.Event())

    assert result.status is RunStatus.INCOMPLETE
    assert result.exit_code == ExitCode.INCOMPLETE
    assert world.applied_calls == []  # neither safe fixes nor approved proposals
    assert len(digests(world)) == 3
    [alert] = world.alerts
    assert alert.status is RunStatus.INCOMPLETE and alert.run_id == result.run_id
    assert any("ml/train" in e for e in alert.errors)
    # the admin report still goes out, saying the scan is incomplete
    [report] = world.sent
    assert report["document"]["run"]["complete"] is False
    assert world.store.runs()[0]["status"] == "incomplete"


def test_second_run_is_refused_while_the_lock_is_held(world, config, now):
    deps = world.deps()
    with world.store.lock(LOCK_NAME), pytest.raises(LockHeldError, match="holds the lock"):
        run_nightly(deps, config, now, threading.Event())
    with world.store.lock(LOCK_NAME), pytest.raises(LockHeldError):
        run_weekly(deps, config, now, stop=threading.Event())
    assert world.store.runs() == []  # nothing recorded, nothing collected
    assert world.registry.api_calls == {}
    # and the lock is free again afterwards
    assert run_nightly(deps, config, now, threading.Event()).status is RunStatus.OK


def test_collect_failure_is_recorded_and_alerted(world, config, now):
    def unreachable(config, stop):
        raise CollectError("https://api.ecr.us-east-1.amazonaws.com: could not connect")

    deps = replace(world.deps(), collect=unreachable)
    result = run_nightly(deps, config, now, threading.Event())

    assert result.status is RunStatus.FAILED and result.exit_code == ExitCode.UNREACHABLE
    [alert] = world.alerts
    assert "could not connect" in alert.summary
    row = world.store.runs()[0]
    assert row["status"] == "failed" and "collect: CollectError" in row["errors"][0]
    assert world.sent == []


def test_approved_proposals_past_grace_are_applied(world, config, now):
    deps = world.deps()
    run_nightly(deps, with_apply(config), now, threading.Event())  # proposes 2 deletions
    first, second = world.store.proposals.values()
    world.store.proposals[first.id] = replace(
        first, state=ProposalState.APPROVED, grace_until=now - timedelta(hours=1)
    )
    world.store.proposals[second.id] = replace(
        second, state=ProposalState.APPROVED, grace_until=now + timedelta(days=1)
    )

    result = run_nightly(deps, with_apply(config, apply_approved=True), now, threading.Event())

    assert world.applied_calls == [[first.id]]
    assert result.counts["approved_applied"] == 1
    assert set(first.target["digests"]).isdisjoint(digests(world))
    assert set(second.target["digests"]) <= digests(world)


def test_apply_failures_fail_the_run(world, config, now):
    deps = world.deps()

    def failing_apply(proposals, config, stop):
        result = world.registry.apply(proposals, config, stop)
        result.failed, result.errors = 1, ["ImageReferencedByManifestList: sha256:bbb"]
        return result

    deps = replace(deps, apply=failing_apply)
    result = run_nightly(deps, with_apply(config, auto_safe=True), now, threading.Event())
    assert result.status is RunStatus.FAILED and result.exit_code == ExitCode.APPLY_FAILED
    assert "apply safe: ImageReferencedByManifestList: sha256:bbb" in result.errors
    assert len(world.alerts) == 1


def test_stop_during_apply_records_an_incomplete_run(world, config, now):
    stop = threading.Event()
    deps = world.deps()

    def apply_then_stop(proposals, config, stop_flag):
        stop.set()  # SIGTERM arrives while the first batch runs
        return world.registry.apply(proposals, config, stop_flag)

    deps = replace(deps, apply=apply_then_stop)
    result = run_nightly(deps, with_apply(config, auto_safe=True), now, stop)

    assert result.status is RunStatus.INCOMPLETE
    assert any("stopped by request during apply" in e for e in result.errors)
    assert result.counts["safe_applied"] == 0  # the batch loop saw the flag at once
    assert world.sent == []  # no report after a stop
    assert world.store.runs()[0]["status"] == "incomplete"


def test_weekly_sends_one_report_per_namespace(world, config, now):
    result = run_weekly(world.deps(), config, now, stop=threading.Event())

    assert result.status is RunStatus.OK
    assert sorted(r["audience"] for r in world.sent) == config.namespaces
    # every owner report is rendered from the whole scan; the renderer picks what
    # concerns the namespace (tests/test_demo.py, tests/report)
    documents = [r["document"] for r in world.sent]
    assert all(d is documents[0] for d in documents)
    assert {f["repository"] for f in documents[0]["findings"]} >= {"ml/train"}
    assert result.counts["reports"] == result.counts["notified"] == len(config.namespaces)
    assert world.store.runs()[0]["kind"] == "weekly"


def test_a_report_that_reached_nobody_is_not_counted_as_notified(world, config, now):
    world.delivered = False
    weekly = run_weekly(world.deps(), config, now, stop=threading.Event())
    nightly = run_nightly(world.deps(), config, now, stop=threading.Event())
    assert weekly.counts["reports"] == len(config.namespaces)
    assert weekly.counts["notified"] == 0
    assert nightly.counts["reports"] == 1 and nightly.counts["notified"] == 0


def test_weekly_for_one_namespace(world, config, now):
    run_weekly(world.deps(), config, now, namespace="ml", stop=threading.Event())
    assert [r["audience"] for r in world.sent] == ["ml"]


def test_weekly_rejects_an_unregistered_namespace(world, config, now):
    with pytest.raises(ConfigError, match="'nope': not a registered project"):
        run_weekly(world.deps(), config, now, namespace="nope", stop=threading.Event())
    assert world.store.runs() == []


def test_weekly_one_failing_delivery_does_not_stop_the_others(world, config, now):
    deps = world.deps()

    def notify(report):
        if report["audience"] == "ml":
            raise OSError("SMTP 451 try again later")
        world.sent.append(report)

    result = run_weekly(replace(deps, notify=notify), config, now, stop=threading.Event())
    assert result.status is RunStatus.FAILED
    assert len(world.sent) == len(config.namespaces) - 1
    assert result.errors == ["notify ml: OSError: SMTP 451 try again later"]
    assert [a.kind for a in world.alerts] == ["weekly"]


def test_interrupt_is_recorded_then_re_raised(world, config, now):
    def interrupted(config, stop):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_nightly(replace(world.deps(), collect=interrupted), config, now, threading.Event())
    [row] = world.store.runs()
    assert row["status"] == "failed" and row["errors"] == ["job: KeyboardInterrupt: "]
    assert len(world.alerts) == 1
    with world.store.lock(LOCK_NAME):  # released despite the interrupt
        pass


def test_secrets_never_reach_the_run_record_or_the_alert(world, config, now, monkeypatch):
    monkeypatch.setenv("HYGIENE_SMTP_PASSWORD", "s3cr3t-pass")

    def notify(report):
        raise OSError("535 authentication failed for user hygiene:s3cr3t-pass")

    result = run_nightly(replace(world.deps(), notify=notify), config, now, threading.Event())
    recorded = world.store.runs()[0]["errors"]
    assert recorded == ["notify: OSError: 535 authentication failed for user hygiene:***"]
    assert result.errors == recorded
    assert "s3cr3t" not in world.alerts[0].summary + "".join(world.alerts[0].errors)


# --------------------------------------------------------------------------- degraded


@dataclass
class Delivery:
    channel: str
    target: str
    ok: bool
    error: str | None = None


def test_a_report_that_reached_no_one_degrades_the_run_and_alerts(world, config, now):
    def notify(report):
        world.sent.append(report)
        return [
            Delivery("slack", "#registry-admins", False, "channel_not_found"),
            Delivery("email", "admins@lsd", False, "SMTPAuthenticationError"),
        ]

    result = run_nightly(replace(world.deps(), notify=notify), config, now, threading.Event())
    assert result.status is RunStatus.DEGRADED and result.exit_code == ExitCode.DEGRADED == 8
    assert result.errors == [
        "admin report: the report reached no one (slack to #registry-admins: "
        "channel_not_found; email to admins@lsd: SMTPAuthenticationError)"
    ]
    [row] = world.store.runs()
    assert row["status"] == "degraded"
    [alert] = world.alerts
    assert alert.status is RunStatus.DEGRADED and "reached no one" in alert.summary


def test_one_channel_that_works_is_enough(world, config, now):
    def notify(report):
        return [Delivery("slack", "#x", False, "down"), Delivery("email", "admins", True)]

    result = run_nightly(replace(world.deps(), notify=notify), config, now, threading.Event())
    assert result.status is RunStatus.OK and world.alerts == []
    nothing = run_nightly(
        replace(world.deps(), notify=lambda r: []), config, now, threading.Event()
    )
    assert nothing.status is RunStatus.OK  # no channel configured: the files are the report


def test_weekly_is_degraded_by_one_owner_report_that_reached_no_one(world, config, now):
    def notify(report):
        return [Delivery("slack", f"dm:{report['audience']}", report["audience"] != "ml")]

    result = run_weekly(replace(world.deps(), notify=notify), config, now, stop=threading.Event())
    assert result.status is RunStatus.DEGRADED
    assert result.errors == ["owner report ml: the report reached no one (slack to dm:ml: failed)"]


def test_an_incomplete_scan_outranks_degraded(world, config, now):
    world.registry.broken.add("suporte/cloud/api")
    result = run_nightly(
        replace(world.deps(), notify=lambda r: [Delivery("email", "a", False)]),
        config,
        now,
        threading.Event(),
    )
    assert result.status is RunStatus.INCOMPLETE and result.exit_code == ExitCode.INCOMPLETE


def test_the_run_pins_its_trust_policy_before_it_reads_the_registry(world, config, now):
    order: list[str] = []
    deps = world.deps()
    collect = deps.collect

    def pin(config_, run_id):
        order.append(f"pin {run_id}")

    def collecting(config_, stop):
        order.append("collect")
        return collect(config_, stop)

    result = run_nightly(replace(deps, pin_trust=pin, collect=collecting), config, now)
    assert order == [f"pin {result.run_id}", "collect"]
    assert LOCK_NAME == "registry"


def test_a_read_refused_to_apply_fails_the_nightly_run_and_alerts(world, config, now):
    """The re-check's read refused by IAM (the cleaner role lacks it): nothing deleted, the
    proposal kept, and the run failed (exit 7) with the reason, so the admins hear."""
    deps = world.deps()

    def refused_apply(proposals, config, stop):
        result = ApplySummary(skipped=len(proposals))
        result.refused = [
            f"{p.id}: a read was refused (AccessDeniedException): …" for p in proposals
        ]
        return result

    deps = replace(deps, apply=refused_apply)
    result = run_nightly(deps, with_apply(config, auto_safe=True), now, threading.Event())

    assert result.status is RunStatus.FAILED and result.exit_code == ExitCode.APPLY_FAILED
    assert sum("a read was refused" in e for e in result.errors) == 2
    [alert] = world.alerts
    assert alert.status is RunStatus.FAILED and "a read was refused" in " ".join(alert.errors)
    assert len(digests(world)) == 3


def test_a_proposal_kept_again_and_again_alerts_once_though_the_run_is_ok(world, config, now):
    """Kept for a retry by the third apply in a row (apply reports it that once): the run
    is ok, exit 0, and the admins get one alert saying which and why."""
    deps = world.deps()
    kept = ["p-000000000001: kept for the next apply by 3 applies in a row, nothing deleted: …"]

    def keeping_apply(proposals, config, stop):
        return ApplySummary(skipped=len(proposals), kept=list(kept))

    deps = replace(deps, apply=keeping_apply)
    result = run_nightly(deps, with_apply(config, auto_safe=True), now, threading.Event())

    assert result.status is RunStatus.OK and result.exit_code == 0
    assert result.errors == [f"apply safe: {kept[0]}"]
    [alert] = world.alerts
    assert alert.status is RunStatus.OK
    assert alert.subject == (
        f"registry-hygiene: nightly run {result.run_id}: 1 proposal(s) kept by apply again"
    )
    assert alert.errors == (f"apply safe: {kept[0]}",)

    world.alerts.clear()  # a run whose apply keeps nothing long says nothing
    run_nightly(world.deps(), with_apply(config, auto_safe=True), now, threading.Event())
    assert world.alerts == []
