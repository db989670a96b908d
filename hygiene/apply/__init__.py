"""Apply: carry out eligible proposals on the registry, never losing anything.

:func:`apply` takes the store's ``apply`` lock, records an ``apply`` run, answers the
intents a killed run left open (:mod:`~hygiene.apply.reconcile`), then carries out every
eligible proposal (:mod:`~hygiene.apply.eligibility`): image deletions
(:mod:`~hygiene.apply.images`) and repository-level changes
(:mod:`~hygiene.apply.repository`), each after re-reading the live registry
(:mod:`~hygiene.apply.registry`); image deletions also ask the workloads again right
before deleting (:mod:`~hygiene.apply.in_use`). :mod:`~hygiene.apply.permissions` lists
the ECR operations each action calls.

Crash safety: an ``intent`` audit row is committed before each write call; outcome rows
point back at it. On start, :func:`reconcile` finds intents without outcomes (a run
killed mid-batch), re-reads their targets and records ``deleted`` (gone now) or
``not-deleted`` (still there; the proposal stays approved and is retried in this same
run). Digests already recorded ``deleted``/``gone`` for a proposal are never sent again.

``dry_run=True`` is the same code with every write (registry and store) left out; the
would-be audit rows come back in :class:`ApplyResult`.

What each action reads from a :class:`~hygiene.model.Proposal` (the contract for
anyone building proposals, e.g. :mod:`hygiene.lifecycle`):

======================== =========================================== ==========================
action                   target                                      evidence (re-checked)
======================== =========================================== ==========================
delete-images            ``digests`` (indexes first)                 ``images`` [{digest, tags,
                                                                     last_pull, is_index …}],
                                                                     ``units`` [[digest …]]
delete-repository        ``repository``                              (repository must be empty)
put-lifecycle-policy     ``policy`` (JSON text; must be the one the  ``current_policy`` (text or
                         deployed configuration generates for the    None): must equal the live
                         repository, which must not opt out now)     policy, else skipped
enable-scan-on-push      ``scan_on_push: true``                      —
set-tag-immutability     ``tag_mutability``, ``exclusions`` [str]    ``tag_mutability``
remove-policy-statement  ``statements`` [statement objects]          ``policy`` (text)
======================== =========================================== ==========================

Policy texts are compared as canonical JSON (key order and whitespace do not matter).
Tag immutability and policy statements change only when the deployed rules, evaluated
on the repository read again, propose the same target now
(:func:`hygiene.apply.recheck.proposed_now`).
"""

from hygiene.apply.context import ApplyResult, ClientFactory, SimulatedCrash
from hygiene.apply.eligibility import eligibility
from hygiene.apply.images import DONE_OUTCOMES, FAILURE_OUTCOMES
from hygiene.apply.in_use import InUseCheck, InUseUnknownError
from hygiene.apply.permissions import PERMISSIONS, required_permissions
from hygiene.apply.reconcile import reconcile
from hygiene.apply.registry import (
    MAX_IDS,
    THROTTLING,
    describe_digests,
    get_manifests,
    repository_links,
)
from hygiene.apply.repository import REPOSITORY_STEPS
from hygiene.apply.retries import KEPT_ALERT_AFTER
from hygiene.apply.run import apply

__all__ = [
    "DONE_OUTCOMES",
    "FAILURE_OUTCOMES",
    "KEPT_ALERT_AFTER",
    "MAX_IDS",
    "PERMISSIONS",
    "REPOSITORY_STEPS",
    "THROTTLING",
    "ApplyResult",
    "ClientFactory",
    "InUseCheck",
    "InUseUnknownError",
    "SimulatedCrash",
    "apply",
    "describe_digests",
    "eligibility",
    "get_manifests",
    "reconcile",
    "repository_links",
    "required_permissions",
]
