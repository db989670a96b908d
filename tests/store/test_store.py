"""Store tests: every test runs on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import inspect, text

from hygiene.config import ApplySettings
from hygiene.errors import LockHeldError, StoreError
from hygiene.model import FixSafety, Proposal, ProposalState
from hygiene.store import Store
from hygiene.store.models import LockRow
from tests import builders
from tests.builders import ACCOUNT, NOW, REGION


def make_proposal(repository: str = "suporte/api", **fields: Any) -> Proposal:
    """A proposal to delete image ``a`` (or ``digests=``) from ``repository``."""
    return builders.proposal(repository=repository, **{"digests": ["a"], **fields})


def test_open_migrates_to_head_and_reopens(store: Store, store_url: str) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {"runs", "findings", "proposals", "approvals", "audit", "locks", "trust_pins"} <= tables
    with store.engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    from alembic.script import ScriptDirectory

    from hygiene.store.engine import alembic_config

    head = ScriptDirectory.from_config(alembic_config(store.engine)).get_current_head()
    assert version == head == "0008"
    with Store(store_url) as again:  # a second open is a no-op upgrade
        assert again.runs() == []


def test_sqlite_uses_wal(tmp_path) -> None:
    store = Store(str(tmp_path / "plain-path.db"))
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    store.close()


def test_a_new_sqlite_store_has_64_kib_pages_and_an_old_one_keeps_its_own(tmp_path) -> None:
    """A new store gets SQLITE_PAGE_SIZE (its large evidence in 16 times fewer pages); a
    store created with SQLite's default pages (before this version) opens, keeps its
    4096-byte pages, and stores and reads back as before."""
    import sqlite3

    from hygiene.store.engine import SQLITE_PAGE_SIZE

    assert SQLITE_PAGE_SIZE == 65536
    new = Store(str(tmp_path / "new.db"))
    old_path = tmp_path / "old.db"
    with sqlite3.connect(old_path) as connection:  # a file as older versions began it
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE earlier (x)")
    old = Store(str(old_path))
    for store, size in ((new, 65536), (old, 4096)):
        with store.engine.connect() as connection:
            assert connection.execute(text("PRAGMA page_size")).scalar() == size
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        store.upsert_proposals([make_proposal()], NOW)
        assert [p.proposal.repository for p in store.proposals()] == ["suporte/api"]
        store.close()


def test_a_percent_in_the_url_opens_the_store(tmp_path) -> None:
    """A file name with ``%`` (the URL says ``%25``): Alembic reads its options with
    configparser, which took the ``%`` for an interpolation and failed with a
    traceback."""
    directory = tmp_path / "100% lab"
    directory.mkdir()
    with Store(f"sqlite:///{directory / 'hygiene.db'}") as store:
        assert store.runs() == []
    assert (directory / "hygiene.db").is_file()


@pytest.mark.integration
def test_a_password_with_url_escapes_opens_the_postgresql_store(postgres_server) -> None:
    """A password with ``@``, ``%`` and ``:`` goes in the URL percent-encoded; the test
    server trusts local connections, so any password is accepted (what is checked is
    that the URL survives the migrations' configuration)."""
    from urllib.parse import quote

    url = postgres_server.create_database()
    password = quote("p@ss:50%/w", safe="")
    with_password = url.replace("postgres@", f"postgres:{password}@", 1)
    assert "%40" in with_password and "%25" in with_password
    with Store(with_password) as store:
        assert store.runs() == []


def test_bad_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="unsupported database"):
        Store("nosuchdb://x/y")


def test_run_history(store: Store) -> None:
    first = store.record_run("nightly", started_at=NOW - timedelta(days=1), source="ecr")
    second = store.record_run("nightly", started_at=NOW, source="ecr")
    store.finish_run(
        first,
        "incomplete",
        finished_at=NOW - timedelta(days=1) + timedelta(minutes=3),
        counts={"images": 10},
        api_calls={"DescribeImages": 4},
        errors=[{"region": "us-east-1", "repository": "x", "message": "denied"}],
    )
    runs = store.runs(last=5)
    assert [r.id for r in runs] == [second, first]
    assert runs[0].status == "running" and runs[0].finished_at is None
    assert runs[1].status == "incomplete"
    assert runs[1].counts == {"images": 10}
    assert runs[1].api_calls == {"DescribeImages": 4}
    assert runs[1].errors[0]["message"] == "denied"
    assert runs[1].duration_seconds == 180
    assert runs[1].started_at.tzinfo is not None
    assert store.runs(last=1)[0].id == second
    assert store.runs(kind="weekly") == []
    with pytest.raises(ValueError, match=r"ok\|degraded\|incomplete\|failed"):
        store.finish_run(second, "great")
    assert runs[0].summary == {}
    store.set_run_summary(first, {"namespace_bytes": {"ml": 5, "": 1}, "images": 10})
    assert store.runs(kind="nightly")[1].summary == {
        "namespace_bytes": {"ml": 5, "": 1},
        "images": 10,
    }
    with pytest.raises(StoreError, match="not in the store"):
        store.set_run_summary("nope", {})


