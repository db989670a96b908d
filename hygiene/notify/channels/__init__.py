"""Delivery channels: one module each, found by name (see :mod:`.base` for the protocol).

Every module of this package that defines ``CHANNEL`` is a channel; :func:`channel_types`
lists them in name order. Adding a channel is adding a module (and its tests): nothing
else names channels.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from hygiene.notify.channels.base import Audience, Channel, Sent, Target, people_in


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


__all__ = ["Audience", "Channel", "Sent", "Target", "channel_types", "people_in"]
