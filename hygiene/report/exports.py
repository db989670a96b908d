"""Report exports: the CSV and JSON files next to each report (every finding, proposal,
image, kept image and score), written chunk by chunk so a first scan's ~600,000 findings
need neither a DataFrame of objects nor one JSON string in memory.

Cells are plain text; a value starting with ``=+-@`` is neutralised so that a spreadsheet
never runs a repository or tag name as a formula.
"""

from __future__ import annotations

import itertools
import json
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import orjson
import pandas as pd
import pyarrow as pa

from hygiene.dropbehind import open_for_writing
from hygiene.report.actions import ImageRow, ProposalImages
from hygiene.report.csvout import (
    KNOWN,
    add_kinds,
    as_float,
    column_cells,
    csv_cell,
    formula_safe,
    write_cells,
)
from hygiene.report.imageexport import IMAGE_COLUMNS as IMAGE_COLUMNS
from hygiene.report.imageexport import LazyRows as LazyRows
from hygiene.report.imageexport import column_rows
from hygiene.report.imageexport import export_images as export_images
from hygiene.report.imageexport import image_exports as image_exports
from hygiene.units import human_bytes

FINDING_COLUMNS = [
    "code", "rule", "severity", "namespace", "repository", "image_digest", "tags", "bytes",
    "fix_safety", "message", "fix", "account", "region", "details",
]  # fmt: skip
FINDING_TOTAL_COLUMNS = [*FINDING_COLUMNS[:7], "images", *FINDING_COLUMNS[7:]]
"""The findings CSV's columns when image findings are counted per rule and repository
(:mod:`hygiene.report.findingtotals`): ``images`` after ``tags``."""
IMAGE_FINDINGS_CSV = ("per_repository", "per_image")
PROPOSAL_COLUMNS = [
    "id", "state", "action", "namespace", "repository", "fix_safety", "rule_codes", "images",
    "tags", "bytes", "size", "summary", "first_seen", "grace_until", "account", "region",
    "target", "evidence",
]  # fmt: skip
KEPT_COLUMNS = ["repository", "image_digest", "tags", "reasons", "account", "region"]
SCORE_COLUMNS = ["repository", "score", "grade", "codes", "images", "bytes", "scan_error"]


def export_proposals(
    proposals: Iterable[dict[str, Any]], images_of: Mapping[str, list[ImageRow]]
) -> list[dict[str, Any]]:
    """Proposals as exported: each with its image count, every tag of its images and its
    size in the reports' unit (bytes stay too)."""
    rows = []
    for proposal in proposals:
        key = str(proposal.get("id"))
        if isinstance(images_of, ProposalImages):  # counted from the evidence, no rows made
            count, tags = images_of.count(key), images_of.tags(key)
        else:
            images = images_of.get(key, [])
            count, tags = len(images), sorted({t for row in images for t in row.tags})
        rows.append(
            {
                **proposal,
                "images": count or len((proposal.get("target") or {}).get("digests") or []),
                "tags": tags,
                "size": human_bytes(int(proposal.get("bytes") or 0)),
            }
        )
    return rows


def export_frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    records = [{c: csv_cell(row.get(c)) for c in columns} for row in rows]
    return pd.DataFrame.from_records(records, columns=columns)


COLUMNS = {
    "images": IMAGE_COLUMNS,
    "findings": FINDING_COLUMNS,
    "proposals": PROPOSAL_COLUMNS,
    "kept": KEPT_COLUMNS,
    "scores": SCORE_COLUMNS,
}
PROPOSAL_CHUNK = 100  # proposals per chunk of their exports (each carries its evidence)


# What a proposal's evidence lists image by image: the images (digest, tags, times,
# sizes), the units they are deleted in, and each digest's rule codes (a mapping; a
# repository deletion's ``rule_codes`` is a plain list of codes and stays).
PER_IMAGE_EVIDENCE = ("images", "units")