def test_findings_are_kept_per_run(store: Store) -> None:
    run_id = store.record_run("scan")
    finding = builders.finding("IM002", "suporte/api", digest="a", bytes=5)
    other = builders.finding("RP001", "suporte/api", bytes=3)
    assert store.record_findings(run_id, [other, finding, finding]) == 2
    total, single = store.findings(run_id)
    assert (total["code"], total["images"], total["bytes"]) == ("IM002", 2, 10)
    assert single == other.to_json()
    assert store.findings(store.record_run("scan")) == []


def test_upsert_refreshes_instead_of_duplicating(store: Store) -> None:
    proposal = make_proposal()
    assert store.upsert_proposals([proposal], NOW)["new"] == 1
    counts = store.upsert_proposals([proposal], NOW + timedelta(days=1))
    assert counts == {"new": 0, "refreshed": 1, "revived": 0, "expired": 0, "confirmed": 0}
    (stored,) = store.proposals()
    assert stored.proposal.first_seen == NOW
    assert stored.last_seen == NOW + timedelta(days=1)
    assert stored.state == ProposalState.PROPOSED
    assert stored.proposal.target == proposal.target
    assert stored.proposal.evidence == proposal.evidence


def test_proposal_gone_from_a_complete_plan_expires(store: Store) -> None:
    old, new = make_proposal(), make_proposal(digests=["b"])
    store.upsert_proposals([old], NOW)
    store.upsert_proposals([new], NOW + timedelta(days=1), complete=False)
    assert store.get(old.id).state == ProposalState.PROPOSED  # incomplete scan: keep
    counts = store.upsert_proposals([new], NOW + timedelta(days=2))
    assert counts["expired"] == 1
    expired = store.get(old.id)
    assert expired.state == ProposalState.EXPIRED and "no longer proposed" in expired.outcome
    # and when it comes back it is proposed again, with a new first_seen and no grace
    counts = store.upsert_proposals([old, new], NOW + timedelta(days=3))
    assert counts["revived"] == 1
    revived = store.get(old.id)
    assert revived.state == ProposalState.PROPOSED
    assert revived.proposal.first_seen == NOW + timedelta(days=3)
    assert revived.proposal.grace_until is None


def test_scopes_limit_expiry_to_the_scanned_regions(store: Store) -> None:
    east = make_proposal()
    west = make_proposal(region="us-west-2")
    store.upsert_proposals([east, west], NOW)
    store.upsert_proposals([east], NOW + timedelta(days=1), scopes=[(ACCOUNT, REGION)])
    assert store.get(west.id).state == ProposalState.PROPOSED


def test_approved_proposal_expires_after_ttl_only(store_url: str) -> None:
    store = Store(store_url, ApplySettings(proposal_ttl_days=10))
    proposal = make_proposal()
    store.upsert_proposals([proposal], NOW)
    store.approve([proposal.id], "arn:aws:sts::1:assumed-role/Admin/alice", now=NOW)
    store.upsert_proposals([], NOW + timedelta(days=9))
    assert store.get(proposal.id).state == ProposalState.APPROVED  # decision survives a gap
    store.upsert_proposals([], NOW + timedelta(days=10))
    stored = store.get(proposal.id)
    assert stored.state == ProposalState.EXPIRED
    assert "10 days" in stored.outcome
    store.close()


