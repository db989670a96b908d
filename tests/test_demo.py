"""The demo runs end to end, in its own process, exactly as `make demo` runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.builders import REPO_ROOT


# Slow by design (~12 s, docs/benchmarks.md): the one test of `make demo` as users run it.
def test_demo_end_to_end(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
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
    assert "Grace until" in ml and "Grace until —" not in ml
    assert (out / "demo.db").is_file()
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
    nightly = reports["nightly.html"].read_text()
    assert "Kept because they run" in nightly
    assert "runs in ecs:lab-prod/service/worker" in nightly
