"""Render reports (HTML + plain text) from the ``reports/`` templates and write them out.

One Jinja2 environment per (templates directory, language): autoescape on for ``.html``,
the i18n extension with the language's gettext catalog, ``StrictUndefined`` so a typo in
a template fails the tests instead of printing nothing. HTML is made mail-safe by
inlining its CSS with ``css-inline`` (no scripts, no external URLs: the charts are
HTML/CSS bars); only the ``@media`` rules of the phone layout stay in a ``<style>``
block, for the clients that read it.

Each report is rendered twice: in full (``<name>.html``, ``<name>.txt``: every table up to
``report.max_rows`` rows) and as the mail variant (summary, actions, the first rows of
each table), which stays under :data:`MAIL_BUDGET_BYTES` whatever the registry's size.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import css_inline
import jinja2

from hygiene.config import Config
from hygiene.errors import ConfigError
from hygiene.inventory import namespace_of
from hygiene.messages import render_message
from hygiene.report.actions import REJECT_COMMAND, images_by_proposal
from hygiene.report.contexts import namespace_proposals, nightly_context, weekly_context
from hygiene.report.data import ReportData
from hygiene.report.exports import export_proposals, write_exports
from hygiene.report.format import Formatter
from hygiene.report.i18n import check_locale, translations
from hygiene.report.imageexport import export_images
from hygiene.report.views import MAIL_LIMITS, Limits, compliance_scores, full_limits

# Mail clients drop <style>: inline it, minified, and never fetch anything remote. The
# @media rules (the phone layout) cannot be inlined: they stay in a <style> block.
INLINER = css_inline.CSSInliner(minify_css=True, load_remote_stylesheets=False, keep_at_rules=True)

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


@dataclass(frozen=True)
class Language:
    """The translation functions a report renders with (the catalog of ``locale``)."""

    locale: str
    gettext: Callable[[str], str]
    ngettext: Callable[[str, str, int], str]


def language(locale: str) -> Language:
    catalog = translations(locale)
    return Language(locale, catalog.gettext, catalog.ngettext)


def _ljust(value: Any, width: int) -> str:
    return str(value).ljust(width)


def _rjust(value: Any, width: int) -> str:
    return str(value).rjust(width)


# Applied to every ``{{ … }}`` output; tests replace it to see where text comes from.
FINALIZE: Callable[[Any], Any] | None = None


@functools.cache
def environment(
    directory: Path, lang: Language, finalize: Callable[[Any], Any] | None = None
) -> jinja2.Environment:
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
        finalize=finalize,
    )
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(lang.gettext, lang.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["ljust"] = _ljust
    env.filters["rjust"] = _rjust
    return env


@dataclass
class RenderedReport:
    """One rendered report; ``files`` is filled by :func:`write_report`.

    ``html`` and ``text`` are the full report (written to disk); ``mail_html`` and
    ``mail_text`` the mail variant: summary, actions and the first rows of each table,
    always under :data:`MAIL_BUDGET_BYTES`. :meth:`mail` renders the mail variant again
    naming the files that go with it.
    """

    kind: ReportKind
    namespace: str | None
    locale: str
    subject: str
    html: str
    text: str
    mail_html: str = ""
    mail_text: str = ""
    findings: Sequence[Mapping[str, Any]] = field(default_factory=list)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)  # images the proposals delete
    kept: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)  # compliance per repository
    summary: dict[str, Any] = field(default_factory=dict)  # for chat channels
    files: dict[str, Path] = field(default_factory=dict)
    renderer: _Renderer | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return report_name(self.kind, self.namespace)

    def mail(self, attached: Sequence[str] = ()) -> tuple[str, str]:
        """(HTML, text) of the mail variant that says ``attached`` files go with it."""
        if self.renderer is None:
            return self.mail_html or self.html, self.mail_text or self.text
        return self.renderer.mail(list(attached))


def report_name(kind: str, namespace: str | None) -> str:
    return "nightly" if kind == "nightly" else f"weekly-{safe_name(namespace or '')}"


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


# Gmail clips a message whose HTML is over about 102 KiB, hiding its end; the mailed HTML
# stays under this (rows are halved until it does).
MAIL_BUDGET_BYTES = 95_000
EXPORT_KINDS = ("images", "findings", "proposals", "kept", "scores")


def csv_names(name: str) -> dict[str, str]:
    return {kind: f"{name}-{kind}.csv" for kind in EXPORT_KINDS}


@dataclass
class _Renderer:
    """Renders one report's templates with one context, in full or as the mail variant."""

    kind: ReportKind
    name: str
    context: dict[str, Any]
    config: Config
    lang: Language
    fmt: Formatter
    report_path: str | None

    def render(
        self, limits: Limits, *, mail: bool, attached: Sequence[str] | None
    ) -> tuple[str, str]:
        env = environment(templates_dir(self.config), self.lang, FINALIZE)
        lang, fmt = self.lang, self.fmt
        context = {
            **self.context,
            "fmt": fmt,
            "msg": lambda value: render_message(value, lang.gettext, fmt.number),
            "locale": lang.locale,
            "lang": lang.locale.replace("_", "-"),
            "config": self.config,
            "run": self.context["data"].run,
            "generated_at": self.context["data"].generated_at,
            "limits": limits,
            "mail": mail,
            "attached": list(attached or []),
            "report_path": self.report_path,
            "csv_names": csv_names(self.name),
        }
        html = env.get_template(f"{self.kind}.html").render(context)
        text = env.get_template(f"{self.kind}.txt").render(context)
        return INLINER.inline(html), text

    def full(self) -> tuple[str, str]:
        return self.render(full_limits(self.config), mail=False, attached=None)

    def mail(self, attached: Sequence[str] | None = None) -> tuple[str, str]:
        """The mail variant, rows halved until its HTML fits :data:`MAIL_BUDGET_BYTES`."""
        limits = MAIL_LIMITS
        while True:
            html, text = self.render(limits, mail=True, attached=attached)
            if len(html.encode("utf-8")) <= MAIL_BUDGET_BYTES or limits.minimal:
                return html, text
            limits = limits.halved()


