"""The report's exports as written by ``write_exports``: the proposals' CSV evidence
cell without the per-image lists (the JSON keeps the whole evidence), every other cell
unchanged; checked against the pandas path on the rows the cells are made from.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hygiene.report import csvout, exports, imageexport, render
from hygiene.report.format import to_datetime
from hygiene.timetext import offset_texts
from hygiene.units import human_bytes
from tests.builders import NOW
from tests.conftest import examples
from tests.report.synthetic import synthetic_report

SETTINGS = settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

EXCEL_CELL_LIMIT = 32_767  # characters in one cell


def pandas_csv(rows: Sequence[Mapping[str, Any]], columns: list[str]) -> bytes:
    buffer = io.StringIO()
    exports.export_frame([dict(r) for r in rows], columns).to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")


# --------------------------------------------------------------------------- decision 3

DELETE_IMAGES_EVIDENCE = {
    "images": [{"digest": "sha256:a", "tags": ["v1"], "bytes": 3}],
    "units": [["sha256:a"]],
    "rule_codes": {"sha256:a": ["IM002"]},
    "in_use_checked": ["ecs"],
}
REPOSITORY_EVIDENCE = {
    "rule_codes": ["RP003"],
    "image_count": 1,
    "created_at": "2025-01-01T00:00:00+00:00",
    "images": [{"digest": "sha256:b", "tags": [], "bytes": 5}],
}


def test_evidence_cell_leaves_out_what_is_listed_image_by_image() -> None:
    assert exports.evidence_cell(DELETE_IMAGES_EVIDENCE) == {"in_use_checked": ["ecs"]}
    assert exports.evidence_cell(REPOSITORY_EVIDENCE) == {
        "rule_codes": ["RP003"],  # the repository's codes, not a mapping by digest
        "image_count": 1,
        "created_at": "2025-01-01T00:00:00+00:00",
    }
    policy = {"policy": '{"Statement": []}'}
    assert exports.evidence_cell(policy) == policy
    assert exports.evidence_cell(None) is None and exports.evidence_cell("text") == "text"
    assert "images" in DELETE_IMAGES_EVIDENCE  # the proposal's own evidence is not changed


def test_proposals_csv_evidence_without_images_and_json_with_them(tmp_path: Path) -> None:
    rows = [
        {"id": "p-1", "action": "delete-images", "evidence": DELETE_IMAGES_EVIDENCE},
        {"id": "p-2", "action": "delete-repository", "evidence": REPOSITORY_EVIDENCE},
        {"id": "p-3", "action": "put-lifecycle-policy", "evidence": {"policy": "=x"}},
        {"id": "p-4", "action": "delete-images"},  # no evidence at all
    ]
    files = exports.write_exports(tmp_path, "n", {"proposals": rows}, ("csv", "json"))
    csv = pd.read_csv(files["proposals_csv"], keep_default_na=False)
    cells = [json.loads(c) if c else None for c in csv["evidence"]]
    assert cells == [
        {"in_use_checked": ["ecs"]},
        {"rule_codes": ["RP003"], "image_count": 1, "created_at": "2025-01-01T00:00:00+00:00"},
        {"policy": "=x"},
        None,
    ]
    written = json.loads(files["proposals_json"].read_text(encoding="utf-8"))
    assert [r.get("evidence") for r in written] == [r.get("evidence") for r in rows]
    # every other cell as before: the pandas path of the rows with the evidence cell made
    made = [{**r, "evidence": exports.evidence_cell(r.get("evidence"))} for r in rows]
    assert files["proposals_csv"].read_bytes() == pandas_csv(made, exports.PROPOSAL_COLUMNS)
    (tmp_path / "csv").mkdir()
    only_csv = exports.write_exports(tmp_path / "csv", "n", {"proposals": rows}, ("csv",))
    assert set(only_csv) == {"proposals_csv"}
    assert only_csv["proposals_csv"].read_bytes() == files["proposals_csv"].read_bytes()


def test_proposals_csv_of_a_registry_fits_spreadsheet_cells(tmp_path: Path) -> None:
    report = render.write_report(synthetic_report(), tmp_path, ("csv", "json"))
    rows = list(report.proposals)
    deletions = [r for r in rows if r["action"] == "delete-images"]
    assert deletions and max(len(r["evidence"]["images"]) for r in deletions) > 100
    made = [{**r, "evidence": exports.evidence_cell(r.get("evidence"))} for r in rows]
    written = report.files["proposals_csv"].read_bytes()
    assert written == pandas_csv(made, exports.PROPOSAL_COLUMNS)
    frame = pd.read_csv(report.files["proposals_csv"], keep_default_na=False)
    assert max(frame["evidence"].str.len()) < 1_000  # no longer grows with the images
    # the JSON export still carries every image of every deletion
    written_json = json.loads(report.files["proposals_json"].read_text(encoding="utf-8"))
    assert [r["evidence"] for r in written_json] == json.loads(
        json.dumps([r["evidence"] for r in rows], default=str)
    )


def test_a_cell_longer_than_a_spreadsheet_holds_is_cut_with_a_note(tmp_path: Path) -> None:
    """A delete proposal of 600 images: its target (every digest) is about 45,000
    characters, more than a spreadsheet cell holds (it would cut it without saying so).
    The CSV keeps the start and says it was cut and how long it was; the JSON export
    keeps the whole value; every other cell is as it was."""
    digests = [f"sha256:{i:064x}" for i in range(600)]
    target = {"digests": digests}
    full = json.dumps(target, ensure_ascii=False, sort_keys=True)
    assert len(full) > csvout.SPREADSHEET_CELL
    rows = [
        {"id": "p-1", "action": "delete-images", "target": target, "tags": ["=a", "b"]},
        {"id": "p-2", "action": "delete-images", "target": {"digests": digests[:2]}},
    ]
    files = exports.write_exports(tmp_path, "n", {"proposals": rows}, ("csv", "json"))
    frame = pd.read_csv(files["proposals_csv"], keep_default_na=False)
    cut = frame["target"][0]
    assert len(cut) <= csvout.SPREADSHEET_CELL
    assert cut.startswith(full[:30_000])
    assert cut.endswith(
        f"[cut: {len(full):,} characters in all, more than a spreadsheet cell holds]"
    )
    assert json.loads(frame["target"][1]) == {"digests": digests[:2]}  # short: untouched
    assert frame["tags"][0] == "'=a b"
    written = json.loads(files["proposals_json"].read_text(encoding="utf-8"))
    assert written[0]["target"] == target
    # the columnar writer and the csv_cell (pandas) path cut alike
    assert files["proposals_csv"].read_bytes() == pandas_csv(rows, exports.PROPOSAL_COLUMNS)


def test_fit_cells_touches_only_the_long_ones() -> None:
    limit = csvout.SPREADSHEET_CELL
    cells = pa.array(["é" * (limit // 2 + 1), "x" * limit, None, "y" * (limit + 1), ""])
    fitted = csvout.fit_cells(cells).to_pylist()
    assert fitted[0] == cells[0].as_py()  # more bytes than the limit, not more characters
    assert fitted[1] == "x" * limit and fitted[2] is None and fitted[4] == ""
    assert fitted[3] == csvout.spreadsheet_cell("y" * (limit + 1)) != "y" * (limit + 1)
    assert len(fitted[3]) <= limit
    assert csvout.fit_cells(pa.chunked_array([cells[:2], cells[2:]])).to_pylist() == fitted


# --------------------------------------------------------------------------- images


def slow_columns(batch: Sequence[tuple[Any, Any]], now: datetime) -> list[list[Any]]:
    """The images export's columns made the obvious way: a dict per image."""
    rows = [
        r for proposal, source in batch for r in imageexport.image_exports(proposal, source, now)
    ]
    return [[row[name] for row in rows] for name in imageexport.IMAGE_COLUMNS]


