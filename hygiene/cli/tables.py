"""The tables and listings of the admin's commands (``hygiene proposals``, ``audit``,
``runs``): a table as wide as the terminal, and a proposal as a row of the listing and
of its CSV.

What a listing shows beside a proposal's id (summary, rule codes, size, safety) is what
its fingerprinted content says (:mod:`hygiene.proposaltext`), and a stored column that
differs is named on stderr (:func:`warn_altered`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

if TYPE_CHECKING:
    from hygiene.store import StoredProposal


def when(value: datetime | None, zone: ZoneInfo | None = None) -> str:
    return value.astimezone(zone or UTC).strftime("%Y-%m-%d %H:%M") if value else "-"


ROW_FIELDS = [
    "id",
    "state",
    "fix_safety",
    "action",
    "namespace",
    "account",
    "region",
    "repository",
    "rule_codes",
    "bytes",
    "first_seen",
    "grace_until",
    "decided_by",
    "summary",
]


def proposal_row(stored: StoredProposal) -> dict[str, Any]:
    p = stored.proposal
    return {
        "id": p.id,
        "state": p.state.value,
        "fix_safety": stored.safety.value,
        "action": p.action.value,
        "namespace": p.namespace or "",
        "account": p.account,
        "region": p.region,
        "repository": p.repository,
        "rule_codes": " ".join(p.rule_codes),
        "bytes": p.bytes,
        "first_seen": p.first_seen.isoformat() if p.first_seen else "",
        "grace_until": p.grace_until.isoformat() if p.grace_until else "",
        "decided_by": stored.decided_by or "",
        "summary": p.summary,
    }


def warn_altered(stored: StoredProposal) -> None:
    """On stderr: the proposal's shown summary/rule codes/bytes/fix safety are derived, not
    stored."""
    if stored.altered:
        from hygiene.proposaltext import altered_warning

        safety = (stored.proposal.fix_safety.value, stored.safety.value)
        click.echo(altered_warning(stored.id, stored.altered, safety), err=True)


# Widest a cell needs to be before it wraps, for choosing which columns fit.
CELL_CAP = 32
SHORT_CELL = 16  # columns whose values are all this short keep them on one line
PIPE_WIDTH = 200  # tables written to a file or a pipe (no terminal to fit)


def fitting_columns(
    rows: list[dict[str, Any]], columns: list[tuple[str, str]], optional: list[str], width: int
) -> list[tuple[str, str]]:
    """``columns`` minus the ``optional`` ones (dropped in that order) the terminal has no
    room for; what stays wraps within its cells."""

    def needed(chosen: list[tuple[str, str]]) -> int:
        widths = [
            min(CELL_CAP, max([min(len(header), 12)] + [len(str(r[key])) for r in rows]))
            for key, header in chosen
        ]
        return sum(widths) + 3 * len(chosen) + 1  # borders and padding

    chosen = list(columns)
    for key in optional:
        if needed(chosen) <= width:
            break
        chosen = [c for c in chosen if c[0] != key]
    return chosen


def print_table(
    rows: list[dict[str, Any]],
    columns: list[tuple[str, str]],
    title: str,
    optional: Sequence[str] = (),
) -> None:
    """A table as wide as the terminal (``$COLUMNS`` when set): optional columns are left
    out when they do not fit, and long cells wrap (ids and digests fold). Written to a
    file or a pipe, it is :data:`PIPE_WIDTH` wide: nothing to wrap for."""
    import os
    import sys

    from rich.table import Table

    from hygiene.cli.terminal import SafeConsole

    sized = sys.stdout.isatty() or bool(os.environ.get("COLUMNS"))
    console = SafeConsole(width=None if sized else PIPE_WIDTH)
    shown = fitting_columns(rows, columns, list(optional), console.width)
    table = Table(title=title, title_justify="left", show_lines=False)
    for key, header in shown:
        longest = max((len(str(r[key])) for r in rows), default=0)
        short = key == "id" or longest <= SHORT_CELL  # ids, states, sizes, dates: never split
        # a long header may wrap over two lines; the values of short columns never do
        table.add_column(header, overflow="fold", min_width=longest if short else None)
    for row in rows:
        table.add_row(*(str(row[key]) for key, _ in shown))
    console.print(table)
    left_out = [header for key, header in columns if (key, header) not in shown]
    if left_out:
        console.print(f"({', '.join(left_out)}: widen the terminal or use --format csv/json)")


def csv_text(rows: Sequence[dict[str, Any]], fieldnames: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fieldnames)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def print_proposals(found: list[StoredProposal], fmt: str, where: str) -> None:
    """``hygiene proposals``' output: JSON, CSV or a table (of the store at ``where``)."""
    from hygiene.units import human_bytes

    for stored in found:
        warn_altered(stored)
    if fmt == "json":
        click.echo(json.dumps([s.to_json() for s in found], indent=2))
        return
    if fmt == "csv":
        click.echo(csv_text([proposal_row(s) for s in found], ROW_FIELDS), nl=False)
        return
    rows = [
        {
            **proposal_row(s),
            "size": human_bytes(s.proposal.bytes),
            "first": when(s.proposal.first_seen),
            "grace": when(s.proposal.grace_until),
        }
        for s in found
    ]
    columns = [
        ("id", "id"),
        ("state", "state"),
        ("fix_safety", "safety"),
        ("action", "action"),
    ]
    if len({(r["account"], r["region"]) for r in rows}) > 1:  # several registries
        columns.append(("where", "account/region"))
        for row in rows:
            row["where"] = f"{row['account']}/{row['region']}"
    columns += [
        ("repository", "repository"),
        ("rule_codes", "rules"),
        ("size", "size"),
        ("grace", "grace until (UTC)"),
        ("summary", "summary"),
    ]
    print_table(
        rows,
        columns,
        f"{len(rows)} proposal(s) in {where}",
        optional=["summary", "fix_safety", "rule_codes", "action"],
    )
