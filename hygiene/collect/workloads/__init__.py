"""In-use discovery: which images workloads run, so they are never deleted.

One module per source (:mod:`.ecs` with EventBridge scheduled tasks, :mod:`.lambda_`,
:mod:`.batch`, :mod:`.kubernetes`, :mod:`.file`), each turning what its workloads carry
into :class:`ImageUse` records; :func:`discover` runs the configured ones and records how
each went (:class:`SourceStatus`). Docs: docs/in-use.md.
"""

from hygiene.collect.workloads.base import SourceError, SourceResult, SourceStatus
from hygiene.collect.workloads.discover import Discovery, discover
from hygiene.collect.workloads.references import ImageUse, parse_image

__all__ = [
    "Discovery",
    "ImageUse",
    "SourceError",
    "SourceResult",
    "SourceStatus",
    "discover",
    "parse_image",
]
