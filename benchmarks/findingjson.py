"""Image findings' JSON, from dicts and from the columns: ``python -m benchmarks.findingjson``.

On the synthetic registry of :mod:`benchmarks.rules` it evaluates the rules once, then
writes the findings two ways, each ``--repeats`` times, alternately (the garbage collector
paused, as ``hygiene scan`` and the nightly job write), and prints the CPU
and wall seconds of the fastest run of each (and whether both wrote the same bytes):

- ``document``: the ``findings`` of the scan document (``hygiene scan --format json``,
  :func:`hygiene.jsonout.write_document`), from ``ImageFindings.json_rows`` dicts encoded
  by orjson (before) and from the columns (:mod:`hygiene.findingjson`);
- ``export``: the findings JSON export of the report (``report.exports._export_json`` of
  the report's ``FindingRows``), the same two ways.

The messages' English text, which both ways need and render once per process, is made
before the runs and timed on its own (``messages``).

    python -m benchmarks.findingjson                      # 100k images, 3 repeats
    python -m benchmarks.findingjson --images 300000 --repeats 2
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.rules import NOW, bench_config, synthetic_inventory


class _DictRows:
    """The report's findings read only as rows (the export's path before the columns)."""

    def __init__(self, rows: Any) -> None:
        self._rows = rows

    def chunks(self, size: int) -> Iterator[list[dict[str, Any]]]:
        return self._rows.chunks(size)  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return len(self._rows)


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def run_once(n_images: int, n_repositories: int, repeats: int = 3) -> dict[str, Any]:
    from hygiene import jsonout
    from hygiene.gcpause import paused_gc
    from hygiene.report import exports
    from hygiene.report.findingrows import FindingRows
    from hygiene.rules import evaluate

    inventory = synthetic_inventory(n_images, n_repositories)
    findings: Any = evaluate(inventory, bench_config(), NOW).findings  # columnar
    started = time.process_time()
    if findings.image is not None:
        findings.image.texts()
        findings.image._message_columns()
    messages = time.process_time() - started
    rows = FindingRows.of(findings)

    def document(columns: bool) -> Callable[[Path], None]:
        def write(path: Path) -> None:
            chunks = (
                jsonout.findings_chunks(findings, copy=False)
                if columns
                else jsonout.Chunks(findings.json_chunks(jsonout.CHUNK, copy=False))
            )
            with path.open("wb") as out:
                jsonout.write_document(out, [("findings", chunks)])

        return write

    def export(columns: bool) -> Callable[[Path], None]:
        def write(path: Path) -> None:
            exports._export_json(path, rows if columns else _DictRows(rows))  # type: ignore[arg-type]

        return write

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hygiene-findingjson-") as work:
        for name, make in (("document", document), ("export", export)):
            best: dict[str, dict[str, float]] = {}
            written: dict[str, set[str]] = {}
            for _ in range(repeats):
                for way, columns in (("dicts", False), ("columns", True)):
                    path = Path(work) / f"{name}-{way}.json"
                    cpu, wall = time.process_time(), time.perf_counter()
                    with paused_gc():  # as `hygiene scan` and the nightly job write
                        make(columns)(path)
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                    written.setdefault(way, set()).add(_digest(path))
                    mib = path.stat().st_size / 2**20
                    path.unlink()
                    if way not in best or cpu < best[way]["cpu"]:
                        best[way] = {"cpu": round(cpu, 3), "wall": round(wall, 3)}
            figures[name] = {
                **best,
                "mib": round(mib, 1),
                "same_bytes": len(written["dicts"]) == 1 and written["dicts"] == written["columns"],
            }
    return {
        "images": len(inventory.images),
        "findings": len(findings),
        "image_findings": findings.image_count,
        "messages_cpu": round(messages, 3),
        **figures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    result = run_once(args.images, max(1, args.images // 100), args.repeats)
    print(
        f"{result['images']:,} images: {result['findings']:,} findings "
        f"({result['image_findings']:,} image findings); messages rendered once "
        f"{result['messages_cpu']} s CPU"
    )
    print(f"  {'':10} {'dicts CPU s':>12} {'columns CPU s':>14} {'MiB':>8}  same bytes")
    for name in ("document", "export"):
        figures = result[name]
        print(
            f"  {name:10} {figures['dicts']['cpu']:12.3f} {figures['columns']['cpu']:14.3f}"
            f" {figures['mib']:8.1f}  {figures['same_bytes']}"
        )
    return 0 if all(result[name]["same_bytes"] for name in ("document", "export")) else 1


if __name__ == "__main__":
    raise SystemExit(main())
