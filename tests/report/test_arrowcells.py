"""CSV cells of typed Arrow columns (integers, bools, lists of text, text) against the
cells of the same values given as a Python list, which the CSV writer's other tests check
against pandas: the same kinds, the same cells (or the same failure), the same rows."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import example, given
from hypothesis import strategies as st

from hygiene.report import csvout, imageexport
from tests.report.test_exports import SETTINGS

text = st.one_of(
    st.text(alphabet='ab=+-@,"\n\r\té ', max_size=4), st.sampled_from(["", "=1", "x,y"])
)
integer = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([2**53, 2**53 - 1, -(2**53), -(2**53) + 1, 10**16, 0, -1, -(2**63)]),
    st.integers(-1000, 1000),
)
# (Arrow type, one value of it); None anywhere is a null
typed = st.one_of(
    st.tuples(st.just(pa.string()), st.lists(st.one_of(st.none(), text), max_size=6)),
    st.tuples(st.just(pa.int64()), st.lists(st.one_of(st.none(), integer), max_size=6)),
    st.tuples(st.just(pa.bool_()), st.lists(st.one_of(st.none(), st.booleans()), max_size=6)),
    st.tuples(
        st.just(pa.list_(pa.string())),
        st.lists(
            st.one_of(st.none(), st.lists(text, max_size=3), st.lists(st.none(), max_size=1)),
            max_size=6,
        ),
    ),
)
# what other chunks of the same column may have held
other_kinds = st.sets(st.sampled_from([str, type(None), int, float, bool, list, dict]), max_size=2)


def cells(values: Any, kinds: set[type]) -> Any:
    try:
        made = csvout.column_cells(values, kinds)
    except Exception as error:  # the same failure both ways
        return type(error)
    return made.to_pylist()


@given(typed, other_kinds, st.integers(0, 2))
@example((pa.list_(pa.string()), [["a", None], []]), set(), 0)  # None in a list: JSON
@example((pa.list_(pa.string()), [None, ["=a", "b"]]), set(), 1)
@example((pa.int64(), [3, None, 2**53 - 1]), set(), 0)
@example((pa.int64(), [None, 2**53]), set(), 0)  # repr writes 9007199254740992.0 too
@example((pa.int64(), [-(10**16), None]), set(), 0)  # repr writes -1e+16
@example((pa.bool_(), [True, None]), {str}, 0)
@example((pa.string(), [None]), {int}, 0)
@SETTINGS
def test_an_arrow_column_is_the_cells_of_its_values_as_a_list(
    given_values: tuple[pa.DataType, list[Any]], others: set[type], cut: int
) -> None:
    kind, values = given_values
    array = pa.array(values, type=kind)[cut:]  # offsets not from zero
    values = values[cut:]
    assert array.to_pylist() == values
    kinds: set[type] = set()
    assert csvout.add_kinds(set(), array) == csvout.add_kinds(kinds, values)
    kinds |= others
    assert cells(array, kinds) == cells(values, kinds)
    assert imageexport.column_rows(["a"], [array]) == imageexport.column_rows(["a"], [values])


def test_integers_in_a_column_of_floats_are_written_as_repr_writes_them() -> None:
    values = [3, None, -(2**53) + 1, 2**53 - 1, 2**53, 10**16, 0]
    kinds = {int, type(None)}
    assert cells(pa.array(values[:5]), kinds) == cells(values[:5], kinds)
    assert cells(pa.array(values[:4]), kinds) == ["3.0", None, "-9007199254740991.0",
                                                  "9007199254740991.0"]  # fmt: skip
    assert cells(pa.array(values), kinds)[5:] == ["1e+16", "0.0"]  # repr's, not N.0


def test_the_images_columns_of_planner_evidence_are_typed_arrow_columns() -> None:
    """The images export's fast path hands the CSV writer Arrow columns, not lists of
    800,000 Python values (what this file checks the cells of)."""
    from hygiene.report.actions import ProposalImages
    from tests.builders import NOW
    from tests.report.synthetic import synthetic_report

    proposals = list(synthetic_report().proposals)
    images = ProposalImages(proposals, NOW)
    batch = [(p, images.proposal(str(p["id"]))) for p in proposals if str(p["id"]) in images]
    fast = imageexport._image_columns(batch, NOW)
    assert fast is not None
    typed_columns = dict(zip(imageexport.IMAGE_COLUMNS, fast, strict=True))
    for name in ("rule_codes", "tags", "untagged", "age_days", "bytes", "size", "digest"):
        assert isinstance(typed_columns[name], pa.Array), name
