"""Generic incoming webhooks: Microsoft Teams, Mattermost and Google Chat.

Each of these chat services gives a channel a URL that accepts a JSON ``POST``; they
differ in the payload:

- ``teams``: a message with one Adaptive Card attachment (``TextBlock`` + ``FactSet``),
  the format of Teams' incoming webhooks and of the Workflows "post to a channel when a
  webhook request is received" flow;
- ``mattermost``: ``{"text": …}`` in Markdown (Mattermost's Slack-compatible webhooks);
- ``google-chat``: ``{"text": …}`` in Google Chat's own formatting (``*bold*``).

Configured under ``notify.channels.webhook`` in ``rules/default.yaml``; the URLs are
secrets, so the settings name the environment variables that hold them::

    notify:
      channels:
        webhook:
          format: teams                  # teams | mattermost | google-chat
          url_env: HYGIENE_WEBHOOK_URL   # the nightly (admin) report
          namespaces:                    # weekly reports: namespace → variable
            ml: HYGIENE_WEBHOOK_ML

A webhook posts the summary only (no file); the message says where the full report is.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hygiene.errors import ConfigError
from hygiene.notify.channels.base import Audience, Sent, Target
from hygiene.notify.channels.email import DeliveryError
from hygiene.notify.summary import ChatSummary, chat_summary, more_actions_text

if TYPE_CHECKING:
    from hygiene.config import NotifySettings
    from hygiene.report.render import RenderedReport

Format = Literal["teams", "mattermost", "google-chat"]
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class WebhookSettings(BaseModel):
    """``notify.channels.webhook``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Format
    url_env: str | None = Field(default="HYGIENE_WEBHOOK_URL", pattern=ENV_NAME)
    namespaces: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=30.0, gt=0, le=300)


def settings_of(notify: NotifySettings) -> WebhookSettings | None:
    """The validated section, or None when it is absent; errors name the key."""
    raw = (notify.channels or {}).get("webhook")
    if raw is None:
        return None
    try:
        settings = WebhookSettings.model_validate(raw)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise ConfigError(f"notify.channels.webhook.{where}: {problem['msg']}") from exc
    bad = [name for name in settings.namespaces.values() if not _is_env_name(name)]
    if bad:
        raise ConfigError(
            f"notify.channels.webhook.namespaces: {bad[0]!r} is not an environment variable name"
        )
    return settings


def _is_env_name(value: str) -> bool:
    import re

    return re.fullmatch(ENV_NAME, value) is not None


# --------------------------------------------------------------------------- payloads


def teams_payload(summary: ChatSummary, locale: str) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": summary.title, "weight": "Bolder", "size": "Medium",
         "wrap": True},
        {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in summary.facts]},
    ]  # fmt: skip
    if summary.warning:
        body.append({"type": "TextBlock", "text": summary.warning, "color": "Warning",
                     "wrap": True})  # fmt: skip
    if summary.top:
        lines = [f"- {code} {rule}: {count}" for code, rule, count in summary.top]
        body.append({"type": "TextBlock", "text": summary.top_title, "weight": "Bolder"})
        body.append({"type": "TextBlock", "text": "\n".join(lines), "wrap": True})
    if summary.actions:
        body.append({"type": "TextBlock", "text": summary.actions_title, "weight": "Bolder"})
        for action in summary.actions:
            body.append({"type": "TextBlock", "text": action.text, "wrap": True})
            if action.command:
                body.append({"type": "TextBlock", "text": action.command,
                             "fontType": "Monospace", "wrap": True})  # fmt: skip
        if summary.more_actions:
            body.append({"type": "TextBlock", "text": more_actions_text(summary, locale),
                         "wrap": True})  # fmt: skip
    if summary.footer:
        body.append({"type": "TextBlock", "text": summary.footer, "isSubtle": True,
                     "wrap": True})  # fmt: skip
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def _text_lines(summary: ChatSummary, locale: str, bold: Callable[[str], str]) -> list[str]:
    lines = [bold(summary.title), ""]
    lines += [f"{bold(label)}: {value}" for label, value in summary.facts]
    if summary.warning:
        lines += ["", "⚠ " + summary.warning]
    if summary.top:
        lines += ["", bold(summary.top_title)]
        lines += [f"• `{code}` {rule}: {count}" for code, rule, count in summary.top]
    if summary.actions:
        lines += ["", bold(summary.actions_title)]
        for action in summary.actions:
            lines.append(f"• {action.text}")
            if action.command:
                lines.append(f"  `{action.command}`")
        if summary.more_actions:
            lines.append(more_actions_text(summary, locale))
    if summary.footer:
        lines += ["", summary.footer]
    return lines


