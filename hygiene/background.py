"""Work run in a thread of its own while the caller goes on (:class:`InBackground`).

For work that spends its time outside the GIL, such as pyarrow encoding and writing a
parquet file: the nightly job writes the inventory's snapshot this way while the rules
run (:meth:`hygiene.wiring.Wired.start_snapshot`, ``JobDeps.collected``), on the
machine's other core.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
U = TypeVar("U")

log = logging.getLogger(__name__)


class Outcome(Generic[T]):
    """What ``function(*args)`` gave, kept for later: :meth:`result` returns its value
    or raises its exception (the very object). ``catch`` is what is kept; anything else
    propagates at once."""

    def __init__(
        self,
        function: Callable[..., T],
        *args: Any,
        catch: type[BaseException] = Exception,
    ) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        try:
            self._value = function(*args)
        except catch as exc:
            self._error = exc

    def result(self) -> T:
        if self._error is not None:
            raise self._error
        return cast(T, self._value)


class InBackground(Generic[T]):
    """``function(*args)`` run in a thread of its own; :meth:`result` waits for it and
    returns its value, or raises its exception (the very object) in the caller. An
    exception is never lost as long as someone asks for the result."""

    def __init__(self, function: Callable[..., T], *args: Any, name: str = "background") -> None:
        self._outcome: Outcome[T] | None = None

        def run() -> None:  # every exception, KeyboardInterrupt too, is the caller's
            self._outcome = Outcome(function, *args, catch=BaseException)

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def result(self) -> T:
        """Wait for the work; its value, or its exception raised here."""
        self._thread.join()
        assert self._outcome is not None
        return self._outcome.result()


def then_wait(work: Callable[[], T], wait: Callable[[], U], *, failed_too: str) -> tuple[T, U]:
    """``work()``, then ``wait()`` (the end of what runs alongside it): their two values.

    ``wait`` runs however ``work`` ends, so nothing is still running behind its error:
    when ``work`` raises (an interrupt too), ``wait``'s own error is logged with the
    message ``failed_too`` and ``work``'s is raised; otherwise ``wait``'s error is raised.
    Used by the job (evaluate while the snapshot is written) and by ``hygiene scan``."""
    try:
        value = work()
    except BaseException:
        try:
            wait()
        except Exception:
            log.exception(failed_too)
        raise
    return value, wait()