def test_mark_notified_starts_grace_once(store_url: str) -> None:
    store = Store(store_url, ApplySettings(grace_days=7))
    suporte, ml, bare = make_proposal(), make_proposal("ml/train"), make_proposal("nginx")
    store.upsert_proposals([suporte, ml, bare], NOW)
    assert store.mark_notified(NOW, namespace="suporte") == 1
    assert store.mark_notified(NOW + timedelta(days=2), namespace="suporte") == 0
    assert store.get(suporte.id).proposal.grace_until == NOW + timedelta(days=7)
    assert store.get(suporte.id).notified_at == NOW
    assert store.get(ml.id).proposal.grace_until is None
    assert store.mark_notified(NOW, outside_namespace=True) == 1
    assert store.get(bare.id).proposal.grace_until == NOW + timedelta(days=7)
    assert store.mark_notified(NOW + timedelta(days=1), ids=[ml.id]) == 1
    assert store.get(ml.id).proposal.grace_until == NOW + timedelta(days=8)
    with pytest.raises(ValueError):
        store.mark_notified(NOW)
    store.close()


def test_a_rejected_proposal_gets_its_grace_from_the_report_after_its_approval(
    store_url: str,
) -> None:
    """A report shows a rejected proposal without a grace date: a notice then must not
    start one, or an admin approving it later (by id, over the objection) would find its
    grace already run, counted from a notice that gave its owners no date."""
    store = Store(store_url, ApplySettings(grace_days=7))
    objected, open_ = make_proposal(), make_proposal("suporte/web")
    store.upsert_proposals([objected, open_], NOW)
    store.reject([objected.id], "owner@lab.example", "still used by the course", now=NOW)
    assert store.mark_notified(NOW, namespace="suporte") == 1  # the open one only
    assert store.get(objected.id).notified_at is None
    assert store.get(objected.id).proposal.grace_until is None
    later = NOW + timedelta(days=10)
    store.approve([objected.id], "os:root", now=later)
    assert store.mark_notified(later, namespace="suporte") == 1  # the next report's notice
    assert store.get(objected.id).proposal.grace_until == later + timedelta(days=7)
    store.close()


def test_filters(store: Store) -> None:
    a = make_proposal("suporte/api", rule_codes=("IM002",))
    b = make_proposal("suporte/web", rule_codes=("IM001",), fix_safety=FixSafety.SAFE)
    c = make_proposal("nginx", rule_codes=("IM003",))
    store.upsert_proposals([a, b, c], NOW)
    store.approve([b.id], "os:root", now=NOW)
    assert {s.id for s in store.proposals(namespace="suporte")} == {a.id, b.id}
    assert {s.id for s in store.proposals(namespace="-")} == {c.id}
    assert {s.id for s in store.proposals(rule="IM00")} == {a.id, b.id, c.id}
    assert {s.id for s in store.proposals(rule="im001")} == {b.id}
    assert {s.id for s in store.proposals(state="approved")} == {b.id}
    assert {s.id for s in store.proposals(state=["proposed"], namespace="suporte")} == {a.id}


def test_approve_and_reject_are_all_or_nothing(store: Store) -> None:
    a, b = make_proposal(), make_proposal("ml/x")
    store.upsert_proposals([a, b], NOW)
    with pytest.raises(StoreError, match=r"unknown proposal id.*p-nope"):
        store.approve([a.id, "p-nope"], "os:root")
    assert store.get(a.id).state == ProposalState.PROPOSED
    approved = store.approve([a.id], "os:root", now=NOW)
    assert approved[0].decided_by == "os:root"
    with pytest.raises(StoreError, match="needs a reason"):
        store.reject([b.id], "os:root", " ")
    store.reject([a.id, b.id], "os:alice", "still used by the 2019 audit", now=NOW)
    assert store.get(a.id).state == ProposalState.REJECTED
    assert store.get(a.id).reason == "still used by the 2019 audit"
    history = store.approvals(a.id)
    assert [h["decision"] for h in history] == ["approved", "rejected"]
    assert [h["approver"] for h in history] == ["os:root", "os:alice"]
    decisions = store.audit_log(proposal_id=a.id)
    assert [(e.action, e.actor) for e in decisions] == [
        ("approve", "os:root"),
        ("reject", "os:alice"),
    ]
    store.set_state(a.id, ProposalState.APPLIED, "done")
    with pytest.raises(StoreError, match="no longer open"):
        store.approve([a.id], "os:root")


def test_audit_log_and_open_intents(store: Store) -> None:
    intent = store.audit(
        "delete-images", "intent", at=NOW, proposal_id="p-1", data={"digests": ["d1"]}
    )
    done = store.audit("delete-images", "intent", at=NOW, proposal_id="p-1")
    store.audit(
        "delete-images", "deleted", at=NOW + timedelta(minutes=1), intent_id=done, digest="d2"
    )
    store.audit("delete-images", "intent", at=NOW, dry_run=True)
    open_ = store.open_intents()
    assert [e.id for e in open_] == [intent]
    assert open_[0].data == {"digests": ["d1"]}
    assert [e.outcome for e in store.audit_log(since=NOW + timedelta(seconds=30))] == ["deleted"]
    assert len(store.audit_log(include_dry_run=False)) == 3


