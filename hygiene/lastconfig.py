"""The daemon's last configuration that loaded: the channel left when the rules break.

``hygiene schedule`` reloads the rules before every scheduled run, so an edit needs no
restart; but a configuration broken after deployment (a bad option, a YAML error, an
admin entry outside the registry's accounts) stops every run, and its own ``notify``
settings cannot be trusted to say so. The daemon remembers the last configuration that
loaded (at its start, and at each run that loaded) and tells the admins through *its*
channels that the run did not start and why (docs/operations.md). One-shot runs
(``hygiene run``) exit 2 instead: whoever started them sees it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hygiene.config import Config
from hygiene.jobtypes import RunAlert

log = logging.getLogger(__name__)


@dataclass
class LastLoaded:
    """The last configuration this process loaded, and when."""

    config: Config | None = None
    at: datetime | None = None
    _mutex: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def remember(self, config: Config) -> None:
        with self._mutex:
            self.config, self.at = config, datetime.now(UTC)

    def get(self) -> tuple[Config | None, datetime | None]:
        with self._mutex:
            return self.config, self.at


LAST = LastLoaded()


def alert_broken(kind: str, rules_dir: str, why: str, deps_for: Callable[[Config], Any]) -> None:
    """Tell the admins, through the channels of :data:`LAST`'s configuration
    (``deps_for(config).alert``), that the scheduled ``kind`` run did not start because
    the configuration in ``rules_dir`` does not load (``why``). Never raises."""
    config, at = LAST.get()
    if config is None:
        log.error(
            "scheduled %s run not started, and no configuration loaded before to alert the "
            "admins through",
            kind,
        )
        return
    deps = None
    try:
        deps = deps_for(config)
        now = deps.clock()
        summary = (
            f"The scheduled {kind} run did not start: the configuration in {rules_dir} does "
            "not load. Nothing was scanned, stored, applied or reported, and every scheduled "
            "run stops the same way until it is mended (`hygiene config check`). This alert "
            "was sent through the channels of the last configuration this daemon loaded "
            f"({at:%Y-%m-%d %H:%M} UTC)."
        )
        deps.alert(RunAlert.not_started(kind, now, why, summary, "configuration broken"))
    except Exception:
        log.exception("could not send the alert for the %s run not started", kind)
    finally:
        close = getattr(getattr(deps, "store", None), "close", None)
        if callable(close):
            try:
                close()  # the store the wiring opened for this alert alone
            except Exception:
                log.exception("could not close the store after the alert")