def evidence_cell(evidence: Any) -> Any:
    """A proposal's evidence as its CSV cell: without what it lists image by image
    (:data:`PER_IMAGE_EVIDENCE` and a ``rule_codes`` mapping by digest). Those images
    are rows of the images export (digest, tags, times, size, rule codes); the cell of
    a thousand images' JSON was unreadable in a spreadsheet and past Excel's
    32,767-character cell limit. The JSON export keeps the whole evidence."""
    if not isinstance(evidence, Mapping):
        return evidence
    return {
        key: value
        for key, value in evidence.items()
        if key not in PER_IMAGE_EVIDENCE
        and not (key == "rule_codes" and isinstance(value, Mapping))
    }


# cells a CSV export writes otherwise than its JSON export, by kind and column
CSV_CELLS: dict[str, dict[str, Callable[[Any], Any]]] = {"proposals": {"evidence": evidence_cell}}


def write_exports(
    out_dir: Path,
    base: str,
    tables: Mapping[str, Sequence[Mapping[str, Any]]],
    exports: tuple[str, ...] = ("csv",),
    image_findings: str = "per_repository",
) -> dict[str, Path]:
    """``<base>-<kind>.csv`` and ``.json`` of each table (``kind`` in :data:`COLUMNS`);
    returns the files by ``<kind>_csv`` / ``<kind>_json``. The proposals' CSV writes
    each evidence without its per-image lists (:func:`evidence_cell`); the findings' CSV
    counts image findings per rule and repository unless ``image_findings`` is
    ``per_image`` (:data:`IMAGE_FINDINGS_CSV`; the JSON keeps one row per finding)."""
    if image_findings not in IMAGE_FINDINGS_CSV:
        raise ValueError(f"image_findings: one of {', '.join(IMAGE_FINDINGS_CSV)}")
    files: dict[str, Path] = {}
    for kind, rows in tables.items():
        json_path = out_dir / f"{base}-{kind}.json"
        csv_path = out_dir / f"{base}-{kind}.csv"
        if "csv" in exports and kind == "findings" and image_findings == "per_repository":
            files[f"{kind}_csv"] = write_finding_totals_csv(csv_path, rows)
        elif "csv" in exports and kind == "findings":  # from the engine's columns
            files[f"{kind}_csv"] = write_findings_csv(csv_path, rows)
        elif "csv" in exports:  # with the JSON in the same pass over the rows
            both = "json" in exports
            # a proposal's evidence lists its images: a few hundred proposals at a time
            files[f"{kind}_csv"] = write_csv(
                csv_path, rows, COLUMNS[kind], json_path=json_path if both else None,
                chunk=PROPOSAL_CHUNK if kind == "proposals" else CSV_CHUNK,
                cells=CSV_CELLS.get(kind),
            )  # fmt: skip
            if both:
                files[f"{kind}_json"] = json_path
        if "json" in exports and f"{kind}_json" not in files:
            files[f"{kind}_json"] = _export_json(json_path, rows)
    return files


def write_csv(
    path: Path,
    rows: Sequence[Mapping[str, Any]],
    columns: list[str],
    *,
    json_path: Path | None = None,
    chunk: int = 20_000,
    cells: Mapping[str, Callable[[Any], Any]] | None = None,
) -> Path:
    """``export_frame(rows, columns).to_csv(path)``'s bytes, written chunk by chunk with
    pyarrow's compute functions (:func:`write_cells`): the same cells (pandas turns a
    column of integers with gaps into floats: ``3.0``), the same quoting and line ends
    as pandas' csv module, in a fraction of the time and memory. Cells of a kind this
    does not know (anything but text, lists, dicts, integers, floats, booleans and
    missing values) go through pandas.

    The rows are read once (rows made when read, such as the images of the deletions,
    are made once): with ``json_path`` the same pass writes :func:`_export_json`. A
    column whose integers turn out to need pandas' float form only after some were
    written (a gap further down) is written again in a second pass.

    ``cells`` maps a column to the function that makes its CSV value from the row's
    (the JSON keeps the row's own)."""
    kinds: list[set[type]] = [set() for _ in columns]
    written_as: list[set[bool]] = [set() for _ in columns]  # float form of written ints

    def write(out: IO[bytes], part: _Part) -> None:
        arrays = []
        for values, kind, used in zip(part.values, kinds, written_as, strict=True):
            if int in add_kinds(kind, values):
                used.add(as_float(kind))
            arrays.append(column_cells(values, kind))
        if all(k <= KNOWN for k in kinds):
            write_cells(out, None, arrays)

    tmp = path.with_suffix(path.suffix + ".tmp")
    with open_for_writing(tmp) as out:
        write_cells(out, columns, None)
        parts = _parts(rows, columns, chunk, cells)
        if json_path is not None:  # the rows of each part (made for it when they are columns)
            _export_json(json_path, _Chunks(_tee(part, write, out).rows for part in parts))
        else:
            for part in parts:
                write(out, part)
    if not all(k <= KNOWN for k in kinds) or not len(columns) > 1:
        frame = export_frame([_csv_row(row, cells) for row in rows], columns)
        frame.to_csv(path, index=False, encoding="utf-8")
        tmp.unlink()
        return path
    if any(used - {as_float(k)} for used, k in zip(written_as, kinds, strict=True)):
        with open_for_writing(tmp) as out:  # the second pass, knowing every column's kinds
            write_cells(out, columns, None)
            for part in _parts(rows, columns, chunk, cells):
                arrays = [column_cells(v, k) for v, k in zip(part.values, kinds, strict=True)]
                write_cells(out, None, arrays)
    tmp.replace(path)
    return path


