"""Reports: the nightly admin report and the weekly owner reports, in HTML and text.

Entry points: :func:`build_report_data` (scan JSON + inventory + store history →
:class:`ReportData`), :func:`render_nightly` / :func:`render_weekly` (→
:class:`RenderedReport`), :func:`write_report` / :func:`generate` (files on disk: HTML,
text, CSV and JSON exports). Nothing here talks to AWS, a database or the network.
"""

from hygiene.report.data import (
    ApplyOutcome,
    DeliveryFailure,
    HistoryRun,
    ReportData,
    RepositoryStat,
    build_report_data,
    history_entry,
)
from hygiene.report.render import (
    RenderedReport,
    generate,
    render_nightly,
    render_weekly,
    templates_dir,
    write_report,
)

__all__ = [
    "ApplyOutcome",
    "DeliveryFailure",
    "HistoryRun",
    "RenderedReport",
    "ReportData",
    "RepositoryStat",
    "build_report_data",
    "generate",
    "history_entry",
    "render_nightly",
    "render_weekly",
    "templates_dir",
    "write_report",
]
