"""Delivery channels: one module each, found by name (see :mod:`.base` for the protocol).

Every module of this package that defines ``CHANNEL`` is a channel; :func:`channel_types`
lists them in name order. Adding a channel is adding a module (and its tests): nothing
else names channels.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import TYPE_CHECKING

from hygiene.errors import ConfigError
from hygiene.notify.channels.base import Audience, Channel, Sent, Target, people_in

if TYPE_CHECKING:
    from hygiene.config import Config


@functools.cache
def channel_types() -> tuple[type[Channel], ...]:
    """The channel classes of this package, by name."""
    found: list[type[Channel]] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        channel = getattr(module, "CHANNEL", None)
        if channel is not None:
            found.append(channel)
    return tuple(sorted(found, key=lambda c: c.name))


def validate_channel_settings(config: Config) -> None:
    """A :func:`hygiene.config.load_config` check: every ``notify.channels`` entry names a
    channel, and the channels that check their own settings accept theirs."""
    known = {channel.name: channel for channel in channel_types()}
    for name in config.policy.notify.channels:
        if name not in known:
            raise ConfigError(
                f"notify.channels.{name}: no such channel (known: {', '.join(sorted(known))})"
            )
        check = getattr(known[name], "check_settings", None)
        if check is not None:
            check(config.policy.notify)


__all__ = [
    "Audience",
    "Channel",
    "Sent",
    "Target",
    "channel_types",
    "people_in",
    "validate_channel_settings",
]