def _report(
    renderer: _Renderer, subject: str, namespace: str | None, **rows: Any
) -> RenderedReport:
    html, text = renderer.full()
    mail_html, mail_text = renderer.mail()
    return RenderedReport(
        kind=renderer.kind,
        namespace=namespace,
        locale=renderer.lang.locale,
        subject=f"{renderer.config.policy.notify.subject_prefix} {subject}".strip(),
        html=html,
        text=text,
        mail_html=mail_html,
        mail_text=mail_text,
        renderer=renderer,
        **rows,
    )


def render_nightly(
    data: ReportData,
    config: Config,
    *,
    locale: str | None = None,
    report_path: Path | None = None,
) -> RenderedReport:
    """The admins' nightly report of the whole registry."""
    locale = report_locale(config, None, locale)
    fmt = formatter(config, locale)
    lang = language(locale)
    rows = images_by_proposal(data.proposals, data.generated_at)
    context = nightly_context(data, config, fmt.timezone, rows)
    renderer = _Renderer("nightly", "nightly", context, config, lang, fmt, _path(report_path))
    _ = lang.gettext
    subject = _("Registry hygiene: nightly report of %(date)s") % {
        "date": fmt.date(data.run.get("finished_at") or data.generated_at)
    }
    if not data.complete:
        subject += " " + _("(incomplete scan)")
    summary = {
        "totals": data.totals,
        "findings": len(data.findings),
        "by_rule": _by_rule(context),
        "waiting": context["awaiting_count"],
        "reclaimable": context["reclaimable"],
        "complete": data.complete,
        "display": _display(
            fmt,
            data.totals,
            len(data.findings),
            context["awaiting_count"],
            data.totals["bytes"],
            context["reclaimable"],
        ),
        "actions": nightly_actions(context, lang, fmt),
    }
    return _report(
        renderer,
        subject,
        None,
        findings=data.findings,  # built chunk by chunk when the exports are written
        proposals=export_proposals(data.proposals, rows),
        images=export_images(data.proposals, rows),
        kept=list(data.kept),
        scores=compliance_scores(data),
        summary=summary,
    )


