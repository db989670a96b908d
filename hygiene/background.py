"""Work run in a thread of its own while the caller goes on (:class:`InBackground`).

For work that spends its time outside the GIL, such as pyarrow encoding and writing a
parquet file: the nightly job writes the inventory's snapshot this way while the rules
run (:meth:`hygiene.wiring.Wired.start_snapshot`, ``JobDeps.collected``), on the
machine's other core.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")


class InBackground(Generic[T]):
    """``function(*args)`` run in a thread of its own; :meth:`result` waits for it and
    returns its value, or raises its exception (the very object) in the caller. An
    exception is never lost as long as someone asks for the result."""

    def __init__(self, function: Callable[..., T], *args: Any, name: str = "background") -> None:
        self._value: T | None = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._value = function(*args)
            except BaseException as exc:  # raised by result()
                self._error = exc

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def result(self) -> T:
        """Wait for the work; its value, or its exception raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return cast(T, self._value)
