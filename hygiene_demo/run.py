"""The demo: seed the embedded registry, then run the nightly and weekly jobs on it.

Everything after seeding is the production code path — the same jobs, store, rules,
plan, reports, deliveries — pointed at the embedded registry's endpoint, with a SQLite
store and the output directory of the demo. E-mail goes to the demo's outbox
(``<out>/outbox/*.eml``, :mod:`hygiene_demo.outbox`) instead of a mail server: the
owners are made up, and a notice that reached its outbox starts the grace period, as a
delivered e-mail would.
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from hygiene.authz.identity import os_user
from hygiene.config import POLICY_FILE, PROJECTS_FILE, Config
from hygiene.errors import HygieneError
from hygiene.jobs import run_nightly, run_weekly
from hygiene.jobtypes import JobResult
from hygiene.notify.channels.email import EmailChannel
from hygiene.report.render import LATEST
from hygiene.scan import RegistryAccess, ScanResult
from hygiene.wiring import Wired, build_job_deps
from hygiene_demo.manifest import summary_line
from hygiene_demo.outbox import Outbox
from hygiene_demo.registry import REGION, EmbeddedRegistry
from hygiene_demo.seed import seed_lab_registry
from hygiene_demo.workloads import DemoWorkload, seed_demo_workloads

DEMO_DB = "demo.db"
DB_SIDECARS = ("-wal", "-shm", "-journal")
DEMO_ACCOUNT = "123456789012"  # the embedded registry's, unless registry.account says


def demo_rules(rules_dir: Path, out: Path, *, grace_days: int | None = None) -> Path:
    """Write the demo's configuration to ``out``: ``rules_dir``'s, with the user of this
    process (``os:<user>``) added to ``admins``, ``registry.account`` set (the embedded
    registry's) and ``apply.grace_days`` from ``--grace-days``. Returns ``out``.

    The demo's runs pin exactly this configuration, and its ``--keep-running`` shell
    uses it (``HYGIENE_RULES_DIR``), so approve and apply there check the same admins."""
    policy = yaml.safe_load((rules_dir / POLICY_FILE).read_text(encoding="utf-8")) or {}
    me = f"os:{os_user()}"
    admins = list(policy.get("admins") or [])
    if me not in admins:
        admins.append(me)
    policy["admins"] = admins
    registry = dict(policy.get("registry") or {})
    registry.setdefault("account", DEMO_ACCOUNT)
    policy["registry"] = registry
    if grace_days is not None:
        policy["apply"] = {**(policy.get("apply") or {}), "grace_days": grace_days}
    out.mkdir(parents=True, exist_ok=True)
    header = "# Written by `hygiene demo` from " + str(rules_dir / POLICY_FILE) + "\n"
    (out / POLICY_FILE).write_text(
        header + yaml.safe_dump(policy, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    if (rules_dir / PROJECTS_FILE).resolve() != (out / PROJECTS_FILE).resolve():
        shutil.copyfile(rules_dir / PROJECTS_FILE, out / PROJECTS_FILE)
    return out


@dataclass
class DemoOutcome:
    result: ScanResult
    store_url: str
    seeded: str
    jobs: list[JobResult] = field(default_factory=list)
    workloads: list[DemoWorkload] = field(default_factory=list)
    outputs: list[tuple[str, Path]] = field(default_factory=list)


def run_demo(
    registry: EmbeddedRegistry,
    config: Config,
    *,
    now: datetime,
    out_dir: Path,
    store_url: str | None = None,
    rng_seed: int = 7,
) -> DemoOutcome:
    out_dir.mkdir(parents=True, exist_ok=True)
    if store_url is None:
        # each demo starts from a fresh store: the registry is seeded anew, so a previous
        # run's proposals, grace dates and history would describe another registry
        database = (out_dir / DEMO_DB).resolve()
        for stale in (database, *(database.with_name(database.name + s) for s in DB_SIDECARS)):
            stale.unlink(missing_ok=True)
        store_url = f"sqlite:///{database}"
    manifest = seed_lab_registry(registry, config.projects, now, rng_seed=rng_seed)
    # workloads that run some of the stale images: kept because they run (docs/in-use.md)
    workloads = seed_demo_workloads(registry.endpoint_url, manifest)
    access = RegistryAccess(
        endpoint_url=registry.endpoint_url,
        session=registry.session(),
        regions=(REGION,),
        source="embedded",
    )
    notify = config.policy.notify.model_copy(update={"email": True, "slack": False})
    config = config.model_copy(
        update={"policy": config.policy.model_copy(update={"notify": notify})}
    )
    outbox = Outbox(out_dir / "outbox")
    deps = build_job_deps(
        config,
        access=access,
        store_url=store_url,
        out_dir=out_dir,
        send=True,
        demo_id=registry.demo_id,
        channels=[EmailChannel(outbox, sender=notify.smtp.sender)],
    )
    wired: Wired = deps.context
    jobs = [
        run_nightly(deps, config, now, stop=threading.Event()),
        run_weekly(deps, config, now, stop=threading.Event()),
    ]
    if wired.inventory is None or wired.evaluation is None:
        failed = "; ".join(e for job in jobs for e in job.errors[:3])
        raise HygieneError(f"demo: the jobs did not get past the scan: {failed}")
    stored = {p.id: p.proposal for p in wired.store.proposals()}
    result = ScanResult(
        inventory=wired.inventory,
        findings=list(wired.evaluation.findings),
        kept=list(wired.evaluation.kept),
        proposals=[stored.get(p.id, p) for p in wired.proposals],
        mute_warnings=list(wired.evaluation.mute_warnings),
        snapshot=wired.snapshot,
    )
    seeded = f"{summary_line(manifest)}; {len(workloads)} workloads run stale images"
    outcome = DemoOutcome(result=result, store_url=store_url, seeded=seeded)
    outcome.workloads = workloads
    outcome.jobs = jobs
    scan_json = out_dir / "scan.json"
    scan_json.write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    outcome.outputs.append(("scan JSON", scan_json))
    latest = out_dir / LATEST
    for report in wired.reports:
        label = "admin report" if report.kind == "nightly" else f"owner report {report.namespace}"
        # latest/ holds the same files under a path that does not change from run to run
        outcome.outputs.append((label, latest / report.files["html"].name))
    if outbox.sent:
        outcome.outputs.append((f"e-mails ({len(outbox.sent)})", outbox.directory))
    return outcome
