"""The short form of a report that chat channels post (Slack, Teams, Mattermost, Google
Chat): title, key figures, top findings and the actions, in the report's language.

Channels turn a :class:`ChatSummary` into their own payload; what it says is decided
once, here, from :attr:`RenderedReport.summary` (numbers already formatted for the
report's locale, actions already translated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hygiene.report.i18n import translations

if TYPE_CHECKING:
    from hygiene.report.render import RenderedReport

TOP_FINDINGS = 5
TOP_ACTIONS = 5


@dataclass(frozen=True)
class Action:
    text: str
    command: str | None = None


@dataclass(frozen=True)
class ChatSummary:
    title: str
    facts: list[tuple[str, str]]
    top_title: str
    top: list[tuple[str, str, int]]  # (code, rule, count)
    actions_title: str
    actions: list[Action] = field(default_factory=list)
    more_actions: int = 0
    warning: str | None = None
    footer: str = ""
    fallback: str = ""


def chat_summary(report: RenderedReport, *, file_attached: bool = False) -> ChatSummary:
    """What a chat message says about ``report`` (``file_attached``: the HTML report
    goes with the message, as Slack's upload does)."""
    _ = translations(report.locale).gettext
    summary = report.summary
    if "totals" not in summary:  # not a report but a message (a run alert): its text
        return ChatSummary(
            title=report.subject,
            facts=[],
            top_title="",
            top=[],
            actions_title="",
            footer=report.text[:2000],
            fallback=report.subject,
        )
    totals = summary["totals"]
    display = summary["display"]
    facts = [
        (_("Repositories"), display.get("repositories", str(totals["repositories"]))),
        (_("Images"), display.get("images", str(totals["images"]))),
        (_("Storage"), f"{display['size']} ({display['cost']})"),
        (_("Findings"), display.get("findings", str(summary["findings"]))),
        (_("Reclaimable"), f"{display['reclaimable']} ({display['reclaimable_cost']})"),
        (_("Proposals awaiting approval"), display.get("waiting", str(summary["waiting"]))),
    ]
    actions = [Action(a["text"], a.get("command")) for a in summary.get("actions", [])]
    path = report.files.get("html")
    if file_attached:
        footer = _("The full report is in the attached HTML file.")
    elif path is not None:
        footer = _("The full report is on the report host at %(path)s.") % {"path": str(path)}
    else:
        footer = ""
    findings = _("Findings")
    return ChatSummary(
        title=report.subject,
        facts=facts,
        top_title=_("Top findings"),
        top=[(g["code"], g["rule"], int(g["count"])) for g in summary.get("by_rule", [])][
            :TOP_FINDINGS
        ],
        actions_title=_("What to do"),
        actions=actions[:TOP_ACTIONS],
        more_actions=max(0, len(actions) - TOP_ACTIONS),
        warning=None if summary.get("complete", True) else _("This scan is incomplete."),
        footer=footer,
        fallback=f"{report.subject}: {summary['findings']} {findings.lower()}",
    )


def more_actions_text(summary: ChatSummary, locale: str) -> str:
    ngettext = translations(locale).ngettext
    return ngettext(
        "… and %(count)s more action in the report.",
        "… and %(count)s more actions in the report.",
        summary.more_actions,
    ) % {"count": summary.more_actions}
