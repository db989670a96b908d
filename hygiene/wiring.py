"""Wiring of the real job dependencies (:class:`hygiene.jobs.JobDeps`).

``hygiene run``, ``hygiene runs`` and the scheduler's jobs build their dependencies with
:func:`build_job_deps` unless ``$HYGIENE_JOB_DEPS`` names another factory
(``module:function``; the test suite uses in-memory ones).

The agreed library calls are wired here; each stage whose library has not landed yet is
reported at once, before any run is recorded, instead of failing halfway through a run.
"""

from __future__ import annotations

from typing import Any

from hygiene.config import Config
from hygiene.errors import ConfigError
from hygiene.jobs import JobDeps


def _missing(stage: str) -> Any:
    def not_wired(*_args: Any, **_kwargs: Any) -> Any:
        raise ConfigError(f"the {stage} stage is not wired into the jobs yet (hygiene/wiring.py)")

    not_wired.not_wired = stage  # type: ignore[attr-defined]
    return not_wired


def build_job_deps(config: Config) -> JobDeps:
    """The production dependencies for ``config``.

    TODO(lead): wire collect, persist, apply, due_approved, the two report renderers,
    notify and alert once their modules are merged; the expected signatures are in the
    :class:`~hygiene.jobs.JobDeps` docstring.
    """
    try:
        from hygiene.plan import plan  # type: ignore[import-not-found]
        from hygiene.rules import evaluate  # type: ignore[attr-defined]
        from hygiene.store import Store  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ConfigError(f"the job pipeline is not wired yet: {exc}") from exc
    deps = JobDeps(
        store=Store(config.policy.store.url),
        collect=_missing("collect"),
        evaluate=evaluate,
        plan=plan,
        persist=_missing("persist"),
        apply=_missing("apply"),
        due_approved=_missing("due_approved"),
        render_admin_report=_missing("render_admin_report"),
        render_owner_report=_missing("render_owner_report"),
        notify=_missing("notify"),
        alert=_missing("alert"),
    )
    missing = [name for name, value in vars(deps).items() if hasattr(value, "not_wired")]
    if missing:
        raise ConfigError(f"the job pipeline is not wired yet: {', '.join(missing)}")
    return deps
