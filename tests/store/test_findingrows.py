"""A finding row holds the columns once (migration 0005): what is written from the columnar
findings equals what the obvious path (``Finding.to_json()``) gives, a stored run reads
back as its ``to_json()`` dicts on SQLite and PostgreSQL, the COPY text is what
PostgreSQL parses back, and the migration converts rows written in the old format (and
back)."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta
from typing import Any

import orjson
import pytest
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from benchmarks.rules import bench_config, synthetic_inventory
from hygiene.findingtable import Findings
from hygiene.inventory import ANY, ScanCoverage
from hygiene.messages import Message
from hygiene.rules import evaluate
from hygiene.store import Store, findingrows
from hygiene.store.bulk import copy_text
from hygiene.store.engine import alembic_config, make_engine
from hygiene.store.models import RepositoryScanRow
from hygiene.store.scans import record_scan
from tests import builders
from tests.builders import NOW
from tests.conftest import examples


def _rows_by_the_obvious_path(findings: Any) -> list[list[Any]]:
    """Each finding's ``to_json()`` as JSON reads it back (a tuple is a list), split into
    the columns and the rest."""
    out = []
    for finding in findings:
        data = orjson.loads(orjson.dumps(finding.to_json()))
        out.append(
            [data[k] for k in findingrows.COLUMNS]
            + [{k: v for k, v in data.items() if k not in findingrows.COLUMNS}]
        )
    return out


def _rows_written(findings: Any, size: int) -> list[list[Any]]:
    out = []
    for columns in findingrows.column_chunks(findings, size):
        assert len(columns) == len(findingrows.COLUMNS) + 1
        for row in zip(*columns, strict=True):
            out.append([*row[:-1], orjson.loads(row[-1])])
    return out


@pytest.mark.parametrize(("images", "repositories", "seed"), [(3_000, 30, 1), (20_000, 120, 7)])
def test_columnar_rows_equal_the_obvious_path(images: int, repositories: int, seed: int) -> None:
    inventory = synthetic_inventory(images, repositories, seed=seed)
    findings = evaluate(inventory, bench_config(), NOW, in_use=[]).findings
    assert isinstance(findings, Findings) and findings.image_count > 1_000
    assert findings.other, "repository and namespace findings go through to_json()"
    expected = _rows_by_the_obvious_path(findings)
    for size in (len(findings) + 1, 777):  # one chunk, and chunks cut anywhere
        assert _rows_written(findings, size) == expected
    # key order too: the stored JSON is to_json() without the columns
    first = next(findingrows.column_chunks(findings))
    assert list(orjson.loads(first[-1][0])) == list(findingrows.DATA_KEYS)


def test_image_rows_with_details_messages_and_tags_of_every_kind() -> None:
    """Rule details merged into the unit's (and overriding it), nested message
    parameters (a Message inside, a tuple), tags as a tuple, text beyond ASCII."""
    inventory = synthetic_inventory(2_000, 20, seed=3)
    findings = evaluate(inventory, bench_config(), NOW, in_use=[]).findings
    image = findings.image
    assert image is not None
    rng = random.Random(5)
    for i in rng.sample(range(len(image)), 200):
        image.details[i] = rng.choice(
            [
                {"reason": 'não "usada"\ttab\\back', "n": rng.randint(0, 9)},
                {"pushed_at": "overridden", "list": [1, 2.5, None, True]},
                None,
            ]
        )
        image.tags[i] = tuple(rng.sample(["latest", "v1", "ção", 'q"t'], rng.randint(0, 3)))
        image.message[i] = rng.choice(
            [
                Message("plain %(x)s", {"x": 1}),
                Message("nested %(m)s %(t)s", {"m": Message("inner", {}), "t": (1, "a")}),
                "text without a template",
            ]
        )
    assert _rows_written(findings, 500) == _rows_by_the_obvious_path(findings)


@settings(max_examples=examples(100), deadline=None)
@given(
    rows=st.lists(
        st.lists(
            st.one_of(
                st.none(),
                st.integers(min_value=-(2**62), max_value=2**62),
                st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
            ),
            min_size=3,
            max_size=3,
        ),
        min_size=1,
        max_size=20,
    )
)
def test_copy_text_is_what_postgresql_reads_back(rows: list[list[Any]], pg_cursor: Any) -> None:
    columns = [list(c) for c in zip(*rows, strict=True)]
    texts = [[None if v is None else str(v) for v in c] for c in columns]
    pg_cursor.execute("TRUNCATE copied")
    with pg_cursor.copy("COPY copied (a, b, c) FROM STDIN") as copy:
        copy.write(copy_text(texts))
    pg_cursor.execute("SELECT a, b, c FROM copied ORDER BY id")
    assert [list(r) for r in pg_cursor.fetchall()] == [list(r) for r in zip(*texts, strict=True)]


@pytest.fixture(scope="module")
def pg_cursor(postgres_server: Any) -> Any:
    import psycopg

    url = postgres_server.create_database().replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE copied (id serial, a text, b text, c text)")
        yield cursor


def test_a_stored_run_reads_back_as_to_json(store: Store) -> None:
    inventory = synthetic_inventory(3_000, 30, seed=11)
    findings = evaluate(inventory, bench_config(), NOW, in_use=[]).findings
    odd = builders.finding("IM002", message='não "usada"\n\\ há 90 dias\tnem aqui', tags=("a\tb",))
    everything = [*findings, odd, dataclasses.replace(odd, repository=None, namespace=None)]
    run_id = store.record_run("nightly", started_at=NOW)
    assert store.record_findings(run_id, findings) == len(findings)
    other = store.record_run("scan", started_at=NOW)
    assert store.record_findings(other, everything[len(findings) :]) == 2
    assert store.findings(run_id) == [f.to_json() for f in findings]
    assert store.findings(other) == [f.to_json() for f in everything[len(findings) :]]
    with store.engine.connect() as connection:
        data = connection.execute(text("SELECT data FROM findings LIMIT 1")).scalar()
    stored = orjson.loads(data) if isinstance(data, str | bytes) else data
    assert set(stored) == set(findingrows.DATA_KEYS)  # the columns are not repeated


def test_the_migration_strips_old_rows_and_downgrade_restores_them(store_url: str) -> None:
    """A store at revision 0004 with rows in the old format (every field in ``data``):
    upgraded, they read back the same and ``data`` holds only the rest; downgraded,
    ``data`` is the whole ``to_json()`` again."""
    engine = make_engine(store_url)
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
    findings = [
        builders.finding("IM002", message='não "usada" há 90 dias'),
        builders.finding("RP001", repository=None, namespace=None, tags=()),
    ]
    expected = [f.to_json() for f in findings]
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO runs (id, kind, started_at, status, source, host, counts,"
                 " api_calls, errors, summary) VALUES ('r1', 'nightly', :at, 'ok', '', '',"
                 " '{}', '{}', '[]', '{}')"),
            {"at": NOW.replace(tzinfo=None)},
        )  # fmt: skip
        for data in expected:
            connection.execute(
                text(
                    "INSERT INTO findings (run_id, code, rule, severity, fix_safety, account,"
                    " region, repository, namespace, image_digest, bytes, message, data) VALUES"
                    " ('r1', :code, :rule, :severity, :fix_safety, :account, :region,"
                    " :repository, :namespace, :image_digest, :bytes, :message, :data)"
                ),
                {**{k: data[k] for k in findingrows.COLUMNS}, "data": orjson.dumps(data).decode()},
            )
    engine.dispose()

    def stored_data() -> list[dict[str, Any]]:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT data FROM findings ORDER BY id")).scalars()
            return [orjson.loads(r) if isinstance(r, str | bytes) else r for r in rows]

    with Store(store_url) as store:  # opening migrates to head
        assert store.findings("r1") == expected
        assert [set(d) for d in stored_data()] == [set(findingrows.DATA_KEYS)] * 2
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
    assert stored_data() == expected
    engine.dispose()


# ------------------------------------------------------------------ repository scans


def _record_scan_row_by_row(session: Any, coverage: ScanCoverage) -> None:
    """The per-repository history as the store wrote it before it wrote in bulk: one
    ORM object per repository (the obvious path ``record_scan`` must equal)."""
    at, run = coverage.scanned_at, coverage.run_id
    keys: list[Any] = [(k, None) for k in coverage.complete]
    keys += list(coverage.incomplete.items())
    keys += [((a, r, ANY), why) for (a, r), why in coverage.incomplete_regions.items()]
    for (account, region, repository), error in keys:
        row = session.get(RepositoryScanRow, (account, region, repository))
        if row is None:
            row = RepositoryScanRow(
                account=account,
                region=region,
                repository=repository,
                last_scan_run=run,
                last_scan_at=at,
            )
            session.add(row)
        if row.last_scan_at is None or at >= row.last_scan_at:
            row.last_scan_run, row.last_scan_at = run, at
        if error is None:
            if row.last_complete_at is None or at >= row.last_complete_at:
                row.last_complete_at = at
        elif row.last_incomplete_at is None or at >= row.last_incomplete_at:
            row.last_incomplete_run, row.last_incomplete_at = run, at
            row.last_error = error


def _scan_rows(store: Store) -> list[tuple[Any, ...]]:
    with store.session() as session:
        rows = session.scalars(select(RepositoryScanRow)).all()
        return sorted(
            (r.account, r.region, r.repository, *(getattr(r, f) for f in _FIELDS)) for r in rows
        )


_FIELDS = (
    "last_scan_run",
    "last_scan_at",
    "last_complete_at",
    "last_incomplete_run",
    "last_incomplete_at",
    "last_error",
)


@pytest.mark.parametrize("seed", range(4))
def test_record_scan_in_bulk_equals_row_by_row(tmp_path: Any, seed: int) -> None:
    """Seeded scans, some older than the last (a snapshot re-evaluated), some with
    repositories or regions unread, over an overlapping set of repositories."""
    rng = random.Random(seed)
    repositories = [
        (a, r, f"ns/app{i}")
        for a in ("1", "2")
        for r in ("us-east-1", "eu-west-1")
        for i in range(40)
    ]
    bulk, by_row = Store(f"sqlite:///{tmp_path / 'a.db'}"), Store(f"sqlite:///{tmp_path / 'b.db'}")
    for night in range(8):
        seen = rng.sample(repositories, rng.randint(0, len(repositories)))
        cut = rng.randint(0, len(seen))
        scan = ScanCoverage(
            run_id=f"run-{night}",
            scanned_at=NOW + timedelta(days=rng.choice([night, night - 3, 0])),
            complete=frozenset(seen[:cut]),
            incomplete={k: f"why {night}" for k in seen[cut:]},
            incomplete_regions=rng.choice([{}, {("*", "us-east-1"): "500"}, {("2", "*"): "x"}]),
        )
        with bulk.session() as session:
            record_scan(session, scan)
        with by_row.session() as session:
            _record_scan_row_by_row(session, scan)
        assert _scan_rows(bulk) == _scan_rows(by_row)
    assert len(_scan_rows(bulk)) > 40
    bulk.close()
    by_row.close()


def test_a_failed_write_leaves_none_of_the_run_s_findings(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One transaction: when the third chunk cannot be written, the two before it are
    rolled back too (a crash leaves no half run)."""
    monkeypatch.setattr(findingrows, "CHUNK", 2)
    good = [builders.finding("IM002", digest=f"d{i}") for i in range(4)]
    bad = builders.finding("IM002", details={"x": object()})  # not JSON
    run_id = store.record_run("nightly", started_at=NOW)
    with pytest.raises(TypeError):
        store.record_findings(run_id, [*good, bad])
    assert store.findings(run_id) == []
    assert store.record_findings(run_id, good) == 4  # the store is usable after it
    assert len(store.findings(run_id)) == 4
