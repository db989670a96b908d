"""What a (non-editable) install contains: every package, and the report templates.

pyproject.toml lists the packages (it cannot use setuptools' package discovery because
the templates, edited in reports/, are installed as ``hygiene/report/templates``); the
first test fails when a new package directory is missing from that list. The second
builds the wheel, installs it without the checkout on the path and renders a report from
an unrelated working directory.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from datetime import datetime
from pathlib import Path

from hygiene.config import Config
from hygiene.scan import ScanResult, evaluate_rules, plan_all
from hygiene_demo.lab import plan_lab_registry
from tests import builders
from tests.builders import REPO_ROOT, RULES_DIR

TEMPLATES_PACKAGE = "hygiene.report.templates"


def setuptools_config() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def package_dirs(top: str) -> set[str]:
    """Every directory under ``top`` holding a source or data file (and the directories
    between), as package names: setuptools wants each listed, or warns."""
    found = set()
    for path in (REPO_ROOT / top).rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            parts = path.parent.relative_to(REPO_ROOT).parts
            found.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
    return found


def test_every_package_directory_is_listed_in_pyproject() -> None:
    setuptools = setuptools_config()
    listed = set(setuptools["packages"])
    on_disk = package_dirs("hygiene") | package_dirs("hygiene_demo")
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages"
    assert listed - on_disk == {TEMPLATES_PACKAGE}
    assert setuptools["package-dir"] == {TEMPLATES_PACKAGE: "reports"}
    assert setuptools["package-data"][TEMPLATES_PACKAGE] == ["*.html", "*.txt"]


def containerfile_sources() -> list[str]:
    """The files and folders cron/Containerfile copies into /src, the build's source."""
    names = []
    for line in (REPO_ROOT / "cron" / "Containerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and words[-1].startswith("/src/"):
            names += words[1:-1]
    return names


def test_the_container_image_copies_every_source_of_the_build() -> None:
    setuptools = setuptools_config()
    needed = {p.partition(".")[0] for p in setuptools["packages"]}
    needed |= set(setuptools["package-dir"].values()) | {"pyproject.toml", "README.md"}
    assert needed <= set(containerfile_sources())


RENDER = textwrap.dedent(
    """
    import json, sys
    import hygiene
    from hygiene.report.render import templates_dir
    from hygiene.cli import main

    print(json.dumps({"package": hygiene.__file__, "templates": str(templates_dir())}))
    main(sys.argv[1:])
    """
)


# Slow by design (~10-20 s): it builds and installs the wheel, then renders from it.
def test_installed_wheel_renders_reports_from_anywhere(
    tmp_path: Path, config: Config, now: datetime, subprocess_env: dict[str, str]
) -> None:
    # Built from what the container image copies into /src (so the image builds too), in
    # a copy: setuptools would leave build/ in the checkout and reuse it.
    source = tmp_path / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "out")
    for name in containerfile_sources():
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy(REPO_ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), "."],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("registry_hygiene-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "-t", str(site), wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    installed = sorted(p.name for p in (site / "hygiene" / "report" / "templates").iterdir())
    assert installed == sorted(
        p.name for p in (REPO_ROOT / "reports").iterdir() if p.suffix in (".html", ".txt")
    )
    assert (site / "hygiene_demo" / "seed.py").is_file()
    assert not (site / "benchmarks").exists() and not (site / "reports").exists()

    manifest = plan_lab_registry(config.projects, now)
    inventory = builders.seeded_inventory(manifest, run_id="r-installed", now=now)
    evaluation = evaluate_rules(inventory, config, now)
    scan = ScanResult(
        inventory=inventory,
        findings=list(evaluation.findings),
        kept=list(evaluation.kept),
        proposals=plan_all(evaluation, inventory, config, now),
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "scan.json").write_text(json.dumps(scan.to_json()))
    env = {k: v for k, v in subprocess_env.items() if k not in ("PYTHONPATH", "HYGIENE_RULES_DIR")}
    proc = subprocess.run(
        # -P: the working directory is not put on sys.path; the installed copy comes first
        [sys.executable, "-P", "-c", RENDER, "report", "nightly", "--from-json", "scan.json"]
        + ["--rules-dir", str(RULES_DIR), "--out", "out"],
        cwd=elsewhere,
        env={**env, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    where = json.loads(proc.stdout.splitlines()[0])
    assert Path(where["package"]).is_relative_to(site)
    assert Path(where["templates"]) == site / "hygiene" / "report" / "templates"
    (html,) = (elsewhere / "out").glob("2*/nightly.html")  # the run's folder (latest/ too)
    page = html.read_text(encoding="utf-8")
    assert "r-installed" in page and "{%" not in page and "<table" in page
    assert (html.parent / "nightly.txt").is_file()


def _pins(lock: Path) -> dict[str, str]:
    """``name==version`` lines of a uv-compiled lock file, by normalised name."""
    pins = {}
    for line in lock.read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith((" ", "#")):
            pins[name.lower().replace("_", "-")] = version.split()[0]
    return pins


def test_the_runtime_lock_is_the_dev_lock_without_test_and_demo_tools() -> None:
    # The container image and server installs use requirements-runtime.lock: the same
    # versions the tests ran against (`make lock` compiles it constrained by
    # requirements.lock), minus pytest, moto and the rest of the dev and demo extras.
    runtime = _pins(REPO_ROOT / "requirements-runtime.lock")
    dev = _pins(REPO_ROOT / "requirements.lock")
    assert {name: dev.get(name) for name in runtime} == runtime
    assert not {"moto", "pytest", "mypy", "ruff", "hypothesis"} & runtime.keys()
    declared = {
        re.split(r"[<>=\[ ;]", spec, maxsplit=1)[0].lower()
        for spec in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
            "dependencies"
        ]
    }
    assert declared <= runtime.keys()
    assert "requirements-runtime.lock" in containerfile_sources()
