"""The channel protocol: how a rendered report reaches people.

A channel is one module in :mod:`hygiene.notify.channels` that defines ``CHANNEL``, a
class with

- ``name``: the channel's name in results, ``deliveries.json`` and the audit log;
- ``from_settings(notify, environ)``: the channel built from ``notify`` in
  ``rules/default.yaml`` and the environment (secrets), or ``None`` when it is switched
  off; a :class:`~hygiene.errors.ConfigError` when it is on but cannot be built (a missing
  token): every report then gets a failed result naming the variable;
- ``targets(report, audience)``: where this report goes on this channel (one
  :class:`Target` per message it will send; none when the channel has nowhere to send
  this report);
- ``send(report, target)``: send it once and say who or what it reached
  (:class:`Sent`); raise on failure (the caller retries and records).

:func:`hygiene.notify.deliver.deliver_report` drives them: it never needs to know a
channel's internals, so adding a channel is adding its module (and its tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from hygiene.config import NotifySettings, Project
    from hygiene.report.render import RenderedReport


@dataclass(frozen=True)
class Audience:
    """Who a report is for, whatever the channel: the nightly report is for the admins;
    a weekly report for its project's owners (admins stand in for an unregistered one)."""

    kind: str  # nightly | weekly
    namespace: str | None
    to: tuple[str, ...]  # e-mail addresses of the people the report is for
    cc: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    project: Project | None = None


@dataclass(frozen=True)
class Target:
    """One message a channel will send: ``address`` is what results and logs show (an
    address list, ``#channel``, ``dm:ana@…``, ``webhook``); ``options`` is for the
    channel itself."""

    address: str
    people: tuple[str, ...] = ()  # whom it is meant to reach, when they are people
    options: Mapping[str, Any] = field(default_factory=dict)


# How a ``reached`` entry says what it is: a person (by e-mail address) or a place.
PERSON_SCHEMES = ("mailto:", "slack-dm:")


@dataclass(frozen=True)
class Sent:
    """What one successful send reached.

    ``reached`` lists each recipient the service accepted, as ``mailto:<address>`` (an
    e-mail the mail server accepted), ``slack-dm:<address>`` (a Slack direct message to
    the user with that e-mail), ``slack:<channel id>`` (a message posted in a channel) or
    ``webhook:<format>`` (an incoming webhook accepted the post). ``note`` says anything
    the reader of the results should know (recipients the server refused).
    """

    reached: tuple[str, ...]
    note: str = ""


def people_in(reached: tuple[str, ...] | list[str]) -> list[str]:
    """The e-mail addresses of the people among ``reached`` (mail and direct messages)."""
    found = []
    for entry in reached:
        for scheme in PERSON_SCHEMES:
            if entry.startswith(scheme):
                found.append(entry[len(scheme) :])
    return found


class Channel(Protocol):
    name: ClassVar[str]

    @classmethod
    def from_settings(
        cls, notify: NotifySettings, environ: Mapping[str, str]
    ) -> Channel | None: ...

    def targets(self, report: RenderedReport, audience: Audience) -> list[Target]: ...

    def send(self, report: RenderedReport, target: Target) -> Sent: ...