def test_lock_names_the_holder_and_is_released(store: Store, store_url: str) -> None:
    other = Store(store_url)  # another process's connection pool
    with store.lock("apply", holder="alice@host pid 1"):
        with pytest.raises(LockHeldError) as caught, other.lock("apply"):
            pass
        message = caught.value.message
        assert "alice@host pid 1 since 20" in message
        assert caught.value.exit_code == 5
        with other.lock("nightly"):  # other names are independent
            pass
    with other.lock("apply"):  # released on exit
        assert other.lock_holder("apply") is not None
    assert other.lock_holder("apply") is None
    other.close()


def test_lock_released_when_the_body_raises(store: Store) -> None:
    with pytest.raises(RuntimeError), store.lock("apply"):
        raise RuntimeError("boom")
    with store.lock("apply"):
        pass


def test_stale_sqlite_lock_of_a_dead_process_is_taken_over(
    tmp_path, subprocess_env: dict[str, str]
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
        env=subprocess_env,
    )
    import socket

    with store.session() as session:
        session.add(
            LockRow(
                name="apply",
                holder="ghost",
                host=socket.gethostname(),
                pid=int(dead.stdout),
                acquired_at=NOW,
            )
        )
    with store.lock("apply"):
        assert store.lock_holder("apply")[0] != "ghost"
    # a live holder on this host is respected
    with store.session() as session:
        session.add(
            LockRow(
                name="apply",
                holder="me",
                host=socket.gethostname(),
                pid=os.getpid(),
                acquired_at=datetime.now(UTC),
            )
        )
    with pytest.raises(LockHeldError, match="me since"), store.lock("apply"):
        pass
    store.close()


def _own_start() -> datetime:
    """When this process started, read the way a reader of /proc would (Linux)."""
    with open(f"/proc/{os.getpid()}/stat") as stat:
        ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat") as machine:
        boot = next(int(line.split()[1]) for line in machine if line.startswith("btime "))
    return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), UTC)


def test_a_live_holder_on_this_host_keeps_its_lock_however_long_it_runs(tmp_path) -> None:
    """An apply or a nightly run that takes longer than the stale-lock age is still
    running: taking its lock would let a second run change the registry beside it."""
    import socket

    store = Store(f"sqlite:///{tmp_path / 'h.db'}", stale_lock_after=timedelta(microseconds=1))
    with store.session() as session:
        session.add(
            LockRow(
                name="registry",
                holder="a long apply",
                host=socket.gethostname(),
                pid=os.getpid(),  # alive, and started before it took the lock
                acquired_at=_own_start(),  # long before the stale-lock age
            )
        )
    with pytest.raises(LockHeldError, match="a long apply since"), store.lock():
        pass
    assert store.lock_holder()[0] == "a long apply"
    store.close()


def test_a_lock_whose_pid_now_belongs_to_a_younger_process_is_taken_over(tmp_path) -> None:
    """The holder died and its pid was given to a process started after the lock was
    taken (a container whose process is always pid 1): the holder is gone."""
    import socket

    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    with store.session() as session:
        session.add(
            LockRow(
                name="registry",
                holder="a killed run",
                host=socket.gethostname(),
                pid=os.getpid(),  # alive, but started an hour after the lock was taken
                acquired_at=_own_start() - timedelta(hours=1),
            )
        )
    with store.lock():
        assert store.lock_holder()[0] != "a killed run"
    store.close()


def test_postgres_lock_is_an_advisory_lock(postgres_server) -> None:
    url = postgres_server.create_database()
    first, second = Store(url), Store(url)
    assert first.dialect == "postgresql"
    with first.lock("apply"):
        with second.engine.connect() as connection:
            held = connection.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
            ).scalar()
        assert held == 1
        with pytest.raises(LockHeldError), second.lock("apply"):
            pass
    with second.lock("apply"):
        pass
    first.close()
    second.close()