class _Part:
    """A chunk of an export's rows: its CSV values column by column (``values``), and
    the rows themselves (``rows``, made from the values when the rows come as columns)."""

    def __init__(
        self,
        values: list[list[Any]],
        rows: Sequence[Mapping[str, Any]] | None = None,
        names: list[str] | None = None,
        raw: list[list[Any]] | None = None,
    ) -> None:
        self.values = values
        self._rows = rows
        self._names = names
        self._raw = raw

    @property
    def rows(self) -> Sequence[Mapping[str, Any]]:
        if self._rows is None:
            assert self._names is not None and self._raw is not None
            self._rows = column_rows(self._names, self._raw)
        return self._rows


def _parts(
    rows: Sequence[Mapping[str, Any]],
    columns: list[str],
    size: int,
    cells: Mapping[str, Callable[[Any], Any]] | None,
) -> Iterator[_Part]:
    """The chunks of ``rows`` as :class:`_Part`: straight from the columns of rows made
    as columns (:meth:`LazyRows.column_chunks`), else from each row's values."""
    column_chunks = getattr(rows, "column_chunks", None)
    made = column_chunks(columns, size) if column_chunks is not None else None
    if made is None:
        for part in _row_chunks(rows, size):
            yield _Part(_values(part, columns, cells), part)
        return
    for raw in made:
        yield _Part(_made(list(raw), columns, cells), names=columns, raw=raw)


def _tee(chunk: Any, write: Callable[[IO[bytes], Any], None], out: IO[bytes]) -> Any:
    write(out, chunk)
    return chunk


class _Chunks(Sequence[Mapping[str, Any]]):
    """Chunks already made, as :func:`_row_chunks` reads them (read once)."""

    def __init__(self, chunks: Iterator[Sequence[Mapping[str, Any]]]) -> None:
        self._chunks = chunks

    def chunks(self, size: int) -> Iterator[Sequence[Mapping[str, Any]]]:
        return self._chunks

    def __len__(self) -> int:
        raise TypeError("read once, chunk by chunk")

    def __getitem__(self, index: Any) -> Any:
        raise TypeError("read once, chunk by chunk")


CSV_CHUNK = 5_000


def _row_chunks(
    rows: Sequence[Mapping[str, Any]], size: int = CSV_CHUNK
) -> Iterable[Sequence[Mapping[str, Any]]]:
    chunks = getattr(rows, "chunks", None)
    if chunks is not None:
        return chunks(size)  # type: ignore[no-any-return]
    return (rows[i : i + size] for i in range(0, len(rows), size))


def _cells(
    rows: Sequence[Mapping[str, Any]],
    columns: list[str],
    kinds: Sequence[set[type]],
    cells: Mapping[str, Callable[[Any], Any]] | None = None,
) -> list[Any]:
    """The CSV cells of ``rows``, column by column, each column as its known ``kinds``
    (``cells``: as :func:`write_csv`)."""
    return [
        column_cells(values, kind)
        for values, kind in zip(_values(rows, columns, cells), kinds, strict=True)
    ]


