"""hygiene.background: work in a thread (InBackground), a value or exception kept for later
(Outcome), and work followed by a wait that runs however the work ends (then_wait)."""

from __future__ import annotations

import logging
import threading

import pytest

from hygiene.background import InBackground, Outcome, then_wait


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


def test_then_wait_gives_both_values_the_work_first() -> None:
    calls: list[str] = []
    values = then_wait(
        lambda: calls.append("work") or 1, lambda: calls.append("wait") or 2, failed_too="x"
    )
    assert values == (1, 2) and calls == ["work", "wait"]


@pytest.mark.parametrize("error", [RuntimeError("rules broke"), KeyboardInterrupt()])
def test_then_wait_waits_when_the_work_fails_and_raises_the_works_error(
    error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    def work() -> None:
        raise error

    def wait() -> None:
        raise OSError("disk full")

    with caplog.at_level(logging.ERROR), pytest.raises(type(error)) as raised:
        then_wait(work, wait, failed_too="writing failed too")
    assert raised.value is error  # the work's own error, the wait's only logged
    assert [r.getMessage() for r in caplog.records] == ["writing failed too"]
    assert isinstance(caplog.records[0].exc_info[1], OSError)  # type: ignore[index]


def test_then_wait_raises_the_waits_error_after_good_work() -> None:
    def wait() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        then_wait(lambda: 1, wait, failed_too="x")
