"""Render reports (HTML + plain text) from the ``reports/`` templates and write them out.

One Jinja2 environment per (templates directory, locale): autoescape on for ``.html``,
the i18n extension with the language's gettext catalog, ``StrictUndefined`` so a typo in
a template fails the tests instead of printing nothing. HTML is made mail-safe by
inlining its CSS with ``css-inline`` (no scripts, no external URLs: the charts are
HTML/CSS bars).
"""

from __future__ import annotations

import csv
import functools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import css_inline
import jinja2
import orjson
import pandas as pd

from hygiene.config import Config
from hygiene.errors import ConfigError
from hygiene.inventory import namespace_of
from hygiene.report.data import ReportData
from hygiene.report.format import Formatter
from hygiene.report.i18n import check_locale, translations
from hygiene.report.views import compliance_scores, nightly_context, weekly_context

# Mail clients drop <style>: inline it, minified, and never fetch anything remote.
INLINER = css_inline.CSSInliner(minify_css=True, load_remote_stylesheets=False)

ReportKind = Literal["nightly", "weekly"]
TEMPLATE_MARKER = "base.html"
# reports/ is where the templates are edited; pyproject.toml installs it as package data.
PACKAGED_TEMPLATES = Path(__file__).resolve().parent / "templates"
CHECKOUT_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "reports"


def templates_dir(config: Config | None = None) -> Path:
    """Where the templates are: ``policy.report.templates_dir`` if set (relative paths
    are taken from the rules directory's parent, i.e. the checkout), else the templates
    installed with the package (``hygiene/report/templates``, built from ``reports/``),
    else ``reports/`` of the checkout the package runs from (an editable install). Never
    the working directory: an installed package renders the same reports from anywhere."""
    candidates: list[Path] = []
    configured = config.policy.report.templates_dir if config else None
    if configured is not None:
        if configured.is_absolute():
            candidates.append(configured)
        else:
            if config is not None and config.policy_path is not None:
                candidates.append(config.policy_path.resolve().parent.parent / configured)
            candidates.append(Path.cwd() / configured)
        for candidate in candidates:
            if (candidate / TEMPLATE_MARKER).is_file():
                return candidate
        raise ConfigError(
            f"report.templates_dir: no {TEMPLATE_MARKER} in {configured} "
            f"(looked in {', '.join(str(c) for c in candidates)})"
        )
    candidates = [PACKAGED_TEMPLATES, CHECKOUT_TEMPLATES]
    for candidate in candidates:
        if (candidate / TEMPLATE_MARKER).is_file():
            return candidate
    raise ConfigError(
        "report templates not found: set report.templates_dir in default.yaml "
        f"(looked in {', '.join(str(c) for c in candidates)})"
    )


@functools.cache
def environment(directory: Path, locale: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml"), default_for_string=True
        ),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    return env


@dataclass
class RenderedReport:
    """One rendered report; ``files`` is filled by :func:`write_report`."""

    kind: ReportKind
    namespace: str | None
    locale: str
    subject: str
    html: str
    text: str
    findings: list[dict[str, Any]] = field(default_factory=list)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)  # compliance per repository
    summary: dict[str, Any] = field(default_factory=dict)  # for Slack blocks
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return "nightly" if self.kind == "nightly" else f"weekly-{safe_name(self.namespace or '')}"


def safe_name(value: str) -> str:
    """A namespace as a file name: only ``[A-Za-z0-9._-]``; never empty, never ``..``."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", value).strip(".") or "_"
    return cleaned


def formatter(config: Config, locale: str, namespace: str | None = None) -> Formatter:
    project = config.projects.projects.get(namespace) if namespace else None
    zone = (project.timezone if project else None) or config.policy.report.timezone
    return Formatter(
        locale=locale,
        timezone=zone,
        usd_per_gib_month=config.policy.prices.storage_usd_per_gb_month,
        currency=config.policy.prices.currency,
    )


def report_locale(config: Config, namespace: str | None, override: str | None) -> str:
    if override:
        return check_locale(override)
    project = config.projects.projects.get(namespace) if namespace else None
    return check_locale(project.language if project else config.policy.report.locale)


def _render(
    kind: ReportKind,
    context: dict[str, Any],
    config: Config,
    locale: str,
    fmt: Formatter,
) -> tuple[str, str]:
    env = environment(templates_dir(config), locale)
    context = {
        **context,
        "fmt": fmt,
        "locale": locale,
        "lang": locale.replace("_", "-"),
        "config": config,
        "run": context["data"].run,
        "generated_at": context["data"].generated_at,
        "max_rows": config.policy.report.max_rows,
    }
    html = env.get_template(f"{kind}.html").render(context)
    text = env.get_template(f"{kind}.txt").render(context)
    html = INLINER.inline(html)
    return html, text


def render_nightly(
    data: ReportData, config: Config, *, locale: str | None = None
) -> RenderedReport:
    """The admins' nightly report of the whole registry."""
    locale = report_locale(config, None, locale)
    fmt = formatter(config, locale)
    context = nightly_context(data, config)
    html, text = _render("nightly", context, config, locale, fmt)
    _ = translations(locale).gettext
    subject = _("Registry hygiene: nightly report of %(date)s") % {
        "date": fmt.date(data.run.get("finished_at") or data.generated_at)
    }
    if not data.complete:
        subject += " " + _("(incomplete scan)")
    summary = {
        "totals": data.totals,
        "usd_month": fmt.usd_month(data.totals["bytes"]),
        "findings": len(data.findings),
        "by_rule": [
            {"code": g["code"], "rule": g["rule"], "count": g["count"], "severity": g["severity"]}
            for g in context["by_rule"]
        ],
        "waiting": len(context["awaiting_approval"]),
        "reclaimable": context["reclaimable"],
        "complete": data.complete,
        "display": _display(fmt, data.totals["bytes"], context["reclaimable"]),
    }
    return RenderedReport(
        kind="nightly",
        namespace=None,
        locale=locale,
        subject=f"{config.policy.notify.subject_prefix} {subject}".strip(),
        html=html,
        text=text,
        findings=list(data.findings),
        proposals=list(data.proposals),
        kept=list(data.kept),
        scores=compliance_scores(data),
        summary=summary,
    )


