"""The demo pipeline: seed the embedded registry, then run the production code path on it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from hygiene.collect.embedded import EmbeddedRegistry
from hygiene.collect.seed import seed_lab_registry
from hygiene.config import Config
from hygiene.notify.deliver import publish
from hygiene.report.data import build_report_data
from hygiene.scan import ScanResult, collect, evaluate, open_registry, save_snapshot


@dataclass
class DemoOutcome:
    result: ScanResult
    store_url: str
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
    store_url = store_url or f"sqlite:///{(out_dir / 'demo.db').resolve()}"
    seed_lab_registry(registry, config.projects, now, rng_seed=rng_seed)
    handle = open_registry(
        config,
        endpoint_url=registry.endpoint_url,
        session=registry.session(),
        regions=["us-east-1"],
        source="embedded",
    )
    inventory = collect(handle, config, now=now, progress=None)
    result = evaluate(inventory, config, now)
    result.snapshot = save_snapshot(inventory, out_dir / "snapshots")
    outcome = DemoOutcome(result=result, store_url=store_url)
    scan_json = out_dir / "scan.json"
    scan_json.write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    outcome.outputs.append(("scan JSON", scan_json))
    outcome.outputs.append(("snapshot", result.snapshot))
    data = build_report_data(
        result.to_json(), inventory=inventory, mute_warnings=result.mute_warnings, now=now
    )
    for kind in ("nightly", "weekly"):
        publication = publish(data, config, kind, out_dir=out_dir, send=False)
        for report in publication.reports:
            label = "admin report" if kind == "nightly" else f"owner report {report.namespace}"
            outcome.outputs.append((label, report.files["html"]))
    return outcome
