"""Images an image rule hit but the engine keeps, with every reason why: a protection,
the mutelist, the rule's own keep, or a deletion unit that could not take them."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from hygiene.model import KeptImage
from hygiene.rules.columns import pylist


class KeptImages:
    """Reasons per image row, each reason once, in the order they were found."""

    def __init__(self) -> None:
        self._reasons: dict[int, list[str]] = {}

    def add(self, row: int, reasons: Iterable[str | None]) -> None:
        """Keep image ``row`` (even when no reason is given); record the new reasons."""
        bucket = self._reasons.setdefault(row, [])
        for reason in reasons:
            if reason and reason not in bucket:
                bucket.append(reason)

    def discard(self, rows: np.ndarray) -> None:
        """Forget ``rows``: they are deleted after all (a referrer a rule would have kept
        with its subject goes when the subject goes)."""
        if not self._reasons or not len(rows):
            return
        # only the kept rows among them: a few thousand, where ``rows`` are every member
        # of every deletion unit (a million at a million images)
        kept = np.fromiter(self._reasons, dtype=np.int64, count=len(self._reasons))
        for row in kept[np.isin(kept, rows)].tolist():
            del self._reasons[row]

    def to_list(self, images: pd.DataFrame) -> list[KeptImage]:
        """The kept images of the ``images`` frame, by account, region, repository, digest."""
        if not self._reasons:
            return []
        rows = np.array(sorted(self._reasons), dtype=np.int64)
        sub = images[["account", "region", "repository", "digest", "tags"]].iloc[rows]
        out = [
            KeptImage(
                account=account,
                region=region,
                repository=repository,
                image_digest=digest,
                tags=tuple(tags),
                reasons=tuple(self._reasons[row]),
            )
            for row, account, region, repository, digest, tags in zip(
                rows.tolist(),
                pylist(sub["account"]),
                pylist(sub["region"]),
                pylist(sub["repository"]),
                pylist(sub["digest"]),
                sub["tags"].tolist(),
                strict=True,
            )
        ]
        out.sort(key=lambda k: (k.account, k.region, k.repository, k.image_digest))
        return out
