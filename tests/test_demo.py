"""The demo runs end to end, in its own process, exactly as `make demo` runs it."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from hygiene.store import Store
from tests.browser.chromium import DESKTOP, PHONE, layout
from tests.browser.test_layout import SCREENSHOTS
from tests.builders import REPO_ROOT


# Slow by design (~12 s per demo run, docs/benchmarks.md): `make demo` as users run it, then
# a second run with --keep-running and its hints used from another "shell".
def test_demo_end_to_end(tmp_path: Path, subprocess_env: dict[str, str], chromium: Any) -> None:
    out = tmp_path / "out"
    env = {k: v for k, v in subprocess_env.items() if not k.startswith(("AWS_", "MOTO_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "hygiene", "demo", "--out", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "40 repositories" in proc.stdout and "1554 images" in proc.stdout
    assert "nightly run nightly-" in proc.stdout and "weekly run weekly-" in proc.stdout
    assert ": ok (" in proc.stdout
    scan = json.loads((out / "scan.json").read_text())
    assert scan["run"]["complete"] is True
    assert scan["run"]["source"] == "embedded"
    assert scan["inventory"]["repositories"] == 40
    assert scan["run"]["api_calls"]["DescribeImages"] == 40
    assert Path(scan["snapshot"]).is_file()
    assert scan["findings"] and scan["proposals"] and scan["kept"]
    assert {f["code"] for f in scan["findings"]} >= {"IM001", "IM002", "NS003", "SC004"}
    reports = {p.name: p for p in out.glob("*/*.html")}
    assert "nightly.html" in reports
    for namespace in ("suporte", "ml", "eureca", "bigsea", "labs"):
        assert f"weekly-{namespace}.html" in reports
        assert f"owner report {namespace}: " in proc.stdout
    suporte = reports["weekly-suporte.html"].read_text()
    assert "Relatório semanal" in suporte
    # fragments filed under suporte-cloud are shown to suporte's owners, with the rename map
    assert "suporte-cloud/grafana" in suporte and "suporte/cloud/grafana" in suporte
    assert "eureca/backend" not in suporte  # …and nothing of other projects
    # the owner sees the namespace's share of the whole registry, not of itself
    share = re.search(r"Seu namespace ocupa (\d+)% do armazenamento", suporte)
    assert share is not None and 0 < int(share.group(1)) < 100
    # the weekly report is the owners' notice: it states the grace date it starts
    ml = (reports["weekly-ml.html"].parent / "weekly-ml.txt").read_text()
    assert "Not deleted before " in ml and "(end of the grace period)" in ml
    assert (out / "demo.db").is_file()
    # the notices reached the made-up owners' outbox: that is what starts grace periods
    mails = sorted((out / "outbox").glob("*.eml"))
    assert len(mails) == 1 + 5  # the nightly report to the admins, one weekly per project
    assert any("ana.costa@lsd.ufcg.edu.br" in m.read_text(errors="replace") for m in mails)
    assert "e-mails (6): " in proc.stdout
    nightly = reports["nightly.html"].read_text()
    assert "Notifications are off." not in nightly
    from hygiene.store import Store

    with Store(f"sqlite:///{out / 'demo.db'}") as store:
        waiting = store.proposals(state="proposed")
        assert waiting and all(p.proposal.grace_until is not None for p in waiting)
        assert all(p.confirmed_by for p in waiting)
    # workloads run some stale images: kept because they run, and the admin report says where
    assert "6 workloads run stale images" in proc.stdout
    running = {r for k in scan["kept"] for r in k["reasons"] if r.startswith("in-use:")}
    assert running == {
        "in-use:ecs:lab-prod/service/api",
        "in-use:ecs:lab-prod/service/reindex",
        "in-use:ecs:lab-prod/rule/nightly-report",
        "in-use:ecs:lab-prod/service/worker",
        "in-use:lambda:thumbnailer:live",
        "in-use:batch:etl:1",
    }
    assert {s["name"]: s["state"] for s in scan["run"]["in_use"]} == {
        "ecs us-east-1": "ok",
        "lambda us-east-1": "ok",
        "batch us-east-1": "ok",
        "kubernetes": "not-configured",
        "file": "not-configured",
    }
    assert "Kept because they run" in nightly
    assert "runs in ecs:lab-prod/service/worker" in nightly
    # a stable folder with the newest of every report, and the paths printed are in it
    latest = out / "latest"
    for namespace in ("suporte", "ml", "eureca", "bigsea", "labs"):
        assert f"owner report {namespace}: {latest / f'weekly-{namespace}.html'}" in proc.stdout
        assert (latest / f"weekly-{namespace}.html").read_bytes() == (
            reports[f"weekly-{namespace}.html"].read_bytes()
        )
    assert f"admin report: {latest / 'nightly.html'}" in proc.stdout
    # what is mailed stays under Gmail's clipping size; the full report is on disk
    for mailed in latest.glob("*.mail.html"):
        assert mailed.stat().st_size < 100_000, (mailed.name, mailed.stat().st_size)
    assert (latest / "nightly.html").stat().st_size > (latest / "nightly.mail.html").stat().st_size
    check_layout(latest, chromium)
    check_second_run_with_keep_running(out, env, first_proposals=len(scan["proposals"]))


def check_layout(latest: Path, chromium: Any) -> None:
    """Every demo report, full and mailed, fits a phone and a desktop screen."""
    pages = sorted(latest.glob("*.html"))
    assert len(pages) == 12  # nightly + 5 weekly, each full and mailed
    for page in pages:
        for width in (PHONE, DESKTOP):
            result = layout(chromium, page, width, SCREENSHOTS / "demo")
            assert result.fits, (page.name, width, result.scroll_width, result.overflowing)


def check_second_run_with_keep_running(
    out: Path, env: dict[str, str], first_proposals: int
) -> None:
    """A second demo into the same folder starts from a fresh store (no proposals or
    grace dates of the first run), applies --grace-days to every proposal, and the hints
    --keep-running prints work as printed in another shell."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "hygiene", "demo", "--out", str(out), "--grace-days", "0",
         "--keep-running"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # as when started in the background of a script: Ctrl-C must stop it all the same
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    try:
        printed = []
        assert demo.stdout is not None
        for line in demo.stdout:
            printed.append(line)
            if line.startswith("Ctrl-C to stop."):
                break
        hints = "".join(printed)
        assert "export AWS_DEFAULT_REGION=us-east-1" in hints, hints[-2000:]
        shell = dict(env)
        for line in hints.splitlines():
            if line.strip().startswith("export "):
                for pair in shlex.split(line.strip()[len("export ") :]):
                    key, _, value = pair.partition("=")
                    shell[key] = value
        command = next(
            line.split("#")[0].split()
            for line in hints.splitlines()
            if line.strip().startswith("hygiene proposals")
        )
        listed = subprocess.run(
            [sys.executable, "-m", "hygiene", *command[1:], "--format", "json"],
            cwd="/", env=shell, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr[-2000:]
        proposals = json.loads(listed.stdout)
        assert proposals and {p["namespace"] for p in proposals} == {"ml"}
        client = boto3.client(
            "ecr",
            endpoint_url=shell["AWS_ENDPOINT_URL"],
            region_name=shell["AWS_DEFAULT_REGION"],
            aws_access_key_id=shell["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=shell["AWS_SECRET_ACCESS_KEY"],
        )
        assert len(client.describe_repositories(maxResults=100)["repositories"]) == 40
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
    store = Store(shell["HYGIENE_STORE_URL"])
    every = store.proposals()
    assert len(every) == first_proposals  # fresh store: this run's proposals only
    now = datetime.now(UTC)
    graced = [s.proposal.grace_until for s in every if s.proposal.grace_until is not None]
    assert graced and all(g <= now for g in graced)  # --grace-days 0 for every proposal