def as_lists(columns: list[Any]) -> list[list[Any]]:
    """Columns as lists (the fast path gives some as Arrow string arrays)."""
    return [c.to_pylist() if isinstance(c, pa.Array) else c for c in columns]


def outcome(make: Any, *args: Any) -> Any:
    try:
        return as_lists(make(*args))
    except Exception as error:  # the same failure both ways
        return type(error)


planner_time = st.one_of(
    st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ).map(lambda t: t.isoformat()),
    st.tuples(st.integers(0, 2**62), st.integers(0, 2)).map(
        lambda t: offset_texts(np.array([t[0] // 10 ** (3 * t[1]) * 10 ** (3 * t[1])]))[0]
    ),  # nanoseconds, as the planner writes pandas' times
)
odd_time = st.sampled_from(
    ["", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05", "2026-01-02T03:04:05.000000+00:00",
     "2026-02-30T00:00:00+00:00", "0000-01-01T00:00:00+00:00", "2026-01-02T03:04:05.5-03:00",
     "2026-01-02T24:00:00+00:00", "2026-01-02T03:04:05.123+00:00", "x",
     "2026-01-02T03:04:05.000000999+00:00", "1969-12-31T23:59:59.999999999+00:00",
     "2300-01-01T00:00:00+00:00", "１９90-01-01T00:00:00+00:00"]
)  # fmt: skip
digest = st.one_of(
    st.sampled_from(["sha256:a", "sha256:b", "sha256:c", "sha256:é", "sha256:\U0001f600"]),
    st.text(max_size=3),
)
tag = st.one_of(st.text(alphabet="av1-=é", max_size=3), st.integers(0, 3))
image = st.fixed_dictionaries(
    {"digest": digest},
    optional={
        "tags": st.one_of(st.none(), st.lists(tag, max_size=3), st.lists(st.text(max_size=2))),
        "pushed_at": st.one_of(st.none(), planner_time, odd_time),
        "last_pull": st.one_of(st.none(), planner_time, odd_time),
        "bytes": st.one_of(st.none(), st.integers(0, 2**70), st.just(True)),
        "size_bytes": st.integers(0, 9),
    },
)
planner_image = st.fixed_dictionaries(
    {
        "digest": digest,
        "tags": st.lists(st.text(alphabet="av1-", max_size=3), max_size=3),
        "pushed_at": st.one_of(st.none(), planner_time),
        "last_pull": st.one_of(st.none(), planner_time),
        "bytes": st.integers(0, 2**40),
    }
)
codes = st.lists(st.sampled_from(["IM001", "IM002", "IM003"]), max_size=2)
proposal = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["p-1", "p-2", 3]),
        "repository": st.sampled_from(["ml/x", "=evil", 7]),
        "state": st.sampled_from(["proposed", "approved", None]),
        "rule_codes": st.one_of(codes, codes.map(tuple), st.none()),
        "evidence": st.fixed_dictionaries(
            {"images": st.one_of(st.lists(planner_image, max_size=6), st.lists(image, max_size=6))},
            optional={
                "rule_codes": st.one_of(
                    st.dictionaries(digest, st.one_of(codes, codes.map(tuple))), codes
                )
            },
        ),
    },
    optional={
        "namespace": st.sampled_from(["ml", None]),
        "grace_until": planner_time,
        "account": st.just("1"),
        "region": st.just("r"),
    },
)


