"""Apply's last look at the workloads: is an image about to be deleted in use now?

Proposals wait for approval and a grace period while workloads change (a rollback, a
scale-out, a new pod). Before the first image deletion of an apply run every configured
in-use source is read again; before each later delete-images proposal, if more than
``in_use.recheck_seconds`` have passed, the fast-changing part is read again (ECS running
tasks, Kubernetes pods, the in-use file). An image a workload names is skipped with the
reason, and its whole unit with it (:func:`hygiene.apply.images.apply_images`).

If a source cannot be read, :class:`InUseUnknownError` is raised and nothing of that
proposal is deleted: it stays approved for the next apply, and nothing else of the run is
deleted either (the check fails fast once a read failed). When IAM refused the read
(AccessDenied), or a Kubernetes API server answered 403 (RBAC) or 401 also with the
credentials loaded afresh (authentication), the error carries its code
(``refused_code``): apply then fails the run and alerts, as for a refused re-check read
(:mod:`hygiene.apply.retries`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hygiene.collect.workloads import Discovery, ImageUse

Reader = Callable[[bool], "Discovery"]
"""``read(running_only)`` → a :class:`~hygiene.collect.workloads.Discovery`."""


class InUseUnknownError(Exception):
    """An in-use source could not be read right before deleting; ``refused_code`` is the
    AWS error code when IAM refused the read, ``Forbidden`` when a Kubernetes API server
    did (403, RBAC), ``Unauthorized`` when it did not accept the context's credentials
    (401, also loaded afresh); None: any other failure. ``refused`` names each refused
    source, its kind (``ecs``, ``kubernetes`` …) and its code, for the hint
    (``retries.in_use_hint``)."""

    def __init__(
        self,
        message: str,
        refused_code: str | None = None,
        refused: tuple[tuple[str, str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.refused_code = refused_code
        self.refused = refused


@dataclass
class _Index:
    by_digest: dict[tuple[str, str], list[ImageUse]] = field(default_factory=dict)
    by_tag: dict[tuple[str, str], list[ImageUse]] = field(default_factory=dict)

    @classmethod
    def of(cls, uses: Iterable[ImageUse]) -> _Index:
        index = cls()
        for use in uses:
            if use.digest:
                index.by_digest.setdefault((use.repository, use.digest), []).append(use)
            if use.tag:
                index.by_tag.setdefault((use.repository, use.tag), []).append(use)
        return index


def _same_registry(use: ImageUse, account: str, region: str) -> bool:
    return (use.account is None or use.account == account) and (
        use.region is None or use.region == region
    )


@dataclass
class InUseCheck:
    """What runs now, read lazily and refreshed as apply goes (see module docstring)."""

    read: Reader
    recheck_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    reads: int = 0  # how many times the sources were read (full or fast)
    _slow: list[ImageUse] = field(default_factory=list)
    _fast: list[ImageUse] = field(default_factory=list)
    _read_at: float | None = None
    _index: _Index | None = None
    _failure: InUseUnknownError | None = None

    def _load(self, running_only: bool) -> list[ImageUse]:
        if self._failure is not None:  # failed once this run: fail fast, delete nothing
            raise self._copy(self._failure)
        discovery = self.read(running_only)
        self.reads += 1
        if not discovery.complete:
            failed = "; ".join(f"{s.name}: {s.detail}" for s in discovery.failed)
            refused = [s for s in discovery.failed if s.name in discovery.refused]
            self._failure = InUseUnknownError(
                f"in-use source(s) could not be read: {failed}",
                discovery.refused[refused[0].name] if refused else None,
                tuple((s.name, s.source, discovery.refused[s.name]) for s in refused),
            )
            raise self._copy(self._failure)
        return list(discovery.uses)

    @staticmethod
    def _copy(failure: InUseUnknownError) -> InUseUnknownError:
        return InUseUnknownError(str(failure), failure.refused_code, failure.refused)

    def refresh(self) -> None:
        """Read what is needed now: everything the first time, the fast part when stale."""
        now = self.clock()
        if self._read_at is None:
            uses = self._load(False)
            self._slow = [u for u in uses if not u.running and u.source != "file"]
            self._fast = [u for u in uses if u.running or u.source == "file"]
        elif now - self._read_at > self.recheck_seconds:
            self._fast = self._load(True)
        else:
            return
        self._read_at = now
        self._index = _Index.of([*self._slow, *self._fast])

    def reason(
        self, account: str, region: str, repository: str, digest: str, tags: Iterable[str]
    ) -> str | None:
        """``in-use:<source>:<where>`` of the first workload naming this image, or None.

        ``tags`` are the image's tags *now* (from the live re-read): a workload naming a
        tag protects whatever the tag points to at this moment.
        """
        if self._index is None:
            self.refresh()
        assert self._index is not None
        found = [
            u
            for u in self._index.by_digest.get((repository, digest), [])
            if _same_registry(u, account, region)
        ]
        for tag in tags:
            found += [
                u
                for u in self._index.by_tag.get((repository, tag), [])
                if _same_registry(u, account, region)
            ]
        if not found:
            return None
        return sorted(u.reason for u in found)[0]
