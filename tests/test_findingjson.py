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

from hygiene.findingchunks import finding_json, findings_text_chunks
from hygiene.findingjson import ImageRowsJson, image_rows_text
from hygiene.findingtable import (
    NAT,
    Findings,
    ImageFindings,
    RuleInfo,
    _plain,
    all_plain,
    english,
    english_texts,
    message_columns,
)
from hygiene.findingtext import AllRows, _contents, _contents_array
from hygiene.jsonout import findings_chunks, list_items, write_document
from hygiene.messages import Message
from hygiene.model import Finding, FixSafety, Severity
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
        # image rows in any order (AllRows reads values in the order of their rows)
        rows=np.array(draw(st.permutations(range(n))), dtype=np.int64),
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


# --------------------------------------------------------------------------- round 4
# every fast path of the scan document against the obvious path it replaces


@SETTINGS
@given(
    image_findings(odd=True) | image_findings(),
    st.integers(1, 3),
    st.sampled_from([(0, None), (EXPORT, str)]),
    st.integers(1, 4),
)
def test_chunks_sharing_values_made_for_all_rows_give_the_same_bytes(
    image: ImageFindings, level: int, options: tuple[int, Any], chunk: int
) -> None:
    """The document's chunks share an :class:`AllRows` (parameters, tags, templates and
    messages made once, in creation order, taken in the rows' order): the bytes are
    orjson's of the rows' dicts, for any chunking and order of image rows, and a value
    AllRows declines (a dataclass) leaves the chunk to the dict path as before."""
    option, default = options
    shared = AllRows(image)
    chunks = [ImageRowsJson(image, a, min(a + chunk, len(image)), shared)
              for a in range(0, len(image), chunk)]  # fmt: skip
    try:
        expected = dict_path(image, level, option, default)
    except orjson.JSONEncodeError as error:
        with pytest.raises(orjson.JSONEncodeError, match=str(error)):
            b"".join(list_items(chunks, level=level, option=option, default=default))
        return
    made = b"".join(list_items(chunks, level=level, option=option, default=default))
    assert made == expected


def test_all_rows_reads_values_in_creation_order_and_puts_them_back() -> None:
    """Rows whose image rows run backwards: every shared column is in the rows' order."""
    image = sample(6)
    image.rows = image.rows[::-1].copy()
    image.message[3] = Message("other %(x)s", {"x": [1, {"y": None}]})
    shared = AllRows(image)
    made = b"".join(list_items(
        [ImageRowsJson(image, 0, 4, shared), ImageRowsJson(image, 4, 6, shared)], level=2
    ))  # fmt: skip
    assert made == dict_path(image, 2, 0, None)
    assert shared.templates(0, 6) is not None and shared.texts() == english_texts(image.message)


def test_findings_text_chunks_share_one_all_rows() -> None:
    findings = Findings(sample(7), [])
    chunks = list(findings_text_chunks(findings, 3))
    assert [(c.start, c.stop) for c in chunks] == [(0, 3), (3, 6), (6, 7)]
    assert len({id(c.shared) for c in chunks}) == 1 and chunks[0].shared is not None


MESSAGES = st.lists(
    st.builds(Message, st.lists(PIECES, max_size=6).map("".join), SCALAR_PARAMS)
    | st.builds(Message, st.sampled_from(["%(age)s days", "100%% %(n)s", "plain"]),
                st.fixed_dictionaries({"age": SCALAR, "n": SCALAR}) | st.just({}))
    | st.builds(Message, st.just("%(x)s"), st.fixed_dictionaries({"x": JSON_VALUES}))
    | TEXT,
    max_size=12,
)  # fmt: skip


@SETTINGS
@given(MESSAGES, st.randoms(use_true_random=False), st.integers(1, 5))
def test_english_texts_are_english_of_each_message(
    messages: list[Any], random: Any, block: int
) -> None:
    """Block by block (of any size), in any order, with the template % params map where
    a block allows it: the texts (or the error) of english() message by message."""
    import hygiene.findingtable as findingtable

    errors: set[type[Exception]] = set()
    for message in messages:
        try:
            english(message, {})
        except Exception as error:  # a template its parameters do not fill
            errors.add(type(error))
    # a message that fails fails the lot (the first in the order rendered)
    expected = None if errors else [english(m, {}) for m in messages]
    kind = tuple(errors)
    order = np.array(random.sample(range(len(messages)), len(messages)), dtype=np.int64)
    saved = findingtable.ENGLISH_BLOCK
    findingtable.ENGLISH_BLOCK = block
    try:
        for how in (None, order):
            if expected is None:
                with pytest.raises(kind):
                    english_texts(messages, how)
            else:
                assert english_texts(messages, how) == expected
    finally:
        findingtable.ENGLISH_BLOCK = saved


