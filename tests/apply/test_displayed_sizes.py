"""No reclaimable size shown is negative, whatever the store holds.

A proposal's size is derived from its evidence (each image's bytes, a lifecycle
preview's); a writer of the store (the owner's login) can change the evidence or, for
content no planner writes, the ``bytes`` column that is shown instead. A negative size
beside a deletion would say it frees nothing and lower every total it is added to: each
image counts at least 0 bytes, a negative column is shown as 0, and both are named in
``altered``. The store is real (SQLite and the embedded PostgreSQL, tampered with SQL).
"""

from __future__ import annotations

import json

import pytest

from hygiene.cli import cli
from hygiene.cli.common import run_cli
from hygiene.model import Action
from hygiene.proposaltext import displayed
from hygiene.store import Store
from tests import builders
from tests.apply.tamper import tamper as _tamper
from tests.apply.test_approve_cli import _world

TIB = 2**40


def test_an_image_of_negative_size_in_the_evidence_counts_nothing(
    tmp_path, seeder, ecr, monkeypatch, capsys, store_url
) -> None:
    world = _world(tmp_path, seeder, ecr, monkeypatch, url=store_url)
    store: Store = world["store"]
    deletion = world["unsafe"]
    honest = store.get(deletion)
    assert honest is not None and honest.proposal.bytes > 0
    evidence = dict(honest.proposal.evidence)
    evidence["images"] = [{**i, "bytes": -TIB} for i in evidence["images"]]
    _tamper(store, deletion, evidence=evidence)

    stored = store.get(deletion)
    assert stored is not None and stored.proposal.bytes == 0
    assert "-" not in stored.proposal.summary.split("suporte/api")[1]
    assert "bytes" in stored.altered  # the column (the honest size) is not what is shown
    (tonight,) = [p for p in store.as_stored([stored.proposal]) if p.id == deletion]
    assert tonight.bytes == 0

    assert run_cli(cli, ["proposals", "--format", "json", *world["common"]]) == 0
    (listed,) = [p for p in json.loads(capsys.readouterr().out) if p["id"] == deletion]
    assert listed["bytes"] == 0 and "bytes" in listed["altered"]
    monkeypatch.setenv("COLUMNS", "250")
    assert run_cli(cli, ["proposals", *world["common"]]) == 0
    (line,) = [row for row in capsys.readouterr().out.splitlines() if deletion in row]
    assert "-1.0 TiB" not in line and "0 B" in line


def test_a_negative_bytes_column_is_shown_as_no_size(store_url) -> None:
    """Content no planner writes (a plain list of rule codes) derives no size: the
    column is shown, and a negative one as 0 with ``bytes`` named in ``altered``."""
    odd = builders.proposal(digests=["a"], rule_codes=["IM002"], bytes=100)
    assert displayed(odd.action, odd.repository, odd.target, odd.evidence) is None
    with Store(store_url) as store:
        builders.store_proposals(store, [odd])
        assert store.get(odd.id).proposal.bytes == 100  # type: ignore[union-attr]
        _tamper(store, odd.id, bytes=-5 * TIB)
        stored = store.get(odd.id)
        assert stored is not None and stored.proposal.bytes == 0
        assert stored.altered == ("bytes",)
        (tonight,) = store.as_stored([odd])
        assert tonight.bytes == 0


@pytest.mark.parametrize("key", ["bytes", "transitioned_bytes"])
def test_a_lifecycle_preview_of_negative_size_frees_nothing(key: str) -> None:
    preview = {"images": 2, "bytes": 3 * TIB, "transitioned_images": 1, "transitioned_bytes": TIB}
    preview[key] = -preview[key]
    shown = displayed(
        Action.PUT_LIFECYCLE_POLICY,
        "suporte/api",
        {"policy": "{}"},
        {"current_policy": None, "preview": preview},
    )
    assert shown is not None and shown.bytes >= 0
    assert "-" not in shown.summary
