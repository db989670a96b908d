from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hygiene.store import Store
from tests import builders
from tests.apply.registry import Seeder


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'hygiene.db'}") as opened:
        yield opened


@pytest.fixture
def seeder(ecr: Any, now: datetime) -> Seeder:
    return Seeder(ecr, now)


@pytest.fixture
def clients(ecr: Any) -> Any:
    client = ecr.client()
    return lambda account, region: client


def rules_dir(tmp_path: Path, admins: list[str], **apply: Any) -> Path:
    policy = builders.shipped_policy()
    policy["admins"] = admins
    policy["registry"].pop("account", None)
    policy["apply"].update(apply)
    return builders.write_rules(tmp_path / "rules", policy)


@pytest.fixture
def seeded(tmp_path: Path, seeder: Seeder, config, now, monkeypatch, ecr) -> dict[str, Any]:
    from hygiene.plan import plan

    monkeypatch.setenv("AWS_ENDPOINT_URL", ecr.endpoint_url)  # the embedded registry: os:<user>
    repo = seeder.repo("suporte/api")
    digests = [seeder.image(repo) for _ in range(2)]
    kept = seeder.image(repo, tag="latest")
    proposals = plan(
        builders.evaluation([seeder.finding("IM002", repo, d) for d in digests]),
        seeder.inventory(),
        config,
        now,
    )
    url = f"sqlite:///{tmp_path / 'hygiene.db'}"
    store = Store(url)
    store.upsert_proposals(proposals, now - timedelta(days=10))
    store.mark_notified(now - timedelta(days=9), namespace="suporte")
    return {
        "url": url,
        "store": store,
        "id": proposals[0].id,
        "repo": repo,
        "digests": digests,
        "kept": kept,
    }
