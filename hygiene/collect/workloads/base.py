"""What every in-use source shares: its result, its failure, and reading AWS errors.

A source either returns every reference it was asked for, or raises
:class:`SourceError`: there is no partial answer. A source that could not be read makes
the run incomplete *for deletion purposes* (no image deletion is proposed or applied in
that run), because an image it would have named may be exactly the one about to go.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import botocore.exceptions

from hygiene.collect.workloads.references import ImageUse
from hygiene.errors import refused_code
from hygiene.inventory import SourceStatus

__all__ = ["AWS_ERRORS", "SourceError", "SourceResult", "SourceStatus", "aws_error", "chunks"]


class SourceError(Exception):
    """A source could not be read completely (after botocore's/urllib3's own retries).

    ``refused_code``: the AWS error code when IAM refused the call (AccessDenied…), or
    ``Forbidden`` when a Kubernetes API server answered 403 (RBAC), which no retry mends
    (:func:`hygiene.errors.refused_code`); None for any other failure.
    """

    def __init__(self, operation: str, message: str, refused_code: str | None = None) -> None:
        super().__init__(f"{operation}: {message}")
        self.operation = operation
        self.message = message
        self.refused_code = refused_code


@dataclass
class SourceResult:
    """References one source found, and the calls it made (operation → count)."""

    uses: list[ImageUse] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)


def aws_error(operation: str, exc: Exception) -> SourceError:
    """A botocore exception as a :class:`SourceError` naming the operation and code."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "ClientError"))
        return SourceError(operation, f"{code}: {error.get('Message', exc)}", refused_code(exc))
    return SourceError(operation, f"{type(exc).__name__}: {exc}")


AWS_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
