"""The log handler writes to the stderr of the moment, never to a stream since closed."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from hygiene.logs import configure_logging


def test_records_go_to_the_current_stderr_after_it_was_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        first = io.StringIO()
        monkeypatch.setattr(sys, "stderr", first)
        configure_logging()
        first.close()  # an in-process command's captured stderr, closed when it returned
        second = io.StringIO()
        monkeypatch.setattr(sys, "stderr", second)
        logging.getLogger("hygiene.test").warning("trust policy pinned")
        assert "trust policy pinned" in second.getvalue()
        assert "Logging error" not in second.getvalue()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