def render_weekly(
    data: ReportData,
    config: Config,
    namespace: str,
    *,
    locale: str | None = None,
    report_path: Path | None = None,
) -> RenderedReport:
    """One project's weekly owner report, in the project's language and time zone."""
    locale = report_locale(config, namespace, locale)
    fmt = formatter(config, locale, namespace)
    lang = language(locale)
    rows = images_by_proposal(namespace_proposals(data, namespace), data.generated_at)
    context = weekly_context(data, config, namespace, fmt.timezone, rows)
    name = report_name("weekly", namespace)
    renderer = _Renderer("weekly", name, context, config, lang, fmt, _path(report_path))
    _ = lang.gettext
    subject = _("Registry hygiene: weekly report for %(namespace)s") % {"namespace": namespace}
    waiting = len(context["open_proposals"])
    totals = {
        "repositories": len(context["repositories"]),
        "images": context["images"],
        "bytes": context["bytes"],
    }
    summary = {
        "namespace": namespace,
        "totals": totals,
        "findings": context["finding_count"],
        "by_rule": _by_rule(context),
        "waiting": waiting,
        "reclaimable": context["reclaimable"],
        "complete": data.complete,
        "display": _display(
            fmt, totals, context["finding_count"], waiting, context["bytes"], context["reclaimable"]
        ),
        "actions": weekly_actions(context, lang, fmt),
    }
    open_proposals = context["open_proposals"]
    return _report(
        renderer,
        subject,
        namespace,
        findings=[f for group in context["by_rule"] for f in group["findings"]],
        proposals=export_proposals(open_proposals, rows),
        images=export_images(open_proposals, rows),
        kept=[k for k in data.kept if namespace_of(k.get("repository", "")) == namespace],
        scores=list(context["scores"]),
        summary=summary,
    )


def _path(value: Path | None) -> str | None:
    return str(value) if value is not None else None


def _by_rule(context: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"code": g["code"], "rule": g["rule"], "count": g["count"], "severity": g["severity"]}
        for g in context["by_rule"]
    ]


def _display(
    fmt: Formatter, totals: dict[str, int], findings: int, waiting: int, size: int,
    reclaimable: int,
) -> dict[str, str]:  # fmt: skip
    """Numbers already formatted for the report's locale (chat channels show these)."""
    return {
        "repositories": fmt.number(totals["repositories"]),
        "images": fmt.number(totals["images"]),
        "findings": fmt.number(findings),
        "waiting": fmt.number(waiting),
        "size": fmt.size(size),
        "cost": fmt.cost(size),
        "reclaimable": fmt.size(reclaimable),
        "reclaimable_cost": fmt.cost(reclaimable),
    }


def nightly_actions(
    context: dict[str, Any], lang: Language, fmt: Formatter
) -> list[dict[str, Any]]:
    """One line and command per approval group, for chat messages."""
    _, ngettext = lang.gettext, lang.ngettext
    actions = []
    for group in context["approvals"]:
        where = group.namespace or _("(no namespace)")
        text = ngettext(
            "%(where)s, %(rule)s: %(count)s proposal, %(size)s",
            "%(where)s, %(rule)s: %(count)s proposals, %(size)s",
            group.count,
        ) % {"where": where, "rule": group.rule, "count": fmt.number(group.count),
             "size": fmt.size(group.bytes)}  # fmt: skip
        actions.append({"text": text, "command": group.command})
    return actions


def weekly_actions(context: dict[str, Any], lang: Language, fmt: Formatter) -> list[dict[str, Any]]:
    """What the owners may want to do, for chat messages: review each deletion group."""
    _, ngettext = lang.gettext, lang.ngettext
    actions = []
    for group in context["deletions"]:
        text = ngettext(
            "%(rule)s: %(count)s image proposed for deletion (%(size)s)",
            "%(rule)s: %(count)s images proposed for deletion (%(size)s)",
            len(group.images) or group.proposal_count,
        ) % {"rule": f"{group.code} {group.rule}".strip(),
             "count": fmt.number(len(group.images) or group.proposal_count),
             "size": fmt.size(group.bytes)}  # fmt: skip
        if group.earliest:
            text += " " + _("not before %(date)s") % {"date": fmt.date(group.earliest)}
        actions.append({"text": text, "command": None})
    if actions:
        actions.append(
            {
                "text": _("To object to a deletion, with the proposal id from the report:"),
                "command": REJECT_COMMAND,
            }
        )
    return actions