def test_english_texts_fill_in_plain_blocks_and_render_the_others() -> None:
    messages: list[Any] = [Message("%(n)s of %(total)s", {"n": i, "total": 9}) for i in range(5)]
    messages += [Message("100%% done", {}), Message("%(n)r left", {"n": 3}), "plain text"]
    messages += [Message("%(names)s", {"names": ["a", "b"]}), Message("none", {"x": None})]
    assert english_texts(messages) == [
        "0 of 9", "1 of 9", "2 of 9", "3 of 9", "4 of 9",
        "100%% done", "'3' left", "plain text", "a, b", "none",
    ]  # fmt: skip
    assert english_texts(messages) == [m.render() if isinstance(m, Message) else m
                                       for m in messages]  # fmt: skip


@SETTINGS
@given(MESSAGES | st.lists(st.builds(Message, TEXT, st.dictionaries(TEXT, JSON_VALUES))))
def test_message_columns_and_plain_check_are_the_loops_they_replace(messages: list[Any]) -> None:
    templates, params = message_columns(messages)
    assert templates == [m.template if isinstance(m, Message) else "" for m in messages]
    assert params == [m.params if isinstance(m, Message) else {} for m in messages]
    own = [(p, m.params) for p, m in zip(params, messages, strict=True) if isinstance(m, Message)]
    assert all(a is b for a, b in own)  # the messages' own mappings, not copies
    assert all_plain(params) == all(_plain(p) for p in params)


def test_plain_check_takes_any_mapping() -> None:
    from types import MappingProxyType

    assert all_plain([{"a": 1}, MappingProxyType({"b": "x"})])
    assert not all_plain([{"a": 1}, MappingProxyType({"b": [1]})])
    assert not all_plain([{"a": 1}, {"b": Point(1, "p")}])
    assert all_plain([])


@SETTINGS
@given(st.lists(TEXT | st.just("sha256:" + "ab" * 32), max_size=6))
def test_text_contents_as_an_arrow_array_are_orjsons(values: list[str]) -> None:
    assert _contents_array(values).to_pylist() == _contents(values)


def test_text_contents_decline_what_orjson_refuses_or_is_not_text() -> None:
    from hygiene.findingtext import _Decline

    with pytest.raises(_Decline):
        _contents_array(["a", None])  # type: ignore[list-item]
    with pytest.raises(UnicodeEncodeError):  # declined by image_rows_text, as orjson's error
        _contents_array(["\ud800"])


POINTS = st.builds(Point, st.integers(-(2**63), 2**63 - 1), TEXT)
DETAILS = st.dictionaries(TEXT, JSON_VALUES | st.tuples(JSON_SCALARS) | POINTS, max_size=3)


@SETTINGS
@given(
    st.builds(
        Finding,
        code=TEXT, rule=TEXT, severity=st.sampled_from(Severity), account=TEXT, region=TEXT,
        repository=st.none() | TEXT, namespace=st.none() | TEXT, message=TEXT, fix=TEXT,
        fix_safety=st.sampled_from(FixSafety), image_digest=st.none() | TEXT,
        tags=st.lists(TEXT, max_size=2).map(tuple), bytes=st.integers(0, 2**40),
        details=DETAILS, message_template=TEXT, message_params=DETAILS,
    )
)  # fmt: skip
def test_finding_json_writes_what_to_json_writes(finding: Finding) -> None:
    """Other findings in the document: the same dict (and bytes) as ``to_json()``; a
    dataclass in the details or parameters goes through ``asdict`` as before."""
    made = finding_json(finding)
    assert made == finding.to_json()
    for option in (orjson.OPT_INDENT_2, orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS):
        assert orjson.dumps(made, option=option) == orjson.dumps(finding.to_json(), option=option)
