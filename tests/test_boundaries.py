"""The production package stands alone: nothing in ``hygiene`` imports moto or the demo.

A production install has no moto (it is the optional ``demo`` extra) and ``hygiene_demo``
is scaffolding for the demo, the benchmarks and the tests. A child interpreter with an
import blocker for both, as if they were not installed, imports every ``hygiene`` module
and runs ``hygiene --help`` and ``hygiene scan --help``; ``hygiene demo`` exits 2 with one
line saying how to install the extra.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from tests.builders import REPO_ROOT

BLOCKER = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys

    BLOCKED = ("moto", "hygiene_demo")
    attempts = []

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                attempts.append(name)
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Blocker())

    import hygiene
    from hygiene.cli import main

    def run(argv):
        try:
            main(argv)
        except SystemExit as exit:
            return exit.code
        return None

    if sys.argv[1] == "demo":
        code = run(["demo"])
        print(json.dumps({"code": code, "attempts": attempts}))
        sys.exit(0)

    # __main__ runs the CLI and migrations.env runs migrations when imported
    skip = {"hygiene.__main__", "hygiene.store.migrations.env"}
    names = [
        m.name for m in pkgutil.walk_packages(hygiene.__path__, "hygiene.") if m.name not in skip
    ]
    for name in names:
        importlib.import_module(name)
    codes = {" ".join(argv): run(argv) for argv in (["--help"], ["scan", "--help"])}
    leaked = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
    print(json.dumps({"modules": names, "codes": codes, "attempts": attempts, "leaked": leaked}))
    """
)


# A child interpreter (~3 s under xdist): only a fresh process shows what an install without
# the extra imports.
def run_blocked(
    mode: str, tmp_path: Path, env: dict[str, str]
) -> tuple[dict, subprocess.CompletedProcess[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKER, mode],
        cwd=tmp_path,  # not the checkout: no ./rules, no ./reports
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc


def test_no_production_module_imports_moto_or_the_demo(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    result, proc = run_blocked("all", tmp_path, subprocess_env)
    assert len(result["modules"]) > 50  # every module, not just the package
    assert {"hygiene.collect.ecr", "hygiene.cli.demo", "hygiene.report.render"} <= set(
        result["modules"]
    )
    assert result["codes"] == {"--help": 0, "scan --help": 0}
    assert "Usage: hygiene scan" in proc.stdout and "demo" in proc.stdout
    assert result["attempts"] == []
    assert result["leaked"] == []


def test_demo_without_the_extra_says_how_to_install_it(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    result, proc = run_blocked("demo", tmp_path, subprocess_env)
    assert result["code"] == 2
    assert result["attempts"] == ["moto"]  # checked before anything else is loaded
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "error: hygiene demo needs the optional 'demo' extra (moto is not installed); "
        "install it with: python -m pip install 'registry-hygiene[demo]'"
    ]


def test_moto_is_only_an_optional_dependency() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("moto")]
    assert project["optional-dependencies"]["demo"] == ["moto[server]>=5.1"]
    assert "registry-hygiene[demo]" in project["optional-dependencies"]["dev"]