def mattermost_payload(summary: ChatSummary, locale: str) -> dict[str, Any]:
    return {
        "text": "\n".join(_text_lines(summary, locale, lambda s: f"**{s}**")),
        "username": "registry-hygiene",
    }


def google_chat_payload(summary: ChatSummary, locale: str) -> dict[str, Any]:
    return {"text": "\n".join(_text_lines(summary, locale, lambda s: f"*{s}*"))}


PAYLOADS: dict[str, Callable[[ChatSummary, str], dict[str, Any]]] = {
    "teams": teams_payload,
    "mattermost": mattermost_payload,
    "google-chat": google_chat_payload,
}


def payload(report: RenderedReport, fmt: str) -> dict[str, Any]:
    return PAYLOADS[fmt](chat_summary(report), report.locale)


# --------------------------------------------------------------------------- the channel


def post_json(url: str, body: dict[str, Any], timeout: float) -> int:
    """POST ``body`` as JSON; the HTTP status (errors raise, without the URL: it is a secret)."""
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace")
        raise DeliveryError(f"webhook answered HTTP {exc.code}: {detail}") from None
    except urllib.error.URLError as exc:
        raise DeliveryError(f"webhook unreachable: {exc.reason}") from None


class WebhookChannel:
    """``notify.channels.webhook``: the summary posted to a chat incoming webhook."""

    name: ClassVar[str] = "webhook"

    def __init__(
        self,
        settings: WebhookSettings,
        urls: Mapping[str | None, str],
        *,
        post: Callable[[str, dict[str, Any], float], int] = post_json,
    ) -> None:
        self.settings = settings
        self.urls = dict(urls)  # None → the nightly report's URL; namespace → its URL
        self.post = post

    @classmethod
    def check_settings(cls, notify: NotifySettings) -> None:
        """Refuse bad settings when the configuration is loaded (not at the first send)."""
        settings_of(notify)

    @classmethod
    def from_settings(
        cls, notify: NotifySettings, environ: Mapping[str, str]
    ) -> WebhookChannel | None:
        settings = settings_of(notify)
        if settings is None:
            return None
        urls: dict[str | None, str] = {}
        wanted: dict[str | None, str] = {ns: env for ns, env in settings.namespaces.items()}
        if settings.url_env:
            wanted[None] = settings.url_env
        missing = [env for env in wanted.values() if not environ.get(env)]
        if missing:
            raise ConfigError(f"notify.channels.webhook: ${missing[0]} is not set")
        for key, env in wanted.items():
            urls[key] = environ[env]
        return cls(settings, urls)

    def targets(self, report: RenderedReport, audience: Audience) -> list[Target]:
        key = None if audience.kind == "nightly" else audience.namespace
        if key not in self.urls:
            return []
        where = "admins" if key is None else key
        return [Target(f"{self.settings.format}:{where}", options={"key": key})]

    def send(self, report: RenderedReport, target: Target) -> Sent:
        url = self.urls[target.options.get("key")]
        status = self.post(url, payload(report, self.settings.format), self.settings.timeout)
        if not 200 <= status < 300:
            raise DeliveryError(f"webhook answered HTTP {status}")
        return Sent((f"webhook:{target.address}",))


CHANNEL = WebhookChannel
