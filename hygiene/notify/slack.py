"""Slack delivery with slack-sdk: a Block Kit summary plus the HTML report as a file.

With a bot token (``WebClient``) the summary goes to the project's channel, or to each
owner by DM (``users.lookupByEmail`` + ``conversations.open``), and the HTML is uploaded
with ``files_upload_v2``; HTTP 429 answers are retried after their ``Retry-After`` by
slack-sdk's ``RateLimitErrorRetryHandler``. Without a token, an incoming webhook
(``WebhookClient``) posts the summary only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from hygiene.config import SlackSettings
from hygiene.errors import ConfigError
from hygiene.notify.email import DeliveryError
from hygiene.report.i18n import translations
from hygiene.report.render import RenderedReport

TOP_FINDINGS = 5
SECTION_LIMIT = 3000  # characters of a Block Kit section's text


def mrkdwn_escape(text: Any) -> str:
    """Slack's three control characters; everything else is shown as written."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_blocks(report: RenderedReport) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, Block Kit blocks) summarising ``report`` in its language."""
    _ = translations(report.locale).gettext
    summary = report.summary
    header = {"type": "header", "text": {"type": "plain_text", "text": report.subject[:150]}}
    if not summary:  # an alert (hygiene.notify.alert): its text is the whole message
        body = mrkdwn_escape(report.text)[:SECTION_LIMIT]
        return report.subject, [
            header,
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
        ]
    totals = summary["totals"]
    display = summary["display"]
    fields = [
        (_("Repositories"), str(totals["repositories"])),
        (_("Images"), str(totals["images"])),
        (_("Storage"), f"{display['size']} ({display['cost']})"),
        (_("Findings"), str(summary["findings"])),
        (_("Reclaimable"), f"{display['reclaimable']} ({display['reclaimable_cost']})"),
        (_("Proposals awaiting approval"), str(summary["waiting"])),
    ]
    blocks: list[dict[str, Any]] = [
        header,
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{mrkdwn_escape(label)}*\n{mrkdwn_escape(value)}"}
                for label, value in fields
            ],
        },
    ]
    if not summary.get("complete", True):
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": ":warning: " + mrkdwn_escape(_("This scan is incomplete.")),
                    }
                ],
            }
        )
    top = summary.get("by_rule", [])[:TOP_FINDINGS]
    if top:
        lines = [
            f"• `{mrkdwn_escape(g['code'])}` {mrkdwn_escape(g['rule'])}: {g['count']}" for g in top
        ]
        title = mrkdwn_escape(_("Top findings"))
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{title}*\n" + "\n".join(lines),
                },
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": mrkdwn_escape(_("The full report is in the attached HTML file.")),
                }
            ],
        }
    )
    findings = _("Findings")
    text = f"{report.subject}: {summary['findings']} {findings.lower()}"
    return text, blocks


class SlackNotifier:
    """Posts reports to Slack. Pass a ``WebClient`` (bot token) or a ``WebhookClient``."""

    def __init__(
        self,
        client: WebClient | None = None,
        webhook: WebhookClient | None = None,
        *,
        upload_html: bool = True,
    ) -> None:
        if client is None and webhook is None:
            raise ConfigError("notify.slack: neither a bot token nor a webhook URL is set")
        self.client = client
        self.webhook = webhook
        self.upload_html = upload_html

    @classmethod
    def from_settings(
        cls,
        settings: SlackSettings,
        environ: Mapping[str, str] | None = None,
        *,
        max_rate_limit_retries: int = 3,
    ) -> SlackNotifier:
        env = os.environ if environ is None else environ
        token = env.get(settings.token_env, "")
        handler = RateLimitErrorRetryHandler(max_retry_count=max_rate_limit_retries)
        if token:
            kwargs: dict[str, Any] = {"token": token}
            if settings.base_url:
                kwargs["base_url"] = settings.base_url
            client = WebClient(**kwargs)
            client.retry_handlers.append(handler)
            return cls(client, upload_html=settings.upload_html)
        url = env.get(settings.webhook_url_env, "")
        if url:
            webhook = WebhookClient(url)
            webhook.retry_handlers.append(handler)
            return cls(webhook=webhook)
        raise ConfigError(
            f"notify.slack: set ${settings.token_env} (bot token) or "
            f"${settings.webhook_url_env} (incoming webhook)"
        )

    @property
    def mode(self) -> str:
        return "slack" if self.client is not None else "slack-webhook"

    def dm_channel(self, email: str) -> str:
        """The DM channel id with the Slack user registered under ``email``."""
        assert self.client is not None
        user = self.client.users_lookupByEmail(email=email)["user"]["id"]
        return str(self.client.conversations_open(users=user)["channel"]["id"])

    def send(
        self, report: RenderedReport, *, channel: str | None = None, email: str | None = None
    ) -> str:
        """Post the summary (and upload the HTML); returns the channel it went to."""
        text, blocks = slack_blocks(report)
        if self.client is None:
            assert self.webhook is not None
            response = self.webhook.send(text=text, blocks=blocks)
            if response.status_code != 200:
                raise DeliveryError(
                    f"Slack webhook answered {response.status_code}: {response.body}"
                )
            return "webhook"
        if channel is None:
            if email is None:
                raise ConfigError(f"{report.name}: no Slack channel and no owner e-mail")
            channel = self.dm_channel(email)
        posted = self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        channel_id = str(posted["channel"])
        html = report.files.get("html")
        if self.upload_html and html is not None:
            self.client.files_upload_v2(
                channel=channel_id,
                file=str(html),
                filename=html.name,
                title=report.subject,
                thread_ts=posted.get("ts"),
            )
        return channel_id
