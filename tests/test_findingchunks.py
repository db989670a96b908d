"""The scan document's image findings made a batch at a time and joined chunk by chunk
(:mod:`hygiene.findingchunks`) are the bytes of the rows' dicts, in the same pieces as
chunks made one by one."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hygiene import findingchunks
from hygiene.findingchunks import BatchedRowsJson, TextBatch, findings_text_chunks
from hygiene.findingjson import ImageRowsJson, image_rows_slots, image_rows_text, slots_text
from hygiene.findingtable import Findings, ImageFindings, english_texts
from hygiene.findingtext import AllRows
from hygiene.jsonout import list_items
from hygiene.messages import Message
from tests.test_findingjson import EXPORT, SETTINGS, dict_path, image_findings, sample


def pieces(chunks: Any, level: int, option: int, default: Any) -> list[bytes]:
    return [bytes(p) for p in list_items(chunks, level=level, option=option, default=default)]


def one_by_one(image: ImageFindings, size: int) -> list[ImageRowsJson]:
    """The obvious path: each chunk's rows made on their own."""
    return [ImageRowsJson(image, a, min(a + size, len(image))) for a in range(0, len(image), size)]


@SETTINGS
@given(
    image_findings(odd=True) | image_findings(),
    st.integers(1, 3),
    st.sampled_from([(0, None), (EXPORT, str)]),
    st.integers(1, 4),
    st.integers(1, 12),
)
def test_batches_give_the_bytes_and_pieces_of_chunks_made_one_by_one(
    image: ImageFindings, level: int, options: tuple[int, Any], size: int, batch_rows: int
) -> None:
    """Any chunk size and batch size, rows with details of their rule (the batch
    declines: each chunk is made on its own), values AllRows declines, both option
    sets: every piece is the one a chunk made on its own writes, and together they are
    orjson's bytes of the rows' dicts (or its error)."""
    option, default = options
    findings = Findings(image, [])
    batched = list(findings_text_chunks(findings, size, batch_rows))
    try:
        expected = dict_path(image, level, option, default)
    except orjson.JSONEncodeError as error:
        with pytest.raises(orjson.JSONEncodeError, match=str(error)):
            pieces(batched, level, option, default)
        return
    made = pieces(batched, level, option, default)
    assert made == pieces(one_by_one(image, size), level, option, default)
    assert b"".join(made) == expected


@SETTINGS
@given(image_findings(), st.integers(0, 8), st.integers(0, 8), st.integers(0, 8))
def test_any_range_of_a_batch_joins_to_its_rows(
    image: ImageFindings, a: int, b: int, c: int
) -> None:
    """slots_text of rows within a batch's values is image_rows_text of those rows."""
    begin, start, stop = sorted(min(x, len(image)) for x in (a, b, c))
    end = len(image)
    slots = image_rows_slots(image, begin, end, 2, 0, None, shared=AllRows(image))
    if begin >= end:
        assert slots is None
        return
    if start >= stop:
        return
    assert slots is not None  # no details of a rule: nothing declines
    made = slots_text(slots, start - begin, stop - begin)
    assert made is not None
    assert bytes(made) == bytes(image_rows_text(image, start, stop, 2))  # type: ignore[arg-type]


def test_chunks_of_a_batch_share_it_and_cut_where_their_rows_are() -> None:
    image = sample(23)
    chunks = list(findings_text_chunks(Findings(image, []), 5, batch_rows=12))
    assert [(c.start, c.stop) for c in chunks] == [
        (0, 5), (5, 10), (10, 15), (15, 20), (20, 23)
    ]  # fmt: skip
    assert all(isinstance(c, BatchedRowsJson) for c in chunks)
    batches = [c.batch for c in chunks]
    assert batches[0] is batches[1] and batches[2] is batches[3]  # 10 rows a batch
    assert batches[1] is not batches[2] and batches[3] is not batches[4]
    assert len({id(c.shared) for c in chunks}) == 1
    assert pieces(chunks, 2, 0, None) == pieces(one_by_one(image, 5), 2, 0, None)


def test_a_batch_asked_with_other_arguments_makes_the_chunk_on_its_own() -> None:
    image = sample(6)
    batch = TextBatch(image, 0, 6, AllRows(image))
    first = batch.items_json(0, 3, 2, 0, None)
    assert bytes(first) == bytes(image_rows_text(image, 0, 3, 2))  # type: ignore[arg-type]
    other = batch.items_json(3, 6, 1, orjson.OPT_SORT_KEYS, None)
    assert bytes(other) == bytes(image_rows_text(image, 3, 6, 1, orjson.OPT_SORT_KEYS))  # type: ignore[arg-type]


def test_a_row_with_details_of_its_rule_leaves_each_chunk_on_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = sample(9)
    image.details[4] = {"project": "x", "unit": ["replaced"]}
    image.message[7] = Message("odd %(x)s", {"x": [1, {"y": None}]})
    assert image_rows_slots(image, 0, 9, 2) is None
    made: list[tuple[int, int]] = []
    real = findingchunks.image_rows_text

    def counted(image: ImageFindings, start: int, stop: int, *args: Any, **kwargs: Any) -> Any:
        made.append((start, stop))
        return real(image, start, stop, *args, **kwargs)

    monkeypatch.setattr(findingchunks, "image_rows_text", counted)
    chunks = list(findings_text_chunks(Findings(image, []), 3, batch_rows=9))
    assert b"".join(pieces(chunks, 2, 0, None)) == dict_path(image, 2, 0, None)
    assert made == [(0, 3), (3, 6), (6, 9)]


# --------------------------------------------------------------------------- AllRows


@SETTINGS
@given(image_findings(odd=True) | image_findings(), st.integers(1, 4))
def test_messages_rendered_in_creation_order_are_the_image_findings_texts(
    image: ImageFindings, size: int
) -> None:
    """AllRows renders the English texts in the creation order when the image findings
    have none yet: they are the texts ``english_texts`` gives in the rows' order, the
    image findings get exactly those for their other readers, and each chunk's
    messages are theirs."""
    expected = english_texts(image.message)
    shared = AllRows(image)
    assert shared.texts() == expected
    assert image._texts == expected and shared.texts() is image._texts
    for start in range(0, len(image), size):
        chunk = ImageRowsJson(image, start, min(start + size, len(image)), shared)
        text = chunk.items_json(2)
        if text is not None:  # not declined: the messages are the rows' texts
            rows = orjson.loads(b"[" + bytes(text) + b"]")
            assert [row["message"] for row in rows] == expected[chunk.start : chunk.stop]


def test_messages_read_texts_the_image_findings_already_have() -> None:
    image = sample(5)
    image.rows = image.rows[::-1].copy()
    image._texts = [f"text {i}" for i in range(5)]  # rendered before by another reader
    shared = AllRows(image)
    assert shared.texts() is image._texts
    rows = orjson.loads(b"[" + bytes(ImageRowsJson(image, 1, 4, shared).items_json(1)) + b"]")  # type: ignore[arg-type]
    assert [row["message"] for row in rows] == ["text 1", "text 2", "text 3"]


def test_a_message_that_fails_to_render_raises_as_the_image_findings_texts_do() -> None:
    image = sample(5)
    image.rows = image.rows[::-1].copy()
    image.message[1] = Message("%(missing)s and %(other)d", {"other": "x"})
    image.message[3] = Message("%(gone)s", {"x": 1})
    with pytest.raises(Exception) as before:
        english_texts(image.message, image.creation_order())
    with pytest.raises(type(before.value), match=str(before.value)):
        AllRows(image).texts()
    assert image._texts is None
