"""Proposals apply keeps for a ``retry`` are not kept in silence.

Apply keeps a proposal (nothing of it deleted, state unchanged, a ``retry`` audit row)
when it cannot re-check it: the repository cannot be read again, an in-use source cannot
be read, ECR throttled, the account's cleaner role cannot be assumed. Two kinds:

* **refused** (:func:`refused_read`): IAM refused a read (AccessDenied), or a Kubernetes
  API server refused the in-use check's (403; or 401 also with the credentials loaded
  afresh). It will not mend itself: the role apply runs with (or the context's RBAC)
  lacks a permission, or the context's credentials are not accepted. The apply run is
  ``failed``, so the admins are alerted (the nightly job, or the hand-run
  ``hygiene apply``, which exits 7).
* **kept again and again** (:func:`kept_in_a_row`): anything else may pass by itself; a
  proposal kept by ``apply.kept_alert_after`` applies in a row (default
  :data:`KEPT_ALERT_AFTER`; each of which tried it and made no progress on it) is
  reported once, by the apply that kept it that many times, not by every later one
  (docs/approvals.md §6).
"""

from __future__ import annotations

from collections.abc import Iterable

from hygiene.errors import ACCESS_DENIED, UNAUTHORIZED, refused_code
from hygiene.store import Store
from hygiene.store.notices import GRACE_STARTED

__all__ = [
    "ACCESS_DENIED",
    "FIX_HINT",
    "IN_USE_HINT",
    "KEPT_ALERT_AFTER",
    "KUBERNETES_AUTH_HINT",
    "KUBERNETES_HINT",
    "in_use_hint",
    "kept_in_a_row",
    "refused_read",
]

# the default of apply.kept_alert_after: applies in a row that kept the same proposal
# before the admins hear about it (three nights of the nightly job)
KEPT_ALERT_AFTER = 3

# outcomes that are progress on a proposal: a run that recorded one of them did not just
# keep it
PROGRESS = frozenset({"deleted", "gone", "skipped", "failed", "applied"})

FIX_HINT = (
    "the role apply runs with lacks a read it needs: compare it with `hygiene iam policy "
    "--role cleaner` (docs/operations.md, Permissions)"
)

IN_USE_HINT = (
    "the role that reads the workloads lacks a read: compare it with `hygiene iam policy "
    "--role cleaner` (this account's workloads), `--role member-scanner` (a registry "
    "account's) or `--role discovery` (a role of in_use.assume_roles); docs/in-use.md"
)

KUBERNETES_HINT = (
    "RBAC does not let the identity of Kubernetes context {context!r} list what the in-use "
    "check reads: it needs `list` on pods, deployments, statefulsets, daemonsets, jobs and "
    "cronjobs at cluster scope or in each of in_use.kubernetes.namespaces (a read-only "
    "ClusterRole); docs/in-use.md"
)
KUBERNETES_AUTH_HINT = (
    "the API server of Kubernetes context {context!r} does not accept its credentials, "
    "also loaded afresh from the kubeconfig: check the kubeconfig's user of that context "
    "(its token or token file, or its exec command such as `aws eks get-token`, run as the "
    "identity apply runs with), whether the token has expired or was revoked, and, on "
    "EKS, that the principal has an access entry on the cluster (or an aws-auth mapping); "
    "docs/in-use.md"
)
KUBERNETES_SOURCE = "kubernetes "  # a Kubernetes source's status name: "kubernetes <context>"


def in_use_hint(refused: Iterable[tuple[str, str, str]]) -> str:
    """What to compare, for the refused in-use sources ``(name, kind, code)``: the IAM
    roles for an AWS source; for a Kubernetes one, the context's RBAC (403, ``Forbidden``)
    or its credentials (401, ``Unauthorized``)."""
    hints: list[str] = []
    for name, kind, code in refused:
        if kind == "kubernetes":
            context = name.removeprefix(KUBERNETES_SOURCE)
            wording = KUBERNETES_AUTH_HINT if code == UNAUTHORIZED else KUBERNETES_HINT
            hint = wording.format(context=context)
        else:
            hint = IN_USE_HINT
        if hint not in hints:
            hints.append(hint)
    return "; ".join(hints) or IN_USE_HINT


def refused_read(exc: BaseException | None) -> str | None:
    """The AWS error code when ``exc`` (or what it was raised from) is IAM refusing a
    call, else None (:func:`hygiene.errors.refused_code`)."""
    return refused_code(exc)


def kept_in_a_row(store: Store, proposal_id: str) -> int:
    """How many apply runs in a row, up to the latest, kept ``proposal_id`` for a retry:
    each recorded a ``retry`` row for it and no progress (:data:`PROGRESS`). Runs that did
    not try it (not eligible, not selected) do not break the count."""
    runs: dict[str | None, set[str]] = {}
    for entry in store.audit_log(proposal_id=proposal_id, include_dry_run=False):
        # a job's notice (grace-started, naming the nightly run) is no apply's try
        if entry.run_id is not None and entry.outcome != GRACE_STARTED:
            runs.setdefault(entry.run_id, set()).add(entry.outcome)
    count = 0
    for outcomes in reversed(list(runs.values())):
        if "retry" not in outcomes or outcomes & PROGRESS:
            break
        count += 1
    return count
