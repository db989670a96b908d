"""Notifications: deliver rendered reports on every configured channel.

Channels are one module each in :mod:`hygiene.notify.channels` (e-mail by SMTP or SES,
Slack, chat webhooks for Teams, Mattermost and Google Chat), behind one small protocol;
:mod:`hygiene.notify.deliver` drives them. Every delivery ends in a
:class:`DeliveryResult`; nothing here raises into the scan.
"""

from hygiene.notify.channels import Audience, Channel, Sent, Target, channel_types
from hygiene.notify.channels.email import (
    DeliveryError,
    EmailChannel,
    SesTransport,
    SmtpCredentials,
    SmtpTransport,
    build_email,
    smtp_credentials,
)
from hygiene.notify.channels.slack import SlackChannel, slack_blocks
from hygiene.notify.channels.webhook import WebhookChannel
from hygiene.notify.deliver import (
    DeliveryResult,
    Publication,
    audience,
    build_channels,
    deliver_all,
    deliver_report,
    publish,
    record_deliveries,
)

__all__ = [
    "Audience",
    "Channel",
    "DeliveryError",
    "DeliveryResult",
    "EmailChannel",
    "Publication",
    "Sent",
    "SesTransport",
    "SlackChannel",
    "SmtpCredentials",
    "SmtpTransport",
    "Target",
    "WebhookChannel",
    "audience",
    "build_channels",
    "build_email",
    "channel_types",
    "deliver_all",
    "deliver_report",
    "publish",
    "record_deliveries",
    "slack_blocks",
    "smtp_credentials",
]
