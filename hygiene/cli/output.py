"""Terminal rendering of a scan result with rich: one screen, grouped by namespace and rule."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hygiene.cli.terminal import SafeConsole, styled
from hygiene.scan import ScanResult
from hygiene.units import human_bytes


def print_table(result: ScanResult, console: Console | None = None) -> None:
    console = console or SafeConsole()
    run = result.inventory.run
    summary = result.inventory.summary()
    status = (
        styled("complete", "green")
        if run.complete
        else styled(f"INCOMPLETE ({len(run.errors)})", "red")
    )
    console.print(
        Text.assemble(
            styled("run", "bold"),
            f" {run.id}  ",
            status,
            "  ",
            styled(summary["repositories"], "bold"),
            " repositories  ",
            styled(summary["images"], "bold"),
            " images  ",
            styled(human_bytes(summary["bytes"]), "bold"),
        )
    )
    for error in run.errors[:10]:
        if not error.repository and not error.region:  # an in-use source
            console.print(
                Text.assemble("  ", styled("✗", "red"), f" {error.operation}: {error.message}")
            )
            continue
        where = error.repository or f"region {error.region}"
        console.print(
            Text.assemble("  ", styled("✗", "red"), f" {where}: {error.operation}: {error.message}")
        )
    if run.in_use:
        read = [f"{s.name} {s.references}" for s in run.in_use if s.state == "ok"]
        failed = [s.name for s in run.in_use if s.state == "failed"]
        unread = [s.name for s in run.in_use if s.state == "not-configured"]
        # names come from the configuration: styled() never reads them as markup
        parts: list[Any] = [styled(f"in-use sources read: {', '.join(read) or 'none'}", "")]
        if failed:
            parts += [
                "; ",
                styled(f"failed: {', '.join(failed)} (no image deletion proposed)", "red"),
            ]
        if unread:
            parts.append(styled(f"; not configured: {', '.join(unread)}", ""))
        console.print(Text.assemble(*parts))

    if result.findings:
        console.print(_by_rule(result))
        console.print(_by_namespace(result))
    else:
        console.print("no findings")
    if result.kept:
        reasons: Counter[str] = Counter(r.split(":")[0] for k in result.kept for r in k.reasons)
        kept = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
        console.print(f"kept by protections: {len(result.kept)} images ({kept})")
    if result.proposals:
        console.print(f"proposals: {len(result.proposals)} (see `hygiene proposals`)")
    for warning in result.mute_warnings:
        console.print(Text.assemble(styled("mutelist:", "yellow"), f" {warning}"))
    calls = run.api_calls
    if calls:
        listed = ", ".join(f"{op} {n}" for op, n in calls.items())
        console.print(f"API calls: {sum(calls.values())} ({listed})")
    if result.snapshot:
        console.print(f"snapshot: {result.snapshot}")


def _by_rule(result: ScanResult) -> Table:
    table = Table(title="Findings by rule", title_justify="left")
    for column in ("rule", "severity", "count", "ns", "reclaim"):
        table.add_column(
            column,
            justify="left" if column in ("rule", "severity") else "right",
            no_wrap=column == "rule",
        )
    rows: dict[tuple[str, str, str], list[int]] = {}
    spread: dict[str, set[str]] = {}
    for f in result.findings:
        key = (f.code, f.rule, f.severity.value)
        row = rows.setdefault(key, [0, 0])
        row[0] += 1
        row[1] += f.bytes
        spread.setdefault(f.code, set()).add(f.namespace or "(none)")
    for (code, rule, severity), (count, size) in sorted(rows.items()):
        table.add_row(
            f"{code} {rule}",
            _styled(severity),
            str(count),
            str(len(spread[code])),
            human_bytes(size) if size else "",
        )
    return table


def _by_namespace(result: ScanResult) -> Table:
    table = Table(title="Findings by namespace", title_justify="left")
    for column in ("namespace", "error", "warning", "info", "reclaimable"):
        table.add_column(column, justify="left" if column == "namespace" else "right")
    rows: dict[str, Counter[str]] = {}
    for f in result.findings:
        counter = rows.setdefault(f.namespace or "(none)", Counter())
        counter[f.severity.value] += 1
        counter["bytes"] += f.bytes
    for namespace in sorted(rows):
        c = rows[namespace]
        table.add_row(
            namespace,
            str(c["error"] or ""),
            str(c["warning"] or ""),
            str(c["info"] or ""),
            human_bytes(c["bytes"]) if c["bytes"] else "",
        )
    return table


def _styled(severity: str) -> Text:
    return styled(severity, {"error": "red", "warning": "yellow", "info": "cyan"}[severity])
