"""Configuration checks that belong to other packages, for :func:`hygiene.config.load_config`.

The configuration does not import the packages that interpret parts of it (the rules, the
channels); their checks are passed in when the configuration is loaded. This module
keeps the channels' check light: the channels are imported only when
``notify.channels`` names some.
"""

from __future__ import annotations

from hygiene.config import Config


def check_channels(config: Config) -> None:
    """``notify.channels``: each entry names a channel, which checks its own settings."""
    if config.policy.notify.channels:
        from hygiene.notify.channels import validate_channel_settings

        validate_channel_settings(config)
