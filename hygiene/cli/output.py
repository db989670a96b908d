"""Terminal rendering of a scan result with rich: one screen, grouped by namespace and rule."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from hygiene.scan import ScanResult


def human_bytes(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def print_table(result: ScanResult, console: Console | None = None) -> None:
    console = console or Console()
    run = result.inventory.run
    summary = result.inventory.summary()
    status = "[green]complete[/]" if run.complete else f"[red]INCOMPLETE ({len(run.errors)})[/]"
    console.print(
        f"[bold]run[/] {run.id}  {status}  "
        f"[bold]{summary['repositories']}[/] repositories  "
        f"[bold]{summary['images']}[/] images  [bold]{human_bytes(summary['bytes'])}[/]"
    )
    for error in run.errors[:10]:
        where = error.repository or f"region {error.region}"
        console.print(f"  [red]✗[/] {where}: {error.operation}: {error.message}")

    if result.findings:
        table = Table(title="Findings by namespace and rule", show_lines=False)
        for column in ("namespace", "rule", "severity", "count", "reclaimable"):
            table.add_column(
                column, justify="right" if column in ("count", "reclaimable") else "left"
            )
        groups: Counter[tuple[str, str, str]] = Counter()
        reclaim: Counter[tuple[str, str, str]] = Counter()
        for f in result.findings:
            key = (f.namespace or "(none)", f"{f.code} {f.rule}", f.severity.value)
            groups[key] += 1
            reclaim[key] += f.bytes
        for key in sorted(groups):
            table.add_row(*key, str(groups[key]), human_bytes(reclaim[key]) if reclaim[key] else "")
        console.print(table)
    else:
        console.print("no findings")
    if result.kept:
        reasons: Counter[str] = Counter(r.split(":")[0] for k in result.kept for r in k.reasons)
        kept = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
        console.print(f"kept by protections: {len(result.kept)} images ({kept})")
    if result.proposals:
        console.print(f"proposals: {len(result.proposals)} (see `hygiene proposals`)")
    for warning in result.mute_warnings:
        console.print(f"[yellow]mutelist:[/] {warning}")
    calls = run.api_calls
    if calls:
        listed = ", ".join(f"{op} {n}" for op, n in calls.items())
        console.print(f"API calls: {sum(calls.values())} ({listed})")
    if result.snapshot:
        console.print(f"snapshot: {result.snapshot}")
