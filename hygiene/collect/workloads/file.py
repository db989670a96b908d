"""In use according to a file of image references (``protections.in_use_images_file``).

For workloads no other source reads (a VM's compose file, another team's cluster):
one image reference per whitespace-separated word, ``#`` starts a comment to the end of
the line, e.g. the output of ``kubectl get pods -A -o jsonpath='{..image}'``. Besides
full ECR references, the short form ``repository[:tag][@digest]`` means "this registry"
(any account and region the scan reads). Other registries' images are ignored.
"""

from __future__ import annotations

from pathlib import Path

from hygiene.collect.workloads.base import SourceError, SourceResult
from hygiene.collect.workloads.references import ImageUse, parse_image

SOURCE = "file"


def read_file(path: Path) -> SourceResult:
    """The references in ``path``; ``where`` is ``<file name>:<line>``.

    Raises :class:`~hygiene.collect.workloads.base.SourceError` when it cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SourceError("read", f"{path}: {reason}") from exc
    result = SourceResult()
    for number, line in enumerate(text.splitlines(), start=1):
        for word in line.split("#", 1)[0].split():
            parsed = parse_image(word, require_registry=False)
            if parsed is None:
                continue
            result.uses.append(
                ImageUse(
                    source=SOURCE,
                    where=f"{path.name}:{number}",
                    repository=parsed.repository,
                    tag=parsed.tag,
                    digest=parsed.digest,
                    account=parsed.account,
                    region=parsed.region,
                )
            )
    return result
