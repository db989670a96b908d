"""Proposals apply keeps for a ``retry`` are not kept in silence.

Apply keeps a proposal (nothing of it deleted, state unchanged, a ``retry`` audit row)
when it cannot re-check it: the repository cannot be read again, an in-use source cannot
be read, ECR throttled, the account's cleaner role cannot be assumed. Two kinds:

* **refused** (:func:`refused_read`): IAM refused a read (AccessDenied). It will not mend
  itself: the role apply runs with lacks a permission. The apply run is ``failed``, so the
  admins are alerted (the nightly job, or the hand-run ``hygiene apply``, which exits 7).
* **kept again and again** (:func:`kept_in_a_row`): anything else may pass by itself; a
  proposal kept by :data:`KEPT_ALERT_AFTER` applies in a row (each of which tried it and
  made no progress on it) is reported once, by the apply that kept it that many times,
  not by every later one (docs/approvals.md §6).
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from hygiene.store import Store

# applies in a row that kept the same proposal before the admins hear about it: three
# nights of the nightly job
KEPT_ALERT_AFTER = 3

# error codes with which AWS refuses a call the caller's IAM policy does not allow
ACCESS_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
    }
)

# outcomes that are progress on a proposal: a run that recorded one of them did not just
# keep it
PROGRESS = frozenset({"deleted", "gone", "skipped", "failed", "applied"})

FIX_HINT = (
    "the role apply runs with lacks a read it needs: compare it with `hygiene iam policy "
    "--role cleaner` (docs/operations.md, Permissions)"
)


def refused_read(exc: BaseException | None) -> str | None:
    """The AWS error code when ``exc`` (or what it was raised from) is IAM refusing a
    call, else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ACCESS_DENIED:
                return code
        exc = exc.__cause__ or exc.__context__
    return None


def kept_in_a_row(store: Store, proposal_id: str) -> int:
    """How many apply runs in a row, up to the latest, kept ``proposal_id`` for a retry:
    each recorded a ``retry`` row for it and no progress (:data:`PROGRESS`). Runs that did
    not try it (not eligible, not selected) do not break the count."""
    runs: dict[str | None, set[str]] = {}
    for entry in store.audit_log(proposal_id=proposal_id, include_dry_run=False):
        if entry.run_id is not None:
            runs.setdefault(entry.run_id, set()).add(entry.outcome)
    count = 0
    for outcomes in reversed(list(runs.values())):
        if "retry" not in outcomes or outcomes & PROGRESS:
            break
        count += 1
    return count