@given(
    batch=st.lists(st.tuples(proposal, proposal), max_size=5),
    now=st.sampled_from(
        [NOW, NOW.astimezone(ZoneInfo("America/Fortaleza")), NOW.replace(tzinfo=None)]
    ),
)
@SETTINGS
def test_image_columns_equal_a_dict_per_image(batch: list[tuple[Any, Any]], now: datetime) -> None:
    assert outcome(imageexport.image_columns, batch, now) == outcome(slow_columns, batch, now)


planner_proposal = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["p-1", "p-2"]),
        "repository": st.just("ml/x"),
        "state": st.sampled_from(["proposed", "approved"]),
        "rule_codes": codes,
        "evidence": st.fixed_dictionaries(
            {"images": st.lists(planner_image, max_size=8)},
            optional={"rule_codes": st.dictionaries(digest.filter(str.isascii), codes)},
        ),
    }
)


@given(batch=st.lists(planner_proposal.map(lambda p: (p, p)), max_size=5))
@SETTINGS
def test_image_columns_of_generated_planner_evidence(batch: list[tuple[Any, Any]]) -> None:
    fast = imageexport._image_columns(batch, NOW)  # straight from the columns, no fallback
    assert fast is not None and as_lists(fast) == slow_columns(batch, NOW)


def test_image_columns_of_planner_evidence_take_the_fast_path() -> None:
    report = synthetic_report()
    from hygiene.report.actions import ProposalImages

    proposals = list(report.proposals)
    images = ProposalImages(proposals, NOW)
    batch = [(p, images.proposal(str(p["id"]))) for p in proposals if str(p["id"]) in images]
    assert sum(len(s["evidence"]["images"]) for _, s in batch) > 1_000
    fast = imageexport._image_columns(batch, NOW)
    assert fast is not None and as_lists(fast) == slow_columns(batch, NOW)
    assert any(a is None for a in as_lists(fast)[imageexport.IMAGE_COLUMNS.index("last_pull")])