def write_report(
    report: RenderedReport,
    out_dir: Path,
    exports: tuple[str, ...] = ("csv",),
    image_findings: str = "per_repository",
) -> RenderedReport:
    """Write ``<name>.html`` (the full report), ``<name>.txt``, ``<name>.mail.html`` (what
    e-mail carries) and the exports into ``out_dir`` (created). The HTML is written
    first: whatever happens later (delivery), the report is on disk."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = report.name
    files: dict[str, Path] = {}
    files["html"] = _write(out_dir / f"{base}.html", report.html)
    if report.renderer is not None and report.renderer.report_path != str(files["html"]):
        # the mail variant says where the full report is: here
        report.renderer.report_path = str(files["html"])
        report.mail_html, report.mail_text = report.renderer.mail()
    files["text"] = _write(out_dir / f"{base}.txt", report.text)
    files["mail_html"] = _write(out_dir / f"{base}.mail.html", report.mail_html)
    tables = {
        "images": report.images,
        "findings": report.findings,
        "proposals": report.proposals,
        "kept": report.kept,
        "scores": report.scores,
    }
    files.update(write_exports(out_dir, base, tables, exports, image_findings))
    report.files = files
    return report


def _write(path: Path, text: str) -> Path:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


LATEST = "latest"


def report_dir(config: Config, data: ReportData, out_dir: Path | None = None) -> Path:
    """``<out_dir>/<YYYY-MM-DD>_<run id>/``: one folder per run, dated in UTC."""
    base = out_dir or config.policy.report.out_dir
    moment = data.generated_at.astimezone(UTC)
    run_id = safe_name(str(data.run.get("id") or "run"))
    return base / f"{moment:%Y-%m-%d}_{run_id}"


def update_latest(base: Path, reports: Iterable[RenderedReport]) -> Path:
    """Make ``<base>/latest/`` hold the newest files of each report (``nightly.html``,
    ``weekly-ml.html`` …): a stable path to open or link. Files are hard links when the
    file system allows (copies otherwise), each replaced in one rename."""
    latest = base / LATEST
    latest.mkdir(parents=True, exist_ok=True)
    for report in reports:
        wanted = {path.name for path in report.files.values()}
        for old in latest.glob(f"{report.name}[.-]*"):
            if old.name not in wanted and _belongs(old.name, report.name):
                old.unlink()
        for path in report.files.values():
            target = latest / path.name
            tmp = latest / f".{path.name}.tmp"
            tmp.unlink(missing_ok=True)
            try:
                os.link(path, tmp)
            except OSError:
                shutil.copyfile(path, tmp)
            tmp.replace(target)
    return latest


def _belongs(filename: str, name: str) -> bool:
    """Whether ``filename`` is one of report ``name``'s files (``weekly-ml.html`` is not
    one of ``weekly-m``'s)."""
    rest = filename[len(name) :]
    return rest.startswith(".") or any(rest.startswith(f"-{kind}.") for kind in EXPORT_KINDS)


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
    (default: every registered project), and refresh ``latest/``. Returns the written
    reports."""
    directory = report_dir(config, data, out_dir)
    exports = tuple(config.policy.report.exports)
    image_findings = config.policy.report.image_findings_csv
    if kind == "nightly":
        path = directory / "nightly.html"
        reports = [
            write_report(
                render_nightly(data, config, locale=locale, report_path=path),
                directory,
                exports,
                image_findings,
            )
        ]
    else:
        targets = namespaces if namespaces is not None else config.namespaces
        unknown = [
            ns
            for ns in targets
            if ns not in config.projects.projects and ns not in data.namespaces()
        ]
        if unknown:
            raise ConfigError(f"--namespace: unknown namespace {', '.join(map(repr, unknown))}")
        reports = [
            write_report(
                render_weekly(
                    data,
                    config,
                    ns,
                    locale=locale,
                    report_path=directory / f"{report_name('weekly', ns)}.html",
                ),
                directory,
                exports,
                image_findings,
            )
            for ns in targets
        ]
    update_latest(directory.parent, reports)
    return reports


def now_utc() -> datetime:
    return datetime.now(UTC)