def _values(
    rows: Sequence[Mapping[str, Any]],
    columns: list[str],
    cells: Mapping[str, Callable[[Any], Any]] | None = None,
) -> list[list[Any]]:
    """``[[row.get(c) for row in rows] for c in columns]``; the values of a column in
    ``cells`` made by its function."""
    if not rows or len(columns) < 2:
        values = [[row.get(c) for row in rows] for c in columns]
    else:
        try:  # every row has every column: one C loop
            found = map(operator.itemgetter(*columns), rows)
            values = [list(column) for column in zip(*found, strict=True)]
        except KeyError:
            values = [[row.get(c) for row in rows] for c in columns]
    return _made(values, columns, cells)


def _made(
    values: list[list[Any]], columns: list[str], cells: Mapping[str, Callable[[Any], Any]] | None
) -> list[list[Any]]:
    """``values`` (one list per column) with the columns in ``cells`` made by their
    functions (:func:`write_csv`)."""
    for column, make in (cells or {}).items():
        if column in columns:
            position = columns.index(column)
            made = values[position]
            made = made.to_pylist() if isinstance(made, pa.Array) else made
            values[position] = list(map(make, made))
    return values


def _csv_row(
    row: Mapping[str, Any], cells: Mapping[str, Callable[[Any], Any]] | None
) -> dict[str, Any]:
    """``row`` with the CSV values of the columns in ``cells`` (:func:`write_csv`)."""
    out = dict(row)
    for column, make in (cells or {}).items():
        out[column] = make(row.get(column))
    return out


