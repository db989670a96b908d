"""The scan document's findings as chunks of a JSON list (:func:`findings_text_chunks`).

The image findings write their own text (:mod:`hygiene.findingjson`), a chunk of rows
at a time, and the others are ``to_json()`` rows (:func:`finding_json`).

The document is written in small pieces (1,000 findings, about 1.1 MiB of text: larger
pieces kept the kernel busy longer, docs/benchmarks.md "Round 5"), but making a chunk's
text costs a few dozen Arrow and numpy calls whatever its size: at a million images,
about 900 chunks spent more time in those calls than in their rows. So each value's
text is made for a batch of several chunks at once (:class:`TextBatch`,
:data:`BATCH_ROWS` rows), and each chunk's rows are joined from their slices of it: the
same bytes, in pieces of the same size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hygiene.findingjson import ImageRowsJson, image_rows_slots, image_rows_text, slots_text
from hygiene.findingtable import ImageFindings
from hygiene.findingtext import AllRows
from hygiene.model import Finding

# image findings written at a time: ~5.5 MiB of text (the text of a chunk, and its
# columns', are held until it is written)
TEXT_CHUNK = 5_000
# image findings whose values' text is made at once (then joined chunk by chunk)
BATCH_ROWS = 16_000


class TextBatch:
    """The values' text of image findings ``start:stop`` (:func:`image_rows_slots`),
    made on the first request, of which each chunk within them joins its rows
    (:meth:`items_json`). When it declines (a row with details of its rule among them,
    a value the template does not lay out), or a chunk asks with other arguments, the
    chunk's rows are made on their own (:func:`image_rows_text`), as a chunk without a
    batch would be."""

    def __init__(self, image: ImageFindings, start: int, stop: int, shared: AllRows | None) -> None:
        self.image, self.start, self.stop, self.shared = image, start, stop, shared
        self._key: tuple[int, int, Any] | None = None
        self._slots: list[Any] | None = None

    def items_json(
        self, start: int, stop: int, level: int, option: int, default: Any
    ) -> bytes | memoryview | None:
        """Rows ``start:stop`` (within the batch) as :func:`image_rows_text` gives them."""
        key = (level, option, default)
        if self._key is None:
            self._key = key
            self._slots = image_rows_slots(
                self.image, self.start, self.stop, level, option, default, shared=self.shared
            )
        if self._slots is not None and self._key == key and self.start <= start < stop <= self.stop:
            text = slots_text(self._slots, start - self.start, stop - self.start)
            if text is not None:
                return text
        return image_rows_text(self.image, start, stop, level, option, default, shared=self.shared)


@dataclass
class BatchedRowsJson(ImageRowsJson):
    """An :class:`ImageRowsJson` whose text is joined from its batch's values."""

    batch: TextBatch | None = None

    def items_json(
        self, level: int, option: int = 0, default: Any = None
    ) -> bytes | memoryview | None:
        if self.batch is None:
            return super().items_json(level, option, default)
        return self.batch.items_json(self.start, self.stop, level, option, default)


def findings_text_chunks(findings: Any, size: int, batch_rows: int | None = None) -> Iterator[Any]:
    """The engine's findings (a :class:`~hygiene.findingtable.Findings`) as chunks of a
    JSON list (:func:`hygiene.jsonout.list_items`): the image findings write their own
    text, ``size`` at a time (at most :data:`TEXT_CHUNK`), their values made
    ``batch_rows`` at a time (a whole number of chunks; :data:`BATCH_ROWS` by default);
    the others are ``to_json()`` rows."""
    image = findings.image
    if image is not None:
        step = min(size, TEXT_CHUNK)
        span = max((batch_rows or BATCH_ROWS) // step, 1) * step
        shared = AllRows(image)
        for begin in range(0, len(image), span):
            end = min(begin + span, len(image))
            batch = TextBatch(image, begin, end, shared)
            for start in range(begin, end, step):
                yield BatchedRowsJson(image, start, min(start + step, end), shared, batch)
            del batch  # its values, once its last chunk is written
        del shared  # its columns: ~240 MiB at a million images
    for start in range(0, len(findings.other), size):
        yield [finding_json(f) for f in findings.other[start : start + size]]


_TEXT_FIELDS = (
    "code", "rule", "account", "region", "repository", "namespace", "message", "fix",
    "image_digest", "message_template",
)  # fmt: skip
_TEXT_KINDS = frozenset({str, type(None)})
_SCALAR_KINDS = frozenset({str, int, float, bool, type(None)})


def finding_json(finding: Finding) -> dict[str, Any]:
    """``finding.to_json()``, only to be encoded: a :class:`Finding` whose values are
    JSON already (text, numbers, and dicts with text keys, lists and tuples of them) is
    laid out without ``dataclasses.asdict``, whose deep copy took ~20 µs a finding and
    changes nothing orjson writes for such values; the details and parameters are the
    finding's own. Any other value (a dataclass, which ``asdict`` turns into a dict)
    goes through ``to_json``."""
    if not (
        type(finding) is Finding
        and all(type(getattr(finding, name)) in _TEXT_KINDS for name in _TEXT_FIELDS)
        and type(finding.bytes) is int
        and type(finding.tags) in (tuple, list)
        and _json_plain(finding.details)
        and _json_plain(finding.message_params)
    ):
        return finding.to_json()
    return {
        "code": finding.code,
        "rule": finding.rule,
        "severity": finding.severity.value,
        "account": finding.account,
        "region": finding.region,
        "repository": finding.repository,
        "namespace": finding.namespace,
        "message": finding.message,
        "fix": finding.fix,
        "fix_safety": finding.fix_safety.value,
        "image_digest": finding.image_digest,
        "tags": list(finding.tags),
        "bytes": finding.bytes,
        "details": finding.details,
        "message_template": finding.message_template,
        "message_params": finding.message_params,
    }


def _json_plain(value: Any) -> bool:
    """``value`` is a dict (text keys), list or tuple of JSON scalars and such, all of
    exact built-in types (what a deep copy leaves as orjson writes it)."""
    kind = type(value)
    if kind in _SCALAR_KINDS:
        return True
    if kind is dict:
        return all(type(k) is str for k in value) and all(map(_json_plain, value.values()))
    if kind is list or kind is tuple:
        return all(map(_json_plain, value))
    return False