def render_weekly(
    data: ReportData, config: Config, namespace: str, *, locale: str | None = None
) -> RenderedReport:
    """One project's weekly owner report, in the project's language and time zone."""
    locale = report_locale(config, namespace, locale)
    fmt = formatter(config, locale, namespace)
    context = weekly_context(data, config, namespace)
    html, text = _render("weekly", context, config, locale, fmt)
    proposal_ids = {p["id"] for p in _all(context)}
    _ = translations(locale).gettext
    subject = _("Registry hygiene: weekly report for %(namespace)s") % {"namespace": namespace}
    summary = {
        "namespace": namespace,
        "totals": {
            "repositories": len(context["repositories"]),
            "images": context["images"],
            "bytes": context["bytes"],
        },
        "usd_month": fmt.usd_month(context["bytes"]),
        "findings": context["finding_count"],
        "by_rule": [
            {"code": g["code"], "rule": g["rule"], "count": g["count"], "severity": g["severity"]}
            for g in context["by_rule"]
        ],
        "waiting": len(context["deletions"]) + len(context["other_proposals"]),
        "reclaimable": context["reclaimable"],
        "complete": data.complete,
        "display": _display(fmt, context["bytes"], context["reclaimable"]),
    }
    return RenderedReport(
        kind="weekly",
        namespace=namespace,
        locale=locale,
        subject=f"{config.policy.notify.subject_prefix} {subject}".strip(),
        html=html,
        text=text,
        findings=context_findings(context),
        proposals=[p for p in data.proposals if p["id"] in proposal_ids],
        kept=[k for k in data.kept if namespace_of(k.get("repository", "")) == namespace],
        scores=list(context["scores"]),
        summary=summary,
    )


def _display(fmt: Formatter, size: int, reclaimable: int) -> dict[str, str]:
    """Numbers already formatted for the report's locale (Slack blocks show these)."""
    return {
        "size": fmt.size(size),
        "cost": fmt.cost(size),
        "reclaimable": fmt.size(reclaimable),
        "reclaimable_cost": fmt.cost(reclaimable),
    }


def context_findings(context: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for group in context["by_rule"] for f in group["findings"]]


def _all(context: dict[str, Any]) -> list[dict[str, Any]]:
    return list(context["deletions"]) + list(context["other_proposals"])


# --------------------------------------------------------------------------- writing