def _export_json(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """``json.dumps(rows, ensure_ascii=False, indent=2, sort_keys=True, default=str)``
    and a newline, encoded by orjson chunk by chunk (times and dataclasses still go
    through ``str``)."""
    from hygiene.jsonout import write_list

    options = (
        orjson.OPT_SORT_KEYS
        | orjson.OPT_NON_STR_KEYS
        | orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_DATACLASS
    )
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open_for_writing(tmp) as out:
        text_chunks = getattr(rows, "text_chunks", None)  # findings: text from columns
        chunks = text_chunks(CSV_CHUNK) if text_chunks else (list(c) for c in _row_chunks(rows))
        write_list(out, chunks, option=options, default=str)
        out.write(b"\n")
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------- findings


def write_finding_totals_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """The findings CSV with image findings counted per rule and repository
    (:func:`hygiene.report.findingtotals.total_rows`, :data:`FINDING_TOTAL_COLUMNS`)."""
    from hygiene.report.findingtotals import total_rows

    counted = {"images": lambda n: None if n is None else str(n)}  # no float form for gaps
    return write_csv(path, total_rows(rows), FINDING_TOTAL_COLUMNS, cells=counted)


def write_findings_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """:func:`write_csv` of the findings: the same bytes, the image findings' cells made
    from the engine's columns (:class:`~hygiene.report.findingrows.FindingRows`) rather
    than from a dict per finding."""
    from hygiene.report.findingrows import FindingRows

    if not isinstance(rows, FindingRows) or rows.image is None or rows.positions is not None:
        return write_csv(path, rows, FINDING_COLUMNS)
    kinds: list[set[type]] = [set() for _ in FINDING_COLUMNS]
    for kind, values in zip(kinds, _values(rows.other, FINDING_COLUMNS), strict=True):
        add_kinds(kind, values)
    image_kinds: dict[str, set[type]] = {"namespace": {str, type(None)}, "tags": {list},
                                         "bytes": {int}, "details": {dict}}  # fmt: skip
    for column, kind in zip(FINDING_COLUMNS, kinds, strict=True):
        kind |= image_kinds.get(column, {str})
    if not all(k <= KNOWN for k in kinds) or kinds[FINDING_COLUMNS.index("bytes")] != {int}:
        return write_csv(path, rows, FINDING_COLUMNS)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open_for_writing(tmp) as out:
        write_cells(out, FINDING_COLUMNS, None)
        image = rows.image
        for start in range(0, len(image), CSV_CHUNK):
            stop = min(start + CSV_CHUNK, len(image))
            write_cells(out, None, _image_finding_cells(image, start, stop))
        for chunk in _row_chunks(rows.other):
            write_cells(out, None, _cells(chunk, FINDING_COLUMNS, kinds))
    tmp.replace(path)
    return path


_PLAIN_JSON_TEXT = re.compile(r'["\\\x00-\x1f]')


def _image_finding_cells(image: Any, start: int, stop: int) -> list[pa.Array]:
    """The CSV cells of image findings ``start:stop`` (FINDING_COLUMNS), as
    :func:`~hygiene.report.csvout.csv_cell` makes them from ``ImageFindings.json_rows``."""
    from hygiene.findingtable import iso_strings

    rule = pa.array(image.rule[start:stop], type=pa.int64())

    def per_rule(values: list[str]) -> pa.Array:
        return formula_safe(pa.array(values, type=pa.string())).take(rule)

    def text(values: list[Any]) -> pa.Array:
        return formula_safe(pa.array(values, type=pa.string()))

    offsets = image.unit_offsets[start : stop + 1].tolist()
    digests = image.unit_digests
    units = [digests[a:b] for a, b in itertools.pairwise(offsets)]
    pushed = iso_strings(image.pushed_at[start:stop])
    pulled = iso_strings(image.last_pull[start:stop])
    rules = image.rules
    return [
        per_rule([r.code for r in rules]),
        per_rule([r.name for r in rules]),
        per_rule([r.severity.value for r in rules]),
        text(image.namespace[start:stop]),
        text(image.repository[start:stop]),
        text([unit[0] for unit in units]),
        text([_tags_text(tags) for tags in image.tags[start:stop]]),
        pa.array(image.bytes[start:stop], type=pa.int64()).cast(pa.string()),
        per_rule([r.fix_safety.value for r in rules]),
        text(image.texts()[start:stop]),
        per_rule([r.fix for r in rules]),
        text(image.account[start:stop]),
        text(image.region[start:stop]),
        pa.array(
            _details_texts(
                units, pushed, pulled, image.also[start:stop], image.details[start:stop]
            ),
            type=pa.string(),
        ),
    ]


def _tags_text(tags: Any) -> Any:
    try:
        return " ".join(tags)
    except TypeError:  # not all text: the JSON list, as csv_cell writes it
        return csv_cell(list(tags))


def _details_texts(
    units: list[list[str]],
    pushed: list[str | None],
    pulled: list[str | None],
    also: list[Any],
    extra: list[Any],
) -> list[str]:
    """``json.dumps(details, ensure_ascii=False, sort_keys=True)`` of each image
    finding's details (``unit``, ``pushed_at``, ``last_pull``, ``also`` and the rule's
    own), written directly when every string in them needs no escaping."""
    from hygiene.findingtable import _copy_json

    def quoted(value: str | None) -> str:
        return "null" if value is None else f'"{value}"'

    def listed(values: Any) -> str:
        return '["' + '", "'.join(values) + '"]' if values else "[]"

    try:
        strings = "".join(s for unit in units for s in unit)
        strings += "".join(s for codes in also if codes is not None for s in codes)
        plain = not _PLAIN_JSON_TEXT.search(strings)
    except TypeError:  # something that is not text: the standard encoder says how
        plain = False
    out = []
    for unit, pushed_at, last_pull, codes, own in zip(units, pushed, pulled, also, extra,
                                                      strict=True):  # fmt: skip
        if own is not None or not plain:
            details: dict[str, Any] = {"unit": unit, "pushed_at": pushed_at,
                                       "last_pull": last_pull}  # fmt: skip
            if codes is not None:
                details["also"] = list(codes)
            if isinstance(own, dict):
                details.update(_copy_json(own))
            out.append(json.dumps(details, ensure_ascii=False, sort_keys=True, default=str))
            continue
        head = "{" if codes is None else '{"also": ' + listed(codes) + ", "
        out.append(
            f'{head}"last_pull": {quoted(last_pull)}, "pushed_at": {quoted(pushed_at)}, '
            f'"unit": {listed(unit)}}}'
        )
    return out
