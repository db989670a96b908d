"""The findings table since migration 0006: image findings stored as totals per rule and
repository, other findings one row each (columns, and the rest of ``to_json()`` in
``data``). The totals computed from the columnar findings equal those of a loop over
``Finding`` objects (seeded and hypothesis data); a stored run reads back as its totals
and findings on SQLite and PostgreSQL; the COPY text is what PostgreSQL parses back; the
migration turns per-image rows into totals, and its downgrade keeps what the older
schema can hold."""

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
from sqlalchemy import inspect, select, text

from benchmarks.rules import bench_config, synthetic_inventory
from hygiene.findingtable import Findings
from hygiene.inventory import ANY, ScanCoverage
from hygiene.messages import Message
from hygiene.model import Finding, FixSafety, Severity
from hygiene.rules import evaluate
from hygiene.store import Store, findingrows
from hygiene.store.bulk import copy_text
from hygiene.store.engine import alembic_config, make_engine
from hygiene.store.models import RepositoryScanRow
from hygiene.store.scans import _SCAN_FIELDS, record_scan
from tests import builders
from tests.builders import NOW
from tests.conftest import examples


def _totals_by_the_obvious_path(findings: Any) -> list[dict[str, Any]]:
    """Image totals by a loop over ``Finding`` objects: a dict per group, in the order
    of each group's first finding."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for f in findings:
        if f.image_digest is None:
            continue
        key = (
            f.code, f.rule, f.severity.value, f.fix_safety.value, f.account, f.region,
            f.repository, f.namespace,
        )  # fmt: skip
        count = groups.setdefault(key, [0, 0])
        count[0] += 1
        count[1] += int(f.bytes)
    return [
        dict(zip(findingrows.TOTAL_KEYS, (*key, n, size), strict=True))
        for key, (n, size) in groups.items()
    ]


def _stored_by_the_obvious_path(findings: Any) -> list[dict[str, Any]]:
    """What ``Store.findings`` gives back: the totals, then every finding that names no
    image as its ``to_json()`` (as JSON reads it back: a tuple is a list)."""
    others = [orjson.loads(orjson.dumps(f.to_json())) for f in findings if f.image_digest is None]
    return _totals_by_the_obvious_path(findings) + others


def _as_dicts(columns: list[list[Any]]) -> list[dict[str, Any]]:
    assert len(columns) == len(findingrows.TOTAL_KEYS)
    return [
        dict(zip(findingrows.TOTAL_KEYS, row, strict=True)) for row in zip(*columns, strict=True)
    ]


def _with_reporting_findings(findings: Findings, seed: int) -> Findings:
    """``findings`` with image findings among its objects too (as the rules that only
    report give them): some of a rule and repository the columns already count, some
    of their own, some outside any namespace."""
    assert findings.image is not None
    rng = random.Random(seed)
    image = findings.image
    extra = []
    for i in rng.sample(range(len(image)), 50):
        info = image.rules[int(image.rule[i])]
        same = rng.random() < 0.5
        extra.append(
            builders.finding(
                info.code if same else "IM900",
                image.repository[i],
                digest=f"loose{i}",
                bytes=rng.choice([0, 7, 2**40]),
                rule=info.name if same else "reported-only",
                severity=info.severity if same else Severity.INFO,
                fix_safety=info.fix_safety if same else FixSafety.MANUAL,
                account=image.account[i],
                region=image.region[i],
                namespace=image.namespace[i] if same else rng.choice([None, "ml"]),
            )
        )
    others = list(findings.other)
    for finding in extra:
        others.insert(rng.randint(0, len(others)), finding)
    return Findings(image, others)


@pytest.mark.parametrize(("images", "repositories", "seed"), [(3_000, 30, 1), (20_000, 120, 7)])
def test_image_totals_equal_the_obvious_path(images: int, repositories: int, seed: int) -> None:
    inventory = synthetic_inventory(images, repositories, seed=seed)
    findings = evaluate(inventory, bench_config(), NOW, in_use=[]).findings
    assert isinstance(findings, Findings) and findings.image_count > 1_000
    assert findings.other, "repository and namespace findings stay rows"
    findings = _with_reporting_findings(findings, seed)
    expected = _totals_by_the_obvious_path(findings)
    assert _as_dicts(findingrows.image_totals(findings)) == expected
    assert len(expected) < findings.image_count / 5  # totals, not a row per image
    assert {t["code"] for t in expected} >= {"IM900"}
    # the rows written: the totals, then one row per finding that names no image
    for size in (len(findings) + 1, 97):  # one chunk, and chunks cut anywhere
        rows = [
            dict(zip(findingrows.TABLE_COLUMNS, row, strict=True))
            for columns in findingrows.row_chunks(findings, size)
            for row in zip(*columns, strict=True)
        ]
        totals = [r for r in rows if r["images"] is not None]
        assert [{k: r[k] for k in findingrows.TOTAL_KEYS} for r in totals] == expected
        assert {(r["message"], r["data"]) for r in totals} == {(None, None)}
        singles = rows[len(totals) :]
        assert all(r["images"] is None for r in singles)
        assert [
            findingrows.finding_json(r, orjson.loads(r["data"])) for r in singles
        ] == _stored_by_the_obvious_path(findings)[len(expected) :]


_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6
)


@st.composite
def _findings(draw: Any) -> list[Finding]:
    """Findings of a few rules, repositories, accounts and regions, with and without an
    image, a namespace or a repository, bytes up to 2**58 (sums beyond a float's
    53 bits)."""
    out = []
    for _ in range(draw(st.integers(0, 60))):
        code = draw(st.sampled_from(["IM001", "IM002", "RP001", "XX9"]))
        out.append(
            builders.finding(
                code,
                draw(st.one_of(st.none(), st.sampled_from(["a/x", "a/y", "b", "ção/z"]))),
                digest=draw(st.one_of(st.none(), st.sampled_from(["d1", "d2", "d3"]))),
                bytes=draw(st.integers(0, 2**58)),
                severity=draw(st.sampled_from([None, Severity.ERROR])),
                account=draw(st.sampled_from(["111", "222"])),
                region=draw(st.sampled_from(["us-east-1", "eu-west-1"])),
                namespace=draw(st.one_of(st.none(), _text)),
                message=draw(_text),
                tags=draw(st.lists(_text, max_size=2)),
            )
        )
    return out


@settings(max_examples=examples(200), deadline=None)
@given(findings=_findings(), size=st.integers(1, 30))
def test_image_totals_of_any_findings_equal_the_obvious_path(
    findings: list[Finding], size: int
) -> None:
    expected = _totals_by_the_obvious_path(findings)
    assert _as_dicts(findingrows.image_totals(findings)) == expected
    assert _as_dicts(findingrows.image_totals(iter(findings))) == expected
    rows = [
        row
        for columns in findingrows.row_chunks(iter(findings), size)
        for row in zip(*columns, strict=True)
    ]
    assert len(rows) == len(expected) + sum(f.image_digest is None for f in findings)


def _finding_columns_by_to_json(findings: list[Finding]) -> list[list[Any]]:
    """The columns of findings that name no image, from each ``to_json()`` (a deep
    copy, ``asdict``): what ``finding_columns`` wrote before it read the attributes."""
    rows = [f.to_json() for f in findings]
    columns: list[list[Any]] = [[r[k] for r in rows] for k in findingrows.COLUMNS[:-2]]
    columns.append([None] * len(rows))
    columns.append([int(r["bytes"]) for r in rows])
    columns.append([r["message"] for r in rows])
    columns.append([findingrows._json_text(findingrows.data_of(r)) for r in rows])
    return columns


@dataclasses.dataclass
class _Inner:
    name: str
    sizes: tuple[int, ...]
    more: dict[str, Any]

    def __post_init__(self) -> None:
        self.not_a_field = len(self.sizes)  # asdict leaves it out (orjson alone would not)


@st.composite
def _odd_details(draw: Any) -> dict[str, Any]:
    """Details as a rule might give them: text (any, not only ASCII), whole numbers,
    tuples, numpy scalars, nested dicts and dataclasses (``asdict`` makes them dicts)."""
    import numpy as np

    leaf = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**62), 2**62),
        _text,
        st.integers(0, 2**40).map(np.int64),
    )
    value = st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.lists(inner, max_size=3).map(tuple),
            st.dictionaries(_text, inner, max_size=3),
            st.builds(
                _Inner, _text, st.lists(st.integers(0, 9), max_size=3).map(tuple),
                st.dictionaries(_text, inner, max_size=2),
            ),
        ),
        max_leaves=8,
    )  # fmt: skip
    return draw(st.dictionaries(_text, value, max_size=4))


@settings(max_examples=examples(100), deadline=None)
@given(findings=_findings(), details=st.lists(_odd_details(), max_size=8), fix=_text)
def test_finding_columns_equal_to_json_s(
    findings: list[Finding], details: list[dict[str, Any]], fix: str
) -> None:
    """The rows of findings that name no image, read from their attributes, are those of
    their ``to_json()``: the same values and the same ``data`` text, byte for byte."""
    others = [f for f in findings if f.image_digest is None]
    for i, extra in enumerate(details):
        message = Message("rule.x", {"n": i, "odd": extra})
        others.append(builders.finding("RP001", details=extra, message=message, fix=fix))
    assert findingrows.finding_columns(others) == _finding_columns_by_to_json(others)


def test_finding_columns_of_a_synthetic_registry_equal_to_json_s() -> None:
    import numpy as np

    inventory = synthetic_inventory(2_000, 20, seed=5)
    findings = evaluate(inventory, bench_config(), NOW, in_use=[]).findings
    others = [f for f in findings.other if f.image_digest is None]
    assert len(others) > 20 and any(f.details for f in others)
    inner = _Inner("ção", (1, 2), {"n": np.int64(3), "t": ("a", None)})
    others.append(builders.finding("RP001", details={"inner": inner, "n": np.int64(7)}))
    assert findingrows.finding_columns(others) == _finding_columns_by_to_json(others)


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


def test_a_stored_run_reads_back_as_its_totals_and_findings(store: Store) -> None:
    inventory = synthetic_inventory(3_000, 30, seed=11)
    evaluated = evaluate(inventory, bench_config(), NOW, in_use=[]).findings
    assert isinstance(evaluated, Findings)
    findings = _with_reporting_findings(evaluated, 11)
    odd = builders.finding("RP001", message='não "usada"\n\\ há 90 dias\tnem aqui', tags=("a\tb",))
    loose = builders.finding("IM900", digest="x", bytes=2**60, namespace=None)
    everything = [odd, loose, dataclasses.replace(odd, repository=None, namespace=None), loose]
    run_id = store.record_run("nightly", started_at=NOW)
    expected = _stored_by_the_obvious_path(findings)
    assert store.record_findings(run_id, findings) == len(expected)
    other = store.record_run("scan", started_at=NOW)
    assert store.record_findings(other, everything) == 3
    assert store.findings(run_id) == expected
    assert store.findings(other) == _stored_by_the_obvious_path(everything)
    assert store.findings(other)[0]["bytes"] == 2**61  # summed in whole numbers
    with store.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT images, message, data FROM findings WHERE run_id = :r"), {"r": other}
        ).all()
    totals = [r for r in rows if r.images is not None]
    assert [(r.images, r.message, r.data) for r in totals] == [(2, None, None)]
    for row in rows:
        if row.images is None:
            stored = orjson.loads(row.data) if isinstance(row.data, str | bytes) else row.data
            assert set(stored) == set(findingrows.DATA_KEYS)  # the columns are not repeated


def _at_revision(store_url: str, revision: str) -> Any:
    engine = make_engine(store_url)
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return engine


def _downgrade(engine: Any, revision: str) -> None:
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _insert_run(connection: Any, run_id: str) -> None:
    connection.execute(
        text("INSERT INTO runs (id, kind, started_at, status, source, host, counts,"
             " api_calls, errors, summary) VALUES (:id, 'nightly', :at, 'ok', '', '',"
             " '{}', '{}', '[]', '{}')"),
        {"id": run_id, "at": NOW.replace(tzinfo=None)},
    )  # fmt: skip


def _insert_finding(connection: Any, run_id: str, finding: Finding, *, full: bool) -> None:
    """A finding row as revision 0004 (``full``: every field in ``data``) or 0005 wrote
    it."""
    data = finding.to_json()
    columns = (*findingrows.COLUMNS, "image_digest")
    connection.execute(
        text(
            "INSERT INTO findings (run_id, code, rule, severity, fix_safety, account,"
            " region, repository, namespace, image_digest, bytes, message, data) VALUES"
            " (:run_id, :code, :rule, :severity, :fix_safety, :account, :region,"
            " :repository, :namespace, :image_digest, :bytes, :message, :data)"
        ),
        {
            **{k: data[k] for k in columns},
            "run_id": run_id,
            "data": orjson.dumps(
                data if full else {k: v for k, v in data.items() if k not in columns}
            ).decode(),
        },
    )


def _old_findings() -> dict[str, list[Finding]]:
    rng = random.Random(3)
    runs: dict[str, list[Finding]] = {"r1": [], "r2": []}
    for run_id, findings in runs.items():
        for i in range(300):
            code = rng.choice(["IM001", "IM002", "IM900", "RP001"])
            findings.append(
                builders.finding(
                    code,
                    rng.choice(["suporte/api", "ml/x", "nginx"]),
                    digest=None if code == "RP001" else f"{run_id}-{i}",
                    bytes=rng.choice([0, 5, 2**40]),
                    account=rng.choice(["111", "222"]),
                    namespace=rng.choice([None, "suporte", "ml"]),
                    message=f'não "usada" {i}',
                )
            )
    return runs


def test_the_migration_totals_old_image_rows(store_url: str) -> None:
    """A store at revision 0005 holding one row per finding, as 0005 wrote them: opened,
    its image rows become totals, in the order of each total's first row, and the other
    findings read back as before."""
    engine = _at_revision(store_url, "0005")
    runs = _old_findings()
    with engine.begin() as connection:
        for run_id, findings in runs.items():
            _insert_run(connection, run_id)
            for finding in findings:
                _insert_finding(connection, run_id, finding, full=False)
    engine.dispose()
    with Store(store_url) as store:  # opening migrates to head
        for run_id, findings in runs.items():
            assert store.findings(run_id) == _stored_by_the_obvious_path(findings)
        columns = {c["name"] for c in inspect(store.engine).get_columns("findings")}
        assert "image_digest" not in columns and "images" in columns
        with store.engine.connect() as connection:
            rows = connection.execute(text("SELECT images, message, data FROM findings")).all()
        everything = [f for findings in runs.values() for f in findings]
        totals = len(
            _totals_by_the_obvious_path(runs["r1"]) + _totals_by_the_obvious_path(runs["r2"])
        )
        assert sum(r.images is not None for r in rows) == totals < 120  # of ~450 image rows
        assert sum(r.images is None for r in rows) == sum(
            f.image_digest is None for f in everything
        )
        assert {(r.message, r.data) for r in rows if r.images is not None} == {(None, None)}
    engine.dispose()


def test_from_0004_through_0005_and_0006(store_url: str) -> None:
    """Rows of revision 0004 (every field in ``data``) go through both migrations."""
    engine = _at_revision(store_url, "0004")
    findings = _old_findings()["r1"]
    with engine.begin() as connection:
        _insert_run(connection, "r1")
        for finding in findings:
            _insert_finding(connection, "r1", finding, full=True)
    engine.dispose()
    with Store(store_url) as store:
        assert store.findings("r1") == _stored_by_the_obvious_path(findings)
    engine.dispose()


def test_the_downgrade_keeps_the_findings_and_drops_the_totals(store_url: str) -> None:
    """Downgraded to 0005, the findings that name no image read back as 0005 stored
    them; the totals are gone (their images cannot be listed again)."""
    with Store(store_url) as store:
        findings = _old_findings()["r1"]
        run_id = store.record_run("nightly", started_at=NOW)
        store.record_findings(run_id, findings)
        engine = store.engine
        _downgrade(engine, "0005")
        columns = {c["name"]: c for c in inspect(engine).get_columns("findings")}
        assert "images" not in columns and "image_digest" in columns
        assert not columns["message"]["nullable"] and not columns["data"]["nullable"]
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT code, image_digest, message, data FROM findings ORDER BY id")
            ).all()
        singles = [f for f in findings if f.image_digest is None]
        assert [(r.code, r.image_digest, r.message) for r in rows] == [
            (f.code, None, f.message) for f in singles
        ]
        stored = [orjson.loads(r.data) if isinstance(r.data, str | bytes) else r.data for r in rows]
        assert stored == [
            orjson.loads(orjson.dumps(findingrows.data_of(f.to_json()))) for f in singles
        ]


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
            (r.account, r.region, r.repository, *(getattr(r, f) for f in _SCAN_FIELDS))
            for r in rows
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
    """One transaction: when the fourth chunk cannot be written, the three before it (the
    totals, then two chunks of findings) are rolled back too (a crash leaves no half
    run)."""
    monkeypatch.setattr(findingrows, "CHUNK", 2)
    good = [builders.finding("IM002", digest=f"d{i}") for i in range(3)]
    good += [builders.finding("RP001", f"suporte/app{i}") for i in range(4)]
    bad = builders.finding("RP001", details={"x": object()})  # not JSON
    run_id = store.record_run("nightly", started_at=NOW)
    with pytest.raises(TypeError):
        store.record_findings(run_id, [*good, bad])
    assert store.findings(run_id) == []
    assert store.record_findings(run_id, good) == 5  # the store is usable after it
    assert store.findings(run_id) == _stored_by_the_obvious_path(good)
    assert store.findings(run_id)[0]["images"] == 3
