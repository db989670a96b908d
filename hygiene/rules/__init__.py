"""The rules engine and the rule catalogue.

Public API::

    from hygiene.rules import evaluate, filter_exit, RULES
    evaluation = evaluate(inventory, config, now)   # -> Evaluation
    evaluation.findings, evaluation.kept, evaluation.mute_warnings

Rules live by family in ``naming``, ``images``, ``tags``, ``repositories`` and
``compliance``; importing this package registers all of them in :data:`RULES`.
"""

from hygiene.rules import compliance, images, naming, repositories, tags  # noqa: F401  (register)
from hygiene.rules.base import RULES, Option, Rule, Scope
from hygiene.rules.engine import Evaluation, evaluate, filter_exit
from hygiene.rules.settings import resolve, select_codes, validate_config

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