def test_finished_or_rejected_proposals_coming_back(store: Store) -> None:
    failed, rejected = make_proposal(), make_proposal("ml/x")
    store.upsert_proposals([failed, rejected], NOW)
    store.mark_notified(NOW, ids=[failed.id])
    store.approve([failed.id], "os:root", now=NOW)
    store.reject([rejected.id], "os:root", "keep", now=NOW)
    store.set_state(failed.id, ProposalState.FAILED, "KmsError", NOW)
    counts = store.upsert_proposals([failed, rejected], NOW + timedelta(days=1))
    assert counts["revived"] == 1
    again = store.get(failed.id)
    assert again.state == ProposalState.PROPOSED  # needs a fresh decision
    assert again.decided_by is None and again.proposal.grace_until is None
    assert store.get(rejected.id).state == ProposalState.REJECTED  # the decision sticks


def test_lock_of_a_killed_process_is_freed(
    store: Store, store_url: str, subprocess_env: dict[str, str]
) -> None:
    """A process holding the lock is killed (-9); the next run gets the lock."""
    script = (
        "import sys, time\n"
        "from hygiene.store import Store\n"
        "store = Store(sys.argv[1])\n"
        "with store.lock('apply'):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, store_url],
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeldError, match=f"pid {holder.pid} since"), store.lock("apply"):
            pass
    finally:
        holder.kill()
        holder.wait(10)
    if store.dialect == "postgresql":
        # The server frees the advisory lock when the killed client's backend notices the
        # closed connection, a moment after the kill (the test raced it and failed at times).
        deadline = time.monotonic() + 10
        while _granted_advisory_locks(store) and time.monotonic() < deadline:
            time.sleep(0.05)
    with store.lock("apply"):
        assert store.lock_holder("apply")[0].endswith(f"pid {os.getpid()}")


def _granted_advisory_locks(store: Store) -> int:
    with store.engine.connect() as connection:
        query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        return int(connection.execute(text(query)).scalar() or 0)


