"""The two test lanes (tests/conftest.py): pure tests start nothing; the fixtures that
start servers or processes put a test in the integration lane."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from hypothesis import settings

from tests import conftest
from tests.builders import REPO_ROOT
from tests.conftest import INTEGRATION_FIXTURES, examples


def test_a_pure_test_cannot_start_a_process_or_a_server() -> None:
    with pytest.raises(RuntimeError, match="not marked 'integration' tried to start a process"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # binding (to find a free port) is allowed…
        with pytest.raises(RuntimeError, match="listen on a socket"):
            sock.listen()  # …serving is not


def test_a_fixture_that_starts_something_marks_the_test(
    request: pytest.FixtureRequest, subprocess_env: dict[str, str]
) -> None:
    assert request.node.get_closest_marker("integration") is not None
    assert subprocess_env["PYTHONPATH"] == str(REPO_ROOT)


def test_every_integration_fixture_is_defined_in_the_root_conftest() -> None:
    """A renamed fixture would silently leave the tests that use it in the fast lane."""
    missing = {name for name in INTEGRATION_FIXTURES if not callable(getattr(conftest, name, None))}
    assert not missing


def test_property_tests_run_a_tenth_of_their_examples_in_the_fast_lane() -> None:
    current = settings.get_current_profile_name()
    try:
        settings.load_profile("default")
        assert (examples(120), examples(40)) == (120, 40)
        settings.load_profile("fast")
        assert (examples(120), examples(40)) == (12, 10)
    finally:
        settings.load_profile(current)
