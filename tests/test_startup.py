"""Start-up: a command imports only what it uses.

``hygiene --help`` imports every command module (click needs each command's help), so
those modules import only click and light modules at the top and the library a command
runs inside the command (docs/benchmarks.md, "Start-up"). A child interpreter runs the
command and reports which heavy packages ended up in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import json, sys
    from hygiene.cli import main

    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
    roots = {name.partition(".")[0] for name in sys.modules}
    print("\\n" + json.dumps(sorted(roots)))
    """
)
# What the help of any command must not load: data frames, the store, the scheduler,
# AWS, validation models, templates, translations.
HEAVY = (
    "pandas",
    "numpy",
    "pyarrow",
    "sqlalchemy",
    "alembic",
    "apscheduler",
    "boto3",
    "botocore",
    "pydantic",
    "jinja2",
    "babel",
    "yaml",
)


def _loaded(argv: list[str], env: dict[str, str]) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["scan", "--help"], ["run", "nightly", "--help"], ["report", "--help"]],
    ids=" ".join,
)
def test_help_imports_no_heavy_package(argv: list[str], subprocess_env: dict[str, str]) -> None:
    loaded = _loaded(argv, subprocess_env)
    assert "hygiene" in loaded and "click" in loaded  # the child really ran the CLI
    assert not loaded & set(HEAVY), f"hygiene {' '.join(argv)} imported {loaded & set(HEAVY)}"


def test_rules_command_imports_no_data_frames(subprocess_env: dict[str, str]) -> None:
    """The rule catalogue is light: the checks import numpy and pandas when they run."""
    loaded = _loaded(["rules", "IM002"], subprocess_env)
    assert "pydantic" in loaded  # it did load the configuration
    # nor AWS: regions are checked against botocore's endpoint file, admins entries without
    # the identity module (hygiene.authz imports it on first use)
    assert not loaded & {"pandas", "numpy", "pyarrow", "sqlalchemy", "boto3", "botocore"}
    # the checkout's addresses and schedules are plain ones (hygiene.configtypes): neither
    # email-validator nor APScheduler's parser is needed to check them
    assert not loaded & {"email_validator", "apscheduler", "asyncio"}


MODULES_CHILD = textwrap.dedent(
    """
    import json, sys
    from hygiene.cli import main

    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
    print("\\n" + json.dumps(sorted(m for m in sys.modules if m.startswith("hygiene"))))
    """
)


@pytest.mark.parametrize("argv", [["--help"], ["proposals", "--help"], ["approve", "--help"]])
def test_only_approve_and_reject_import_what_a_decision_needs(
    argv: list[str], subprocess_env: dict[str, str]
) -> None:
    """hygiene.cli.decisions (what a decision selects and prints, and the messages it
    translates) is imported when ``approve`` or ``reject`` runs, not by the help of
    every command (their ``--expect`` option is declared in hygiene.cli.expect)."""
    result = subprocess.run(
        [sys.executable, "-c", MODULES_CHILD, *argv],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=120,
        check=True,
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "hygiene.cli.proposals" in loaded and "hygiene.cli.expect" in loaded
    assert not loaded & {"hygiene.cli.decisions", "hygiene.messages", "hygiene.proposaltext"}


GC_CHILD = textwrap.dedent(
    """
    import gc, sys
    import hygiene.cli.scan as scan
    from hygiene.errors import ConfigError

    def load(rules_dir):
        print("collector on while loading:", gc.isenabled())
        raise ConfigError("stop here")

    scan.load = load
    mode, sys.argv = sys.argv[1], ["hygiene", *sys.argv[2:]]
    from hygiene.cli import main
    try:
        main(None if mode == "process" else sys.argv[1:])
    except SystemExit as exc:
        print("exit", exc.code, "collector on after:", gc.isenabled())
    """
)


@pytest.mark.parametrize("mode", ["process", "in-process"])
def test_a_scan_pauses_the_collector_from_its_start(
    mode: str, subprocess_env: dict[str, str]
) -> None:
    """`hygiene scan` pauses the collector before it imports its libraries and loads the
    configuration, not only once the registry is read (hygiene.gcpause): in its own process
    for good; called in-process, until it returns."""
    result = subprocess.run(
        [sys.executable, "-c", GC_CHILD, mode, "scan", "--region", "us-east-1"],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=120,
        check=False,
    )
    after = mode != "process"
    assert result.stdout.splitlines() == [
        "collector on while loading: False",
        f"exit 2 collector on after: {after}",
    ], result.stderr


def test_report_locales_written_out_for_the_cli_are_the_report_locales() -> None:
    from hygiene.cli.report import LOCALES as CLI_LOCALES
    from hygiene.report.i18n import LOCALES

    assert CLI_LOCALES == LOCALES


WARM_UP_CHILD = textwrap.dedent(
    """
    import sys, threading, time
    from hygiene.scanthreads import warm_up

    first_read = threading.Event()
    thread = warm_up(after=first_read, longest=60)
    time.sleep(0.3)
    before = "pandas" in sys.modules or "pyarrow" in sys.modules
    first_read.set()
    thread.join(60)
    after = all(m in sys.modules for m in ("pyarrow.parquet", "hygiene.rules.engine"))
    from hygiene import findingtext, timetext
    tables = (findingtext._clock_json, timetext._clock, timetext._triples)
    made = [f.cache_info().currsize for f in tables]
    late = warm_up(after=threading.Event(), longest=0.1)  # a first read that takes long
    late.join(10)
    print(before, after, not late.is_alive(), made == [1, 1, 1])
    """
)


def test_the_scans_warm_up_imports_once_the_first_read_is_in(
    subprocess_env: dict[str, str],
) -> None:
    """`hygiene scan` imports the evaluation's libraries while the registry is read, but
    not alongside its first requests: once ``collect`` says the first read is in, or
    after a while when that read takes long. It also makes the time tables the plan and
    the document would make after the last answer."""
    result = subprocess.run(
        [sys.executable, "-c", WARM_UP_CHILD],
        capture_output=True,
        text=True,
        env=subprocess_env,
        check=True,
    )
    assert result.stdout.split() == ["False", "True", "True", "True"]
