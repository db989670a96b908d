"""Notifications: deliver rendered reports by e-mail (SMTP or SES) and Slack.

Transports are built from config or passed in (tests, SES client); every delivery ends
in a :class:`DeliveryResult`; nothing here raises into the scan.
"""

from hygiene.notify.deliver import (
    DeliveryResult,
    Publication,
    audience,
    deliver_all,
    deliver_report,
    email_transport,
    publish,
)
from hygiene.notify.email import (
    DeliveryError,
    SesTransport,
    SmtpCredentials,
    SmtpTransport,
    build_email,
    smtp_credentials,
)
from hygiene.notify.slack import SlackNotifier, slack_blocks

__all__ = [
    "DeliveryError",
    "DeliveryResult",
    "Publication",
    "SesTransport",
    "SlackNotifier",
    "SmtpCredentials",
    "SmtpTransport",
    "audience",
    "build_email",
    "deliver_all",
    "deliver_report",
    "email_transport",
    "publish",
    "slack_blocks",
    "smtp_credentials",
]
