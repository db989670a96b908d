"""Image findings' JSON text made from the columns (:mod:`hygiene.findingjson`) is the
bytes orjson writes for the rows :meth:`ImageFindings.json_rows` gives.

Generated findings cover what the template lays out itself (text with quotes,
backslashes, control characters and non-ASCII; missing namespaces and times; tags and
``also`` lists, empty or not; units of several digests; parameters of every JSON kind)
and what it leaves to orjson (details a rule added, which may override the template's
own keys; parameters with non-text keys or dataclasses).
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hygiene.findingjson import ImageRowsJson, image_rows_text
from hygiene.findingtable import NAT, Findings, ImageFindings, RuleInfo
from hygiene.jsonout import findings_chunks, list_items, write_document
from hygiene.messages import Message
from hygiene.model import FixSafety, Severity
from hygiene.report import exports
from hygiene.report.findingrows import FindingRows
from tests.conftest import examples

SETTINGS = settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# the export's options (report.exports._export_json)
EXPORT = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)

# text of every kind but lone surrogates (which orjson refuses: tested on their own)
TEXT = st.text(
    st.characters(exclude_categories=["Cs"]) | st.sampled_from('"\\\n\t\x00\x1f\x7f/é€😀'),
    max_size=12,
)
NS = st.integers(-(2**62), 2**62) | st.just(NAT) | st.sampled_from([0, 1_764_298_800 * 10**9])


@dataclasses.dataclass
class Point:
    x: int
    label: str


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | TEXT
    | st.floats(allow_nan=False, allow_infinity=False)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def image_findings(draw: Any, odd: bool = False) -> ImageFindings:
    """Image findings with generated columns; ``odd`` adds what the template leaves to
    orjson (a rule's details, parameters with dataclasses)."""
    rules = [
        RuleInfo(draw(TEXT), draw(TEXT), draw(st.sampled_from(Severity)), draw(TEXT),
                 draw(st.sampled_from(FixSafety)))
        for _ in range(draw(st.integers(1, 3)))
    ]  # fmt: skip
    n = draw(st.integers(0, 8))
    lengths = [draw(st.integers(1, 3)) for _ in range(n)]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    digests = [draw(TEXT | st.just("sha256:" + "ab" * 32)) for _ in range(int(offsets[-1]))]

    def message() -> Any:
        if draw(st.booleans()):
            return draw(TEXT)
        params = draw(st.dictionaries(TEXT, JSON_VALUES, max_size=4))
        if odd and draw(st.booleans()):
            params["point"] = Point(draw(st.integers()), draw(TEXT))
        template = draw(TEXT).replace("%", "")  # rendered with %: a literal template
        return Message(template, params)

    def details() -> Any:
        if not odd:
            return draw(st.none() | st.just("not a dict"))
        keys = TEXT | st.sampled_from(["unit", "also", "pushed_at", "last_pull", "project"])
        return draw(st.none() | st.dictionaries(keys, JSON_VALUES, max_size=3))

    tag_lists = st.lists(TEXT, max_size=3)
    return ImageFindings(
        rules=rules,
        rule=np.array([draw(st.integers(0, len(rules) - 1)) for _ in range(n)], dtype=np.int64),
        rows=np.arange(n, dtype=np.int64),
        account=[draw(TEXT) for _ in range(n)],
        region=[draw(TEXT) for _ in range(n)],
        repository=[draw(TEXT) for _ in range(n)],
        namespace=[draw(st.none() | TEXT) for _ in range(n)],
        tags=[draw(tag_lists | tag_lists.map(tuple)) for _ in range(n)],
        message=[message() for _ in range(n)],
        unit_offsets=offsets,
        unit_digests=digests,
        unit_rows=np.arange(len(digests), dtype=np.int64),
        bytes=np.array([draw(st.integers(-(2**63), 2**63 - 1)) for _ in range(n)], dtype=np.int64),
        pushed_at=np.array([draw(NS) for _ in range(n)], dtype=np.int64),
        last_pull=np.array([draw(NS) for _ in range(n)], dtype=np.int64),
        details=[details() for _ in range(n)],
        also=[draw(st.none() | st.lists(TEXT, max_size=3)) for _ in range(n)],
    )


def dict_path(image: ImageFindings, level: int, option: int, default: Any) -> bytes:
    """What the list writer made before: orjson of the rows' dicts."""
    return b"".join(list_items([image.json_rows(0, len(image))], level=level, option=option,
                               default=default))  # fmt: skip


def text_path(image: ImageFindings, level: int, option: int, default: Any) -> bytes:
    return b"".join(list_items([ImageRowsJson(image, 0, len(image))], level=level,
                               option=option, default=default))  # fmt: skip


@SETTINGS
@given(image_findings(), st.integers(1, 3), st.sampled_from([(0, None), (EXPORT, str)]))
def test_text_from_columns_is_orjson_of_the_rows(
    image: ImageFindings, level: int, options: tuple[int, Any]
) -> None:
    option, default = options
    expected = dict_path(image, level, option, default)
    made = image_rows_text(image, 0, len(image), level, option, default)
    if len(image):
        assert made is not None  # the template laid every row out itself
        assert bytes(made) == expected
    else:
        assert made is None and expected == b""
    assert text_path(image, level, option, default) == expected


@SETTINGS
@given(image_findings(odd=True), st.integers(1, 3), st.sampled_from([(0, None), (EXPORT, str)]))
def test_rows_left_to_orjson_give_the_same_bytes(
    image: ImageFindings, level: int, options: tuple[int, Any]
) -> None:
    option, default = options
    try:
        expected = dict_path(image, level, option, default)
    except orjson.JSONEncodeError as error:  # a dataclass in the document (no default)
        with pytest.raises(orjson.JSONEncodeError, match=str(error)):
            text_path(image, level, option, default)
        return
    assert text_path(image, level, option, default) == expected


@SETTINGS
@given(image_findings(), st.integers(0, 8), st.integers(0, 8))
def test_any_range_of_rows(image: ImageFindings, a: int, b: int) -> None:
    start, stop = sorted((min(a, len(image)), min(b, len(image))))
    expected = b"".join(list_items([image.json_rows(start, stop)], level=2))
    made = b"".join(list_items([ImageRowsJson(image, start, stop)], level=2))
    assert made == expected


def sample(n: int = 5) -> ImageFindings:
    rules = [RuleInfo("IM001", "untagged-image", Severity.WARNING, "Delete it.", FixSafety.SAFE)]
    digests = [f"sha256:{i:064x}" for i in range(n + 1)]
    return ImageFindings(
        rules=rules,
        rule=np.zeros(n, dtype=np.int64),
        rows=np.arange(n, dtype=np.int64),
        account=["123456789012"] * n,
        region=["eu-west-1"] * n,
        repository=[f"team/app-{i}" for i in range(n)],
        namespace=["team"] * (n - 1) + [None],
        tags=[[f"v{i}", "latest"] if i % 2 else [] for i in range(n)],
        message=[Message("pushed %(age)s days ago", {"age": i}) for i in range(n)],
        unit_offsets=np.array([*range(n), n + 1], dtype=np.int64),
        unit_digests=digests,
        unit_rows=np.arange(n + 1, dtype=np.int64),
        bytes=np.arange(n, dtype=np.int64) * 1000,
        pushed_at=np.full(n, 1_764_298_800 * 10**9, dtype=np.int64),
        last_pull=np.array([NAT] * n, dtype=np.int64),
        details=[None] * n,
        also=[["IM002"] if i == 1 else None for i in range(n)],
    )


def test_lone_surrogates_raise_as_before() -> None:
    image = sample()
    image.message[2] = "bad \ud800 text"
    assert image_rows_text(image, 0, len(image), 2) is None  # declined
    with pytest.raises(orjson.JSONEncodeError) as before:
        dict_path(image, 2, 0, None)
    with pytest.raises(orjson.JSONEncodeError, match=str(before.value)):
        text_path(image, 2, 0, None)


def test_options_it_does_not_lay_out_are_declined() -> None:
    image = sample()
    assert image_rows_text(image, 0, len(image), 1, orjson.OPT_STRICT_INTEGER) is None
    assert image_rows_text(image, 0, len(image), 1, orjson.OPT_SORT_KEYS) is not None
    with pytest.raises(ValueError, match="framing"):  # as for rows: a caller's error
        text_path(image, 1, orjson.OPT_APPEND_NEWLINE, None)


def test_values_of_other_kinds_are_left_to_orjson() -> None:
    image = sample()
    image.account[1] = None  # type: ignore[call-overload]
    assert image_rows_text(image, 0, len(image), 2) is None
    assert text_path(image, 2, 0, None) == dict_path(image, 2, 0, None)


def test_scan_document_and_findings_export_are_the_standard_bytes(tmp_path: Path) -> None:
    """The document's findings and the export, each against the standard library."""
    findings = Findings(sample(7), [])
    rows = [f.to_json() for f in findings]
    stream = io.BytesIO()
    write_document(stream, [("findings", findings_chunks(findings, size=3))])
    assert stream.getvalue().decode() == json.dumps({"findings": rows}, indent=2,
                                                   ensure_ascii=False)  # fmt: skip
    table = FindingRows.of(findings)
    for picked in (table, table.select(np.arange(7) % 3 != 1)):
        written = exports._export_json(tmp_path / "f.json", picked).read_bytes()
        expected = json.dumps(list(picked), ensure_ascii=False, indent=2, sort_keys=True,
                              default=str)  # fmt: skip
        assert written == (expected + "\n").encode()


KEYS = ["age", "n", "name", "x"]
SPECS = st.sampled_from(["s", "s", "s", "r", "-5s", "d"])
PIECES = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=5).map(lambda t: t.replace("%", "")),
    st.just("%%"),
    st.builds(lambda key, spec: f"%({key}){spec}", st.sampled_from(KEYS), SPECS),
)
SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
# every key (a template's placeholders all filled), or some (a missing one: KeyError)
SCALAR_PARAMS = st.fixed_dictionaries({key: SCALAR for key in KEYS}) | st.dictionaries(
    st.sampled_from(KEYS), SCALAR, max_size=4
)


@SETTINGS
@given(
    st.lists(PIECES, max_size=6).map("".join),
    SCALAR_PARAMS | st.dictionaries(st.sampled_from(KEYS), JSON_VALUES),
)
def test_english_text_is_what_a_message_renders(template: str, params: dict[str, Any]) -> None:
    from hygiene.findingtable import english, message_parts

    message = Message(template, params)
    try:
        expected = message.render()
    except Exception as error:  # a template its parameters do not fill: the same error
        with pytest.raises(type(error)):
            english(message, {})
        return
    by_name: dict[str, bool] = {}
    assert english(message, by_name) == expected == message_parts(message)[0]
    assert english(message, by_name) == expected  # the template's check, cached
    assert english(message) == expected
    assert english("plain text") == "plain text"
