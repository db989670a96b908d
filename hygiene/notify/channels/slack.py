"""Slack with slack-sdk: a Block Kit summary, plus the HTML report as a file.

With a bot token (``WebClient``) the summary goes to the project's channel (the nightly
report: ``slack_settings.admin_channel``), or to each owner by DM
(``users.lookupByEmail`` + ``conversations.open``) when the project has none, and the
HTML report is uploaded into the message's thread with ``files_upload_v2``. HTTP 429
answers are retried after their ``Retry-After`` by slack-sdk's
``RateLimitErrorRetryHandler``. Without a token, an incoming webhook (``WebhookClient``)
posts the summary only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from hygiene.errors import ConfigError
from hygiene.notify.channels.base import Audience, Sent, Target
from hygiene.notify.channels.email import DeliveryError
from hygiene.notify.summary import ChatSummary, chat_summary, more_actions_text

if TYPE_CHECKING:
    from hygiene.config import NotifySettings, SlackSettings
    from hygiene.report.render import RenderedReport


def mrkdwn_escape(text: Any) -> str:
    """Slack's three control characters; everything else is shown as written."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_blocks(
    report: RenderedReport, *, file_attached: bool = True
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, Block Kit blocks) summarising ``report`` in its language."""
    summary = chat_summary(report, file_attached=file_attached)
    return summary.fallback, blocks_of(summary, report.locale)


def blocks_of(summary: ChatSummary, locale: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": summary.title[:150]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{mrkdwn_escape(label)}*\n{mrkdwn_escape(value)}"}
                for label, value in summary.facts
            ],
        },
    ]
    if summary.warning:
        blocks.append(_context(":warning: " + mrkdwn_escape(summary.warning)))
    if summary.top:
        lines = [
            f"• `{mrkdwn_escape(code)}` {mrkdwn_escape(rule)}: {count}"
            for code, rule, count in summary.top
        ]
        blocks.append(_section(f"*{mrkdwn_escape(summary.top_title)}*\n" + "\n".join(lines)))
    if summary.actions:
        lines = [
            f"• {mrkdwn_escape(a.text)}"
            + (f"\n  `{mrkdwn_escape(a.command)}`" if a.command else "")
            for a in summary.actions
        ]
        if summary.more_actions:
            lines.append(mrkdwn_escape(more_actions_text(summary, locale)))
        blocks.append(
            _section(f"*{mrkdwn_escape(summary.actions_title)}*\n" + "\n".join(lines)[:2900])
        )
    if summary.footer:
        blocks.append(_context(mrkdwn_escape(summary.footer)))
    return blocks


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


class SlackChannel:
    """``notify.slack: true``. Pass a ``WebClient`` (bot token) or a ``WebhookClient``."""

    name: ClassVar[str] = "slack"

    def __init__(
        self,
        client: WebClient | None = None,
        webhook: WebhookClient | None = None,
        *,
        settings: SlackSettings | None = None,
    ) -> None:
        from hygiene.config import SlackSettings

        if client is None and webhook is None:
            raise ConfigError("notify.slack: neither a bot token nor a webhook URL is set")
        self.client = client
        self.webhook = webhook
        self.settings = settings or SlackSettings()

    @classmethod
    def from_settings(
        cls,
        notify: NotifySettings,
        environ: Mapping[str, str],
        *,
        max_rate_limit_retries: int = 3,
    ) -> SlackChannel | None:
        if not notify.slack:
            return None
        settings = notify.slack_settings
        handler = RateLimitErrorRetryHandler(max_retry_count=max_rate_limit_retries)
        token = environ.get(settings.token_env, "")
        if token:
            kwargs: dict[str, Any] = {"token": token}
            if settings.base_url:
                kwargs["base_url"] = settings.base_url
            client = WebClient(**kwargs)
            client.retry_handlers.append(handler)
            return cls(client, settings=settings)
        url = environ.get(settings.webhook_url_env, "")
        if url:
            webhook = WebhookClient(url)
            webhook.retry_handlers.append(handler)
            return cls(webhook=webhook, settings=settings)
        raise ConfigError(
            f"notify.slack: set ${settings.token_env} (bot token) or "
            f"${settings.webhook_url_env} (incoming webhook)"
        )

    def targets(self, report: RenderedReport, audience: Audience) -> list[Target]:
        if self.client is None:
            return [Target("webhook")]
        if audience.kind == "nightly":
            channel = self.settings.admin_channel
        else:
            channel = audience.project.slack_channel if audience.project else None
        if channel:
            return [Target(str(channel), options={"channel": str(channel)})]
        if not self.settings.dm_owners_without_channel:
            return []
        return [Target(f"dm:{owner}", (owner,), {"email": owner}) for owner in audience.to]

    def dm_channel(self, email: str) -> str:
        """The DM channel id with the Slack user registered under ``email``."""
        assert self.client is not None
        user = self.client.users_lookupByEmail(email=email)["user"]["id"]
        return str(self.client.conversations_open(users=user)["channel"]["id"])

    def send(self, report: RenderedReport, target: Target) -> Sent:
        """Post the summary (and upload the HTML into its thread)."""
        html = report.files.get("html")
        upload = self.client is not None and self.settings.upload_html and html is not None
        text, blocks = slack_blocks(report, file_attached=upload)
        if self.client is None:
            assert self.webhook is not None
            response = self.webhook.send(text=text, blocks=blocks)
            if response.status_code != 200:
                raise DeliveryError(
                    f"Slack webhook answered {response.status_code}: {response.body}"
                )
            return Sent(("slack:webhook",))
        email = target.options.get("email")
        channel = target.options.get("channel") or (self.dm_channel(email) if email else None)
        if channel is None:
            raise ConfigError(f"{report.name}: no Slack channel and no owner e-mail")
        posted = self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        channel_id = str(posted["channel"])
        if upload and html is not None:
            self.client.files_upload_v2(
                channel=channel_id,
                file=str(html),
                filename=html.name,
                title=report.subject,
                thread_ts=posted.get("ts"),
            )
        return Sent((f"slack-dm:{email}",) if email else (f"slack:{channel_id}",))


CHANNEL = SlackChannel
