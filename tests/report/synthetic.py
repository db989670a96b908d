"""A nightly report of a seeded synthetic registry (``benchmarks.rules``), rendered the
way the job renders it: for the tests that compare the exports' fast paths with the
slow ones on realistic data."""

from __future__ import annotations

from benchmarks.rules import bench_config, synthetic_inventory
from hygiene.report import render
from hygiene.rules import evaluate
from tests.builders import NOW


def synthetic_report(images: int = 3_000, repositories: int = 30) -> render.RenderedReport:
    from hygiene.jobs import scan_document
    from hygiene.report.data import build_report_data
    from hygiene.scan import plan_all

    inventory = synthetic_inventory(images, repositories)
    config = bench_config()
    evaluation = evaluate(inventory, config, NOW, in_use=[])
    proposals = plan_all(evaluation, inventory, config, NOW)

    class Job:
        kind, run_id, started_at, counts, errors = "nightly", "r-1", NOW, {}, []
        status = type("Status", (), {"value": "ok"})()

    document = scan_document(Job, inventory, evaluation, proposals)  # type: ignore[arg-type]
    return render.render_nightly(build_report_data(document, inventory=inventory), config)
