"""The rules engine and the rule catalogue.

Public API::

    from hygiene.rules import evaluate, filter_exit, RULES
    evaluation = evaluate(inventory, config, now)   # -> Evaluation
    evaluation.findings, evaluation.kept, evaluation.mute_warnings

Rules live by family in ``naming``, ``images``, ``tags``, ``repositories`` and
``compliance``; importing this package registers all of them in :data:`RULES`.

The catalogue (rules, their options and documentation) imports neither numpy nor
pandas: ``hygiene rules`` and the config check need only that. The engine and the
protections (pandas, pyarrow) are imported on first use of the names that need them.
"""

from typing import TYPE_CHECKING, Any

from hygiene.rules import compliance, images, naming, repositories, tags  # noqa: F401  (register)
from hygiene.rules.base import RULES, Option, Rule, Scope
from hygiene.rules.settings import resolve, select_codes, validate_config

if TYPE_CHECKING:
    from hygiene.rules.engine import Evaluation, evaluate, filter_exit


def __getattr__(name: str) -> Any:
    """The engine's names, imported when first asked for (PEP 562)."""
    if name in ("Evaluation", "evaluate", "filter_exit"):
        from hygiene.rules import engine

        value = getattr(engine, name)
    else:
        raise AttributeError(f"module 'hygiene.rules' has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = [
    "RULES",
    "Evaluation",
    "Option",
    "Rule",
    "Scope",
    "evaluate",
    "filter_exit",
    "resolve",
    "select_codes",
    "validate_config",
]
