"""The demo's mail server: an outbox directory standing in for the owners' mailboxes.

The demo's projects and owners are made up, so its reports cannot reach anyone; yet a
grace period starts only when a notice reached a person. The demo therefore switches
e-mail on and hands each message to :class:`Outbox`, which writes it as an ``.eml`` file
(readable with any mail client) and reports it sent: the production delivery, audit and
grace code runs unchanged, and the file is what the owner would have received.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from hygiene.notify.channels.email import recipients_of


@dataclass
class Outbox:
    """An e-mail transport (:class:`hygiene.notify.channels.email.EmailTransport`) into
    files; every recipient counts as accepted."""

    directory: Path
    name: str = "outbox"
    sent: list[Path] = field(default_factory=list)

    def send(self, message: EmailMessage) -> list[str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        subject = re.sub(r"[^A-Za-z0-9._-]+", "-", str(message["Subject"] or "report"))[:80]
        path = self.directory / f"{len(self.sent) + 1:03d}-{subject.strip('-')}.eml"
        path.write_bytes(bytes(message))
        self.sent.append(path)
        return recipients_of(message)