FINDING_COLUMNS = [
    "code", "rule", "severity", "namespace", "repository", "image_digest", "tags", "bytes",
    "fix_safety", "message", "fix", "account", "region", "details",
]  # fmt: skip
PROPOSAL_COLUMNS = [
    "id", "state", "action", "namespace", "repository", "fix_safety", "rule_codes", "bytes",
    "summary", "first_seen", "grace_until", "account", "region", "target", "evidence",
]  # fmt: skip
KEPT_COLUMNS = ["repository", "image_digest", "tags", "reasons", "account", "region"]
SCORE_COLUMNS = ["repository", "score", "grade", "codes", "images", "bytes", "scan_error"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    """Plain cell text; lists and dicts as JSON; a leading ``=+-@`` is neutralised so a
    spreadsheet never runs a repository or tag name as a formula."""
    if isinstance(value, list | tuple):
        value = (
            " ".join(str(v) for v in value)
            if all(isinstance(v, str) for v in value)
            else (json.dumps(list(value), ensure_ascii=False, default=str))
        )
    elif isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        value = "'" + value
    return value


def export_frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    records = [{c: _csv_cell(row.get(c)) for c in columns} for row in rows]
    return pd.DataFrame.from_records(records, columns=columns)


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    """``export_frame(rows, columns).to_csv(path)``'s bytes, written with the csv module
    when every column holds only text (or only integers): the same quoting and line ends
    as pandas, in a fraction of the time and, chunk by chunk, of the memory for a first
    scan's ~600,000 findings. Columns that pandas would turn into floats (integers with
    gaps, numbers) go through pandas."""
    kinds = [{type(row.get(c)) for row in rows} for c in columns]
    # text, lists and dicts become text (or stay missing); integers alone stay integers
    if not all(k <= {str, type(None), list, dict} or k == {int} for k in kinds):
        export_frame(rows, columns).to_csv(path, index=False, encoding="utf-8")
        return path
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for start in range(0, len(rows), CSV_CHUNK):
            batch = rows[start : start + CSV_CHUNK]
            cells = [_csv_column([row.get(c) for row in batch]) for c in columns]
            writer.writerows(zip(*cells, strict=True))
    return path


CSV_CHUNK = 20_000


def _csv_column(values: list[Any]) -> list[Any]:
    """``[_csv_cell(v) for v in values]``, with the common columns (all text, all lists
    of text, all dicts) done without asking each cell what it is."""
    kinds = {type(v) for v in values}
    if kinds <= {str, type(None)}:
        return [("'" + v) if v is not None and v.startswith(_FORMULA_START) else v for v in values]
    if kinds == {dict}:  # JSON starts with "{": never a formula
        return [json.dumps(v, ensure_ascii=False, sort_keys=True, default=str) for v in values]
    if kinds == {list} and all(type(x) is str for v in values for x in v):
        return [_csv_cell(" ".join(v)) for v in values]
    return [_csv_cell(v) for v in values]


def _export_json(path: Path, rows: list[dict[str, Any]]) -> Path:
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
    with tmp.open("wb") as out:
        chunks = (rows[i : i + CSV_CHUNK] for i in range(0, len(rows), CSV_CHUNK))
        write_list(out, chunks, option=options, default=str)
        out.write(b"\n")
    tmp.replace(path)
    return path


def write_report(
    report: RenderedReport, out_dir: Path, exports: tuple[str, ...] = ("csv", "json")
) -> RenderedReport:
    """Write ``<name>.html``, ``<name>.txt`` and the findings/proposals exports into
    ``out_dir`` (created). The HTML is written first: whatever happens later (delivery),
    the report is on disk."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = report.name
    files: dict[str, Path] = {}
    files["html"] = _write(out_dir / f"{base}.html", report.html)
    files["text"] = _write(out_dir / f"{base}.txt", report.text)
    for kind, rows, columns in (
        ("findings", report.findings, FINDING_COLUMNS),
        ("proposals", report.proposals, PROPOSAL_COLUMNS),
        ("kept", report.kept, KEPT_COLUMNS),
        ("scores", report.scores, SCORE_COLUMNS),
    ):
        if "json" in exports:
            files[f"{kind}_json"] = _export_json(out_dir / f"{base}-{kind}.json", rows)
        if "csv" in exports:
            files[f"{kind}_csv"] = write_csv(out_dir / f"{base}-{kind}.csv", rows, columns)
    report.files = files
    return report


def _write(path: Path, text: str) -> Path:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def report_dir(config: Config, data: ReportData, out_dir: Path | None = None) -> Path:
    """``<out_dir>/<YYYY-MM-DD>_<run id>/``: one folder per run, dated in UTC."""
    base = out_dir or config.policy.report.out_dir
    moment = data.generated_at.astimezone(UTC)
    run_id = safe_name(str(data.run.get("id") or "run"))
    return base / f"{moment:%Y-%m-%d}_{run_id}"


def generate(
    data: ReportData,
    config: Config,
    kind: ReportKind,
    *,
    namespaces: list[str] | None = None,
    out_dir: Path | None = None,
    locale: str | None = None,
) -> list[RenderedReport]:
    """Render and write the nightly report, or the weekly report of each namespace
    (default: every registered project). Returns the written reports."""
    directory = report_dir(config, data, out_dir)
    exports = tuple(config.policy.report.exports)
    if kind == "nightly":
        return [write_report(render_nightly(data, config, locale=locale), directory, exports)]
    targets = namespaces if namespaces is not None else config.namespaces
    unknown = [
        ns for ns in targets if ns not in config.projects.projects and ns not in data.namespaces()
    ]
    if unknown:
        raise ConfigError(f"--namespace: unknown namespace {', '.join(map(repr, unknown))}")
    return [
        write_report(render_weekly(data, config, ns, locale=locale), directory, exports)
        for ns in targets
    ]


def now_utc() -> datetime:
    return datetime.now(UTC)
