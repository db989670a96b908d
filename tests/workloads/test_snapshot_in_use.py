"""In-use references and sources' states travel with the inventory's snapshot."""

from __future__ import annotations

from pathlib import Path

from hygiene.collect.workloads import ImageUse, SourceStatus
from hygiene.inventory import build_in_use, read_snapshot, write_snapshot
from hygiene.rules import evaluate
from tests import builders
from tests.builders import NOW, digest_of

HOME = builders.ACCOUNT


def test_a_snapshot_keeps_what_ran_and_how_each_source_went(tmp_path: Path):
    inventory = builders.inventory_of(
        [{"repository": "ml/api", "digest": "old", "tags": ["v1"], "pushed_days_ago": 400}]
    )
    uses = [
        ImageUse("ecs", "prod/service/api", "ml/api", "v1", None, HOME, "us-east-1"),
        ImageUse(
            "kubernetes", "lab/ml/pod/p", "ml/api", None, digest_of("x"), HOME, "us-east-1", True
        ),
    ]
    inventory.in_use = build_in_use(u.to_json() for u in uses)
    inventory.run.in_use = [
        SourceStatus("ecs us-east-1", "ecs", "ok", references=1),
        SourceStatus("kubernetes", "kubernetes", "not-configured", "in_use.kubernetes.contexts"),
    ]
    back = read_snapshot(write_snapshot(inventory, tmp_path / "s.parquet"))
    assert back.run.in_use == inventory.run.in_use
    assert back.in_use.astype(object).to_dict("records") == inventory.in_use.astype(object).to_dict(
        "records"
    )
    # re-evaluated offline, the snapshot keeps the image for the same reason
    policy = {"protections": {"keep_newest": 0}, "rules": {"IM002": {"keep_newest": 0}}}
    kept = evaluate(back, builders.config(policy), NOW).kept
    assert [k.reasons for k in kept] == [("in-use:ecs:prod/service/api",)]


def test_a_failed_source_in_a_snapshot_still_stops_deletions(tmp_path: Path):
    inventory = builders.inventory_of(
        [{"repository": "ml/api", "digest": "old", "tags": ["v1"], "pushed_days_ago": 400}]
    )
    inventory.run.in_use = [SourceStatus("lambda us-east-1", "lambda", "failed", "denied")]
    back = read_snapshot(write_snapshot(inventory, tmp_path / "s.parquet"))
    policy = {"protections": {"keep_newest": 0}, "rules": {"IM002": {"keep_newest": 0}}}
    evaluation = evaluate(back, builders.config(policy), NOW)
    assert [f.code for f in evaluation.findings if f.image_digest] == []
    assert [k.reasons for k in evaluation.kept] == [("in-use-unknown:lambda us-east-1",)]
