"""In use on AWS Batch: the images of every ACTIVE job definition.

A job definition is what the next ``SubmitJob`` starts, so each ACTIVE revision counts
(a pipeline may pin ``etl:7`` for months). The image can sit in five places, all read:

* ``containerProperties.image`` (single-container jobs on EC2 or Fargate);
* ``nodeProperties.nodeRangeProperties[].container.image`` (multi-node parallel jobs),
  and the node ranges' ``ecsProperties`` / ``eksProperties`` forms;
* ``ecsProperties.taskProperties[].containers[].image`` (multi-container jobs);
* ``eksProperties.podProperties.containers[]`` and ``initContainers[]`` (jobs on EKS).

API calls: ``ceil(J/100)`` DescribeJobDefinitions for J active job definitions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hygiene.collect.workloads.base import AWS_ERRORS, SourceResult, aws_error
from hygiene.collect.workloads.references import image_uses

SOURCE = "batch"
PAGE = 100


def _ecs_images(properties: Mapping[str, Any] | None) -> Iterator[str | None]:
    for task in (properties or {}).get("taskProperties") or []:
        for container in task.get("containers") or []:
            yield container.get("image")


def _eks_images(properties: Mapping[str, Any] | None) -> Iterator[str | None]:
    pod = (properties or {}).get("podProperties") or {}
    for key in ("containers", "initContainers"):
        for container in pod.get(key) or []:
            yield container.get("image")


def job_definition_images(definition: Mapping[str, Any]) -> list[str]:
    """Every image a job definition names, in order, without repeats."""
    images: list[str | None] = [(definition.get("containerProperties") or {}).get("image")]
    images += _ecs_images(definition.get("ecsProperties"))
    images += _eks_images(definition.get("eksProperties"))
    for node_range in (definition.get("nodeProperties") or {}).get("nodeRangeProperties") or []:
        images.append((node_range.get("container") or {}).get("image"))
        images += _ecs_images(node_range.get("ecsProperties"))
        images += _eks_images(node_range.get("eksProperties"))
    return list(dict.fromkeys(str(i) for i in images if i))


def read_batch(client: Any, *, prefix: str = "") -> SourceResult:
    """Every image an ACTIVE Batch job definition of this account and region names.

    ``where`` is ``<job definition>:<revision>``. Raises
    :class:`~hygiene.collect.workloads.base.SourceError` on anything it cannot read.
    """
    result = SourceResult()
    try:
        pages = client.get_paginator("describe_job_definitions").paginate(
            status="ACTIVE", PaginationConfig={"PageSize": PAGE}
        )
        definitions = [d for page in pages for d in page.get("jobDefinitions", [])]
    except AWS_ERRORS as exc:
        raise aws_error("DescribeJobDefinitions", exc) from exc
    for definition in definitions:
        if definition.get("status", "ACTIVE") != "ACTIVE":
            continue
        where = f"{prefix}{definition.get('jobDefinitionName')}:{definition.get('revision')}"
        for image in job_definition_images(definition):
            result.uses += image_uses(SOURCE, where, image)
    return result
