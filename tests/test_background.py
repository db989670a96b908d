"""hygiene.background.InBackground: the value, or the very exception, in the caller."""

from __future__ import annotations

import threading

import pytest

from hygiene.background import InBackground, Outcome


def test_the_work_runs_in_another_thread_and_its_value_is_returned() -> None:
    started = threading.Event()
    release = threading.Event()
    seen: list[str] = []

    def work(a: int, b: int) -> int:
        seen.append(threading.current_thread().name)
        started.set()
        release.wait()
        return a + b

    pending = InBackground(work, 2, 3, name="snapshot")
    started.wait()  # running while the caller goes on
    assert seen == ["snapshot"] and seen[0] != threading.current_thread().name
    release.set()
    assert pending.result() == 5
    assert pending.result() == 5  # asked again: the same


def test_the_works_exception_is_raised_in_the_caller() -> None:
    error = OSError(28, "No space left on device")

    def work() -> None:
        raise error

    pending = InBackground(work)
    with pytest.raises(OSError) as raised:
        pending.result()
    assert raised.value is error


def test_an_interrupt_in_the_work_is_not_swallowed() -> None:
    def work() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        InBackground(work).result()


def test_an_outcome_keeps_the_value_or_the_exception_it_catches() -> None:
    assert Outcome(lambda a, b: a * b, 6, 7).result() == 42
    error = ValueError("a broken rule")

    def broken() -> None:
        raise error

    kept = Outcome(broken)  # not raised yet
    with pytest.raises(ValueError) as raised:
        kept.result()
    assert raised.value is error

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # not an Exception: not kept, raised at once
        Outcome(interrupted)
