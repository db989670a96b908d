"""No module over 600 lines: a module that grows past it mixes concerns; split it by
concern (as plan/planscope, config/configbase/configlifecycle, jobs/jobtypes,
report render/exports and views/contexts were)."""

from __future__ import annotations

from tests.builders import REPO_ROOT

LIMIT = 600
PACKAGES = ("hygiene", "hygiene_demo", "benchmarks")


def test_no_module_is_over_600_lines() -> None:
    sizes = {
        path.relative_to(REPO_ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for package in PACKAGES
        for path in (REPO_ROOT / package).rglob("*.py")
    }
    assert len(sizes) > 100  # the walk found the packages
    assert {name: n for name, n in sizes.items() if n > LIMIT} == {}