def test_migrations_match_the_models(store: Store) -> None:
    """A model change without a new Alembic revision fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from hygiene.store.models import Base

    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        assert compare_metadata(context, Base.metadata) == []


def test_concurrent_first_opens_both_succeed(store_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def open_and_count(_: int) -> int:
        with Store(store_url) as opened:
            return len(opened.runs())

    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(open_and_count, range(3))) == [0, 0, 0]


def test_unreachable_postgres_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="unreachable"):
        Store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


# Three processes (~3 s): the race is between processes migrating the same new database.
def test_concurrent_first_opens_from_processes(
    store_url: str, subprocess_env: dict[str, str]
) -> None:
    script = "import sys\nfrom hygiene.store import Store\nprint(len(Store(sys.argv[1]).runs()))"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, store_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env,
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in results]
    assert [out.strip() for out, _ in results] == ["0", "0", "0"]


def test_colliding_ids_are_refused_not_merged(store: Store) -> None:
    proposal = make_proposal("suporte/api")
    other = dataclasses.replace(proposal, repository="suporte/web")
    with pytest.raises(StoreError, match="share the id"):
        store.upsert_proposals([proposal, other], NOW)
    assert store.proposals() == []  # nothing half-stored
    store.upsert_proposals([proposal], NOW)
    with pytest.raises(StoreError, match="must include the repository"):
        store.upsert_proposals([other], NOW)


def test_a_complete_scan_confirms_and_records_each_repository(store: Store) -> None:
    api, web = make_proposal("suporte/api"), make_proposal("suporte/web")
    scan = builders.coverage(
        [api], at=NOW, run_id="nightly-1", incomplete={(ACCOUNT, REGION, "suporte/web"): "x"}
    )
    counts = store.upsert_proposals([api, web], NOW, coverage=scan)
    assert counts["confirmed"] == 1
    stored = {s.proposal.repository: s for s in store.proposals()}
    assert (stored["suporte/api"].confirmed_by, stored["suporte/api"].confirmed_at) == (
        "nightly-1",
        NOW,
    )
    assert stored["suporte/web"].confirmed_by is None  # stored, but nothing can apply it
    assert stored["suporte/api"].to_json()["confirmed_by"] == "nightly-1"
    scans = store.repository_scans(
        [(ACCOUNT, REGION, "suporte/api"), (ACCOUNT, REGION, "suporte/web")]
    )
    assert scans[(ACCOUNT, REGION, "suporte/api")].last_incomplete_at is None
    assert scans[(ACCOUNT, REGION, "suporte/web")].last_incomplete_at == NOW
    assert scans[(ACCOUNT, REGION, "suporte/web")].last_error == "x"


def test_a_region_level_error_makes_every_repository_there_incomplete(store: Store) -> None:
    api = make_proposal("suporte/api")
    store.upsert_proposals([api], NOW, coverage=builders.coverage([api], at=NOW))
    later = NOW + timedelta(days=1)
    broken = builders.coverage(
        at=later,
        run_id="nightly-2",
        incomplete_regions={("*", REGION): "GetRegistryScanningConfiguration: 500"},
    )
    store.upsert_proposals([], later, coverage=broken)
    scan = store.repository_scans([(ACCOUNT, REGION, "suporte/api")])[
        (ACCOUNT, REGION, "suporte/api")
    ]
    assert scan.last_incomplete_at == later and scan.last_incomplete_run == "nightly-2"
    assert scan.last_scan_at == later
    assert "GetRegistryScanningConfiguration" in (scan.last_error or "")
    other = store.repository_scans([(ACCOUNT, "eu-west-1", "x/y")])[(ACCOUNT, "eu-west-1", "x/y")]
    assert other.last_scan_at is None  # another region knows nothing of it


def test_expiry_by_absence_is_decided_per_repository_read(store: Store) -> None:
    api, web = make_proposal("suporte/api"), make_proposal("suporte/web")
    store.upsert_proposals([api, web], NOW, coverage=builders.coverage([api, web], at=NOW))
    later = NOW + timedelta(days=1)
    # an incomplete scan: api read whole (its proposal is gone), web not read
    scan = builders.coverage(
        at=later,
        complete=[(ACCOUNT, REGION, "suporte/api")],
        incomplete={(ACCOUNT, REGION, "suporte/web"): "throttled"},
    )
    counts = store.upsert_proposals([], later, coverage=scan)
    assert counts["expired"] == 1
    assert store.get(api.id).state == ProposalState.EXPIRED
    assert store.get(web.id).state == ProposalState.PROPOSED


def test_an_old_snapshot_never_moves_the_scan_history_back(store: Store) -> None:
    api = make_proposal("suporte/api")
    store.upsert_proposals([api], NOW, coverage=builders.coverage([api], at=NOW, run_id="new"))
    old = builders.coverage([api], at=NOW - timedelta(days=3), run_id="old")
    store.upsert_proposals([api], NOW, coverage=old, complete=False)
    key = (ACCOUNT, REGION, "suporte/api")
    assert store.repository_scans([key])[key].last_scan_run == "new"
    assert store.get(api.id).confirmed_by == "new"  # nor the confirmation


def test_toast_compression_is_lz4_only_where_the_server_offers_it() -> None:
    from hygiene.store.engine import toast_compression

    assert toast_compression(["pglz", "lz4"]) == "lz4"
    assert toast_compression(["pglz"]) is None
    assert toast_compression(None) is None


@pytest.mark.integration
def test_postgresql_sessions_compress_with_the_best_method_the_server_has(
    postgres_server,
) -> None:
    """The test server was built without lz4: its sessions keep pglz, and a value large
    enough to be compressed reads back the same (the setting is asked on every new
    connection, and survives the pool's rollback)."""
    from hygiene.store.engine import make_engine

    engine = make_engine(postgres_server.create_database())
    try:
        with engine.connect() as connection:
            offered = connection.exec_driver_sql(
                "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'"
            ).scalar()
            expected = "lz4" if "lz4" in offered else "pglz"
            assert connection.exec_driver_sql("SHOW default_toast_compression").scalar() == (
                expected
            )
            connection.exec_driver_sql("CREATE TABLE big (value json)")
            value = '{"images": [' + ", ".join(['"sha256:' + "a" * 64 + '"'] * 500) + "]}"
            connection.exec_driver_sql("INSERT INTO big VALUES (%(v)s)", {"v": value})
            connection.commit()
            method = connection.exec_driver_sql(
                "SELECT pg_column_compression(value) FROM big"
            ).scalar()
            assert method == expected  # 36 KB: compressed, with the session's method
            assert connection.exec_driver_sql("SELECT value::text FROM big").scalar() == value
        with engine.connect() as again:  # back from the pool: the setting is still there
            assert again.exec_driver_sql("SHOW default_toast_compression").scalar() == expected
    finally:
        engine.dispose()


@pytest.mark.integration
def test_a_failure_choosing_the_compression_never_stops_the_store(
    postgres_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hygiene.store.engine as engine_module

    def broken(_available: Any) -> str | None:
        raise RuntimeError("no luck")

    monkeypatch.setattr(engine_module, "toast_compression", broken)
    with Store(postgres_server.create_database()) as store:
        assert store.runs() == []
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT 1").scalar() == 1
