"""The mutelist: accepted exceptions that suppress findings until they expire.

An expired entry is not honoured; the engine reports it instead. A muted repository or
namespace finding is kept aside (``Evaluation.muted``); a muted image is kept, with the
reason ``mutelisted``, and never becomes part of a deletion unit.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import numpy as np
import pandas as pd

from hygiene.messages import N_, Message, message
from hygiene.rules.columns import match_globs
from hygiene.rules.settings import MuteRule, RuleSettings

MUTE_ENTRY = N_("mutelist entry %(index)s (%(target)s: %(codes)s)")
MUTE_EXPIRED = N_(
    "%(source)s: %(entry)s expired on %(expires)s; not honoured (reason was: %(reason)s)"
)


def active_mutes(settings: RuleSettings, now: pd.Timestamp) -> tuple[list[Message], list[MuteRule]]:
    """(warnings about expired entries, the entries still in force on ``now``'s date)."""
    today = now.date()
    warnings, active = [], []
    for mute in settings.mutelist:
        if mute.expired(today):
            warnings.append(
                message(
                    MUTE_EXPIRED,
                    source=str(settings.source),
                    entry=message(
                        MUTE_ENTRY,
                        index=mute.index,
                        target=mute.repository + (f"@{mute.digest}" if mute.digest else ""),
                        codes=sorted(mute.codes),
                    ),
                    expires=str(mute.expires),
                    reason=mute.reason,
                )
            )
        else:
            active.append(mute)
    return warnings, active


def is_muted(
    mutes: Sequence[MuteRule], code: str, repository: str | None, namespace: str | None
) -> bool:
    """Whether a repository finding (or, with ``repository`` None, a namespace finding)
    is muted. Entries naming a digest mute images only."""
    for mute in mutes:
        if code not in mute.codes or mute.digest is not None:
            continue
        if repository is not None and fnmatch.fnmatchcase(repository, mute.repository):
            return True
        if (
            repository is None
            and namespace is not None
            and (
                fnmatch.fnmatchcase(namespace, mute.repository)
                or fnmatch.fnmatchcase(namespace + "/", mute.repository)
            )
        ):
            return True
    return False


def muted_images(
    mutes: Sequence[MuteRule], code: str, images: pd.DataFrame, rows: np.ndarray
) -> np.ndarray:
    """Mask over ``rows`` (image rows hit by rule ``code``): which are muted."""
    muted = np.zeros(len(rows), dtype=bool)
    mutes = [m for m in mutes if code in m.codes]
    if not mutes or not len(rows):
        return muted
    repository = images["repository"].to_numpy()[rows]
    digest = images["digest"].to_numpy(dtype=object)[rows]
    for mute in mutes:
        names = pd.Series(pd.unique(repository)).astype(str)
        hit_names = set(names[match_globs(names, [mute.repository])])
        mask = np.isin(repository.astype(str), list(hit_names))
        if mute.digest is not None:
            mask &= match_globs(pd.Series(digest, dtype=str), [mute.digest])
        muted |= mask
    return muted
