"""Domain errors, one type per layer, and the process exit codes they map to.

Exit codes are part of the CLI contract (documented in docs/cli.md):

==== =========================================================
code meaning
==== =========================================================
0    success; no finding at or above ``--fail-on``
1    findings at or above ``--fail-on``
2    usage or configuration error (nothing was called, nothing changed), or an
     ``approve``/``reject --namespace`` selection of another size than ``--expect N``
3    the scan is incomplete (a repository or region could not be read)
4    not authorised (approver is not an admin)
5    another run holds the lock
6    AWS/endpoint unreachable or credentials missing
7    apply finished with failed actions
8    the run did its work, but a report reached no one (degraded)
==== =========================================================
"""

from __future__ import annotations

from enum import IntEnum

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


# the code a read is refused with when a Kubernetes API server does not accept the
# context's credentials (401), also loaded afresh (hygiene.collect.workloads.kubernetes)
UNAUTHORIZED = "Unauthorized"


def refused_code(exc: BaseException | None) -> str | None:
    """The AWS error code when ``exc`` (or what it was raised from) is IAM refusing a
    call, else None.

    A botocore ``ClientError`` is read from its ``response``; an error that already
    carries the code of a refusal it reports (``refused_code``: an in-use source's
    failure, apply's in-use re-check) counts as well.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        carried = getattr(exc, "refused_code", None)
        if isinstance(carried, str) and carried:
            return carried
        response = getattr(exc, "response", None)
        if isinstance(response, dict):
            code = str((response.get("Error") or {}).get("Code", ""))
            if code in ACCESS_DENIED:
                return code
        exc = exc.__cause__ or exc.__context__
    return None


class ExitCode(IntEnum):
    OK = 0
    FINDINGS = 1
    USAGE = 2
    INCOMPLETE = 3
    NOT_AUTHORISED = 4
    LOCKED = 5
    UNREACHABLE = 6
    APPLY_FAILED = 7
    DEGRADED = 8


class HygieneError(Exception):
    """Base class: a message a user can act on, and the exit code it maps to."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def lines(self) -> list[str]:
        """What to print, one problem per line (the CLI prints at most 20)."""
        return self.message.splitlines() or [self.message]


class ConfigError(HygieneError):
    """The configuration is missing, malformed or invalid. Nothing was called.

    ``problems`` holds every problem found (each naming its file, line and key), so
    one run shows them all; ``message`` is all of them, one per line.
    """

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems) if problems else [message]
        super().__init__("\n".join(self.problems) if problems else message)

    def lines(self) -> list[str]:
        return list(self.problems)


class CollectError(HygieneError):
    """The registry could not be reached at all (credentials, endpoint)."""

    exit_code = ExitCode.UNREACHABLE


class IncompleteScanError(HygieneError):
    """A scan finished without reading every repository; never feed it to apply."""

    exit_code = ExitCode.INCOMPLETE


class NotAuthorisedError(HygieneError):
    """The caller is not a deployed admin (or owner, to object), or cannot be verified."""

    exit_code = ExitCode.NOT_AUTHORISED


class LockHeldError(HygieneError):
    """Another run (apply, nightly, weekly) already holds the store lock."""

    exit_code = ExitCode.LOCKED


class LockLostError(LockHeldError):
    """This run no longer holds the store lock it took (taken over as stale, or the
    database session holding it dropped): it stops before changing anything more."""


class ApplyError(HygieneError):
    """An apply could not proceed or finished with failed actions."""

    exit_code = ExitCode.APPLY_FAILED


class StoreError(HygieneError):
    """The store (SQLite/PostgreSQL) is unreachable or not migrated."""

    exit_code = ExitCode.USAGE


class LifecycleError(HygieneError):
    """A lifecycle policy (generated, given or current) breaks an ECR constraint, or its
    settings cannot be turned into one. ``problems`` lists every violation found."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems) if problems else [message]