def test_images_export_from_columns_is_the_dict_path(tmp_path: Path) -> None:
    from hygiene.report.actions import ProposalImages

    report = synthetic_report()
    proposals = list(report.proposals)
    eager = {key: rows for key, rows in ProposalImages(proposals, NOW).items()}
    lazy = imageexport.export_images(proposals, ProposalImages(proposals, NOW))
    rows = list(imageexport.export_images(proposals, eager))  # _image_exports: a dict per image
    assert len(rows) > 1_000 and list(lazy) == rows and len(lazy) == len(rows)
    csv_path, json_path = tmp_path / "i.csv", tmp_path / "i.json"
    exports.write_csv(csv_path, lazy, imageexport.IMAGE_COLUMNS, json_path=json_path, chunk=300)
    assert csv_path.read_bytes() == pandas_csv(rows, imageexport.IMAGE_COLUMNS)
    expected = json.dumps(rows, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    assert json_path.read_bytes() == (expected + "\n").encode()
    only = exports.write_csv(tmp_path / "only.csv", lazy, imageexport.IMAGE_COLUMNS, chunk=7_000)
    assert only.read_bytes() == csv_path.read_bytes()


def test_images_export_with_a_gap_found_late_writes_the_csv_again(tmp_path: Path) -> None:
    from hygiene.report.actions import ProposalImages

    entry = {"digest": "sha256:a", "tags": ["v1"], "pushed_at": "2026-01-02T03:04:05+00:00",
             "last_pull": None, "bytes": 3}  # fmt: skip
    proposals = [
        {"id": f"p-{i}", "action": "delete-images", "repository": "ml/x", "state": "proposed",
         "evidence": {"images": [dict(entry, digest=f"sha256:{i}")]}}
        for i in range(30)
    ]  # fmt: skip
    proposals[-1]["evidence"]["images"][0]["pushed_at"] = None  # age_days: a gap, chunks later
    images = ProposalImages(proposals, NOW)
    lazy = imageexport.export_images(proposals, images)
    rows = list(imageexport.export_images(proposals, dict(images.items())))
    path = exports.write_csv(tmp_path / "i.csv", lazy, imageexport.IMAGE_COLUMNS, chunk=4)
    assert path.read_bytes() == pandas_csv(rows, imageexport.IMAGE_COLUMNS)
    assert b",proposed,," in path.read_bytes() or b".0," in path.read_bytes()


# --------------------------------------------------------------------------- csv text


def reference_formula_safe(cells: pa.Array) -> pa.Array:
    risky = pc.match_substring_regex(cells, "^[=+\\-@\t\r]")
    return pc.if_else(risky, pc.binary_join_element_wise("'", cells, ""), cells)


def reference_lines(columns: list[pa.Array]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in zip(*(c.to_pylist() for c in columns), strict=True):
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue().encode()


cell_text = st.one_of(st.none(), st.text(alphabet=st.sampled_from(list('ab ,"\n\r\t=+-@\'é')),
                                         max_size=4))  # fmt: skip


@given(
    values=st.lists(st.tuples(cell_text, cell_text), max_size=12),
    cut=st.tuples(st.integers(0, 3), st.integers(0, 3)),
)
@SETTINGS
def test_csv_text_of_arrays_checked_byte_by_byte(values: list[Any], cut: tuple[int, int]) -> None:
    """Columns whose bytes hold no quote, comma or line end (or no formula start) skip
    the per-cell pattern: the same text as the pattern on every cell, sliced too."""
    columns = [pa.array([v[i] for v in values], type=pa.string()) for i in range(2)]
    columns = [c.slice(cut[0], max(len(c) - sum(cut), 0)) for c in columns]
    for column in columns:
        assert csvout.formula_safe(column).equals(reference_formula_safe(column))
    if len(columns[0]):
        out = io.BytesIO()
        csvout.write_cells(out, None, columns)
        assert out.getvalue() == reference_lines(columns)


def test_a_column_given_as_an_arrow_array_is_the_same_cells() -> None:
    values = ["=a", None, "b,c"]
    array = pa.array(values, type=pa.string())
    assert csvout.add_kinds(set(), array) == csvout.add_kinds(set(), values) == {str, type(None)}
    assert csvout.add_kinds(set(), array[2:]) == {str}
    for kinds in ({str, type(None)}, {str, type(None), int}, {str, type(None), list}):
        assert csvout.column_cells(array, kinds).equals(csvout.column_cells(values, kinds))
    rows = imageexport.column_rows(["a", "b"], [array, [1, [2], 3]])
    assert rows == [{"a": "=a", "b": 1}, {"a": None, "b": [2]}, {"a": "b,c", "b": 3}]


def halfway(unit: int, k: int) -> int:
    """A size whose tenths in ``unit`` end exactly halfway (``x.x5``), when one exists."""
    step = 1024**unit
    return (step * (10 * k + 5) // 100) if (step * (10 * k + 5)) % 100 == 0 else step * k


sizes = st.lists(
    st.one_of(
        st.integers(0, 2**53 - 1),
        st.integers(0, 5).flatmap(lambda u: st.integers(0, 3000).map(lambda k: halfway(u, k))),
        st.integers(0, 52).map(lambda e: 2**e - 1),
        st.integers(0, 52).map(lambda e: 2**e),
    ),
    max_size=30,
)


@given(values=st.one_of(sizes, st.lists(st.integers(-(2**70), 2**70), max_size=5)))
@SETTINGS
def test_size_texts_are_human_bytes(values: list[int]) -> None:
    texts = imageexport._size_texts(values)
    made = texts.to_pylist() if isinstance(texts, pa.Array) else texts
    assert made == [human_bytes(v) for v in values]


def test_size_texts_round_halfway_tenths_to_even() -> None:
    assert imageexport._size_texts([1280, 1331, 3 * 2**19, 2**53 - 1]).to_pylist() == [
        "1.2 KiB", "1.3 KiB", "1.5 MiB", "8.0 PiB",
    ]  # fmt: skip


@given(
    st.lists(
        st.lists(st.one_of(st.text(max_size=3), st.integers(0, 3), st.lists(st.text(max_size=2)))),
        max_size=6,
    )
)
def test_a_proposals_tags_are_every_tag_of_its_images_as_text(tags: list[list[Any]]) -> None:
    from hygiene.report.actions import ProposalImages

    proposal = {"id": "p-1", "action": "delete-images",
                "evidence": {"images": [{"tags": t} for t in tags]}}  # fmt: skip
    lazy = ProposalImages([proposal], NOW)
    assert lazy.tags("p-1") == sorted({str(t) for image in tags for t in image})


spread_value = st.one_of(
    st.none(), st.text(alphabet="ab=é", max_size=3), st.integers(0, 3), st.just("\ud800")
)


@given(
    values=st.lists(spread_value, max_size=5).flatmap(
        lambda v: st.tuples(
            st.just(v), st.lists(st.integers(0, 3), min_size=len(v), max_size=len(v))
        )
    )
)
@SETTINGS
def test_a_proposals_values_spread_over_its_rows_are_the_repeated_values(
    values: tuple[list[Any], list[int]],
) -> None:
    """Arrow text where the values are text, a list otherwise: the same rows, kinds and
    CSV cells as each proposal's value repeated for its rows."""
    given_values, counts = values
    rows = pa.array(np.repeat(np.arange(len(counts)), counts), type=pa.int64())
    spread = imageexport._spread(given_values, counts, rows)
    repeated = [v for v, n in zip(given_values, counts, strict=True) for _ in range(n)]
    assert as_lists([spread]) == [repeated]
    kinds: set[type] = set()
    assert csvout.add_kinds(set(), spread) == csvout.add_kinds(kinds, repeated) or not repeated
    if repeated and kinds <= csvout.KNOWN:
        try:
            expected = csvout.column_cells(repeated, kinds)
        except UnicodeEncodeError:  # a lone surrogate: the list path's failure
            assert not isinstance(spread, pa.Array)
        else:
            assert csvout.column_cells(spread, kinds).equals(expected)


@given(
    st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "tags": st.one_of(
                        st.none(),
                        st.just(0),
                        st.text(max_size=2),
                        st.lists(st.text(max_size=2)),
                        st.lists(st.one_of(st.integers(0, 2), st.lists(st.text(max_size=1)))),
                    )
                },
            ),
            st.just([]),
            st.just("x"),
        ),
        max_size=5,
    )
)
@SETTINGS
def test_a_proposals_tags_of_odd_evidence_are_what_the_set_of_texts_says(images: list[Any]) -> None:
    from hygiene.report.actions import ProposalImages

    def slow() -> Any:
        try:
            return sorted({str(t) for image in images for t in image.get("tags") or ()})
        except Exception as error:  # the same failure both ways
            return type(error)

    def fast() -> Any:
        proposal = {"id": "p-1", "action": "delete-images", "evidence": {"images": images}}
        try:
            return ProposalImages([proposal], NOW).tags("p-1")
        except Exception as error:
            return type(error)

    assert fast() == slow()


@given(
    st.lists(
        st.one_of(
            st.none(),
            planner_time,
            st.sampled_from(
                ["2026-01-02T03:04:05.000000+00:00", "2026-01-02T03:04:05.000001+00:00"]
            ),
        ),
        max_size=8,
    ),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
)
@SETTINGS
def test_image_times_are_written_as_isoformat_writes_them(
    times: list[str | None], cut: tuple[int, int]
) -> None:
    text = pa.array(times, type=pa.string())
    text = text.slice(cut[0], max(len(text) - sum(cut), 0))  # offsets not from zero
    assert imageexport._utc_microseconds(text.to_pylist()) is not None
    expected = [None if t is None else to_datetime(t).isoformat() for t in text.to_pylist()]
    assert imageexport._iso_texts(text).to_pylist() == expected
