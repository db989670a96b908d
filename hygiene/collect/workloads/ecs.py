"""In use on Amazon ECS: services, their deployments, running tasks and scheduled tasks.

What counts, per cluster of one account and region:

* every **running or pending task** (``ListTasks desiredStatus=RUNNING``): each
  container's ``image`` and ``imageDigest`` — the digest the task actually pulled, which
  still names the running image after its tag has moved;
* every **service** that is not ``INACTIVE``: the task definition of each deployment that
  is still ``PRIMARY`` or ``ACTIVE`` (a rolling deployment runs two), and of each task set
  (external and CodeDeploy controllers). A service scaled to zero still counts: scaling
  it up needs its image;
* every **scheduled task**: EventBridge rules whose target is the cluster
  (``ListRuleNamesByTarget`` on every event bus) name a task definition in
  ``EcsParameters.TaskDefinitionArn`` (a family without revision means its latest
  ``ACTIVE`` revision, as RunTask resolves it);
* the images of those task definitions (``DescribeTaskDefinition``, once each).

API calls, for C clusters, S services, T running tasks, B event buses, R rules targeting
a cluster and D distinct task definitions: ``ceil(C/100)`` ListClusters,
``ceil(S/100)`` ListServices and ``ceil(S/10)`` DescribeServices per cluster,
``ceil(T/100)`` ListTasks and DescribeTasks per cluster, ``ceil(B/100)`` ListEventBuses,
``B`` ListRuleNamesByTarget per cluster, one ListTargetsByRule per rule, and ``D``
DescribeTaskDefinition. ``running_only`` (apply's re-read right before deleting) makes
only ListClusters, ListTasks and DescribeTasks calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import botocore.exceptions

from hygiene.collect.workloads.base import AWS_ERRORS, SourceError, SourceResult, aws_error, chunks
from hygiene.collect.workloads.references import ImageUse, image_uses

SOURCE = "ecs"
PAGE = 100
DESCRIBE_SERVICES_MAX = 10  # DescribeServices takes at most 10 services per call
DESCRIBE_TASKS_MAX = 100
LIVE_DEPLOYMENTS = frozenset({"PRIMARY", "ACTIVE"})
LIVE_TASK_SETS = frozenset({"PRIMARY", "ACTIVE"})


def _paginate(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    try:
        for page in client.get_paginator(operation).paginate(**kwargs):
            yield from page.get(key, [])
    except AWS_ERRORS as exc:
        raise aws_error(_operation_name(client, operation), exc) from exc


def _operation_name(client: Any, method: str) -> str:
    return str(client.meta.method_to_api_mapping.get(method, method))


def _call(client: Any, method: str, **kwargs: Any) -> dict[str, Any]:
    try:
        return dict(getattr(client, method)(**kwargs))
    except AWS_ERRORS as exc:
        raise aws_error(_operation_name(client, method), exc) from exc


def _name(arn: str) -> str:
    """``arn:aws:ecs:…:cluster/prod`` → ``prod``; ``…:service/prod/api`` → ``api``."""
    return arn.rsplit("/", 1)[-1]


def _check_failures(operation: str, failures: Iterable[dict[str, Any]]) -> None:
    """``MISSING`` means the task or service went away between list and describe (fine:
    it no longer runs anything); any other failure means we do not know what runs."""
    other = [f for f in failures if f.get("reason") != "MISSING"]
    if other:
        first = other[0]
        raise SourceError(
            operation, f"{len(other)} failure(s), e.g. {first.get('arn')}: {first.get('reason')}"
        )


def running_tasks(ecs: Any, cluster_arn: str, prefix: str) -> list[ImageUse]:
    """Images of the cluster's running and pending tasks (``running=True``)."""
    cluster = _name(cluster_arn)
    arns = list(
        _paginate(
            ecs,
            "list_tasks",
            "taskArns",
            cluster=cluster_arn,
            desiredStatus="RUNNING",
            PaginationConfig={"PageSize": PAGE},
        )
    )
    uses: list[ImageUse] = []
    for batch in chunks(arns, DESCRIBE_TASKS_MAX):
        response = _call(ecs, "describe_tasks", cluster=cluster_arn, tasks=batch)
        _check_failures("DescribeTasks", response.get("failures", []))
        for task in response.get("tasks", []):
            group = str(task.get("group") or "")
            if group.startswith("service:"):
                where = f"{prefix}{cluster}/service/{group[len('service:') :]}"
            else:
                where = f"{prefix}{cluster}/task/{_name(str(task.get('taskDefinitionArn', '')))}"
            for container in task.get("containers", []):
                uses += image_uses(
                    SOURCE,
                    where,
                    container.get("image"),
                    digest=container.get("imageDigest"),
                    running=True,
                )
    return uses


def service_task_definitions(ecs: Any, cluster_arn: str, prefix: str) -> dict[str, set[str]]:
    """Task definition ARN → where, for every live deployment and task set."""
    cluster = _name(cluster_arn)
    arns = list(
        _paginate(
            ecs,
            "list_services",
            "serviceArns",
            cluster=cluster_arn,
            PaginationConfig={"PageSize": PAGE},
        )
    )
    found: dict[str, set[str]] = {}
    for batch in chunks(arns, DESCRIBE_SERVICES_MAX):
        response = _call(ecs, "describe_services", cluster=cluster_arn, services=batch)
        _check_failures("DescribeServices", response.get("failures", []))
        for service in response.get("services", []):
            if service.get("status") == "INACTIVE":
                continue  # deleted; nothing will start from it again
            where = f"{prefix}{cluster}/service/{service.get('serviceName')}"
            definitions = [service.get("taskDefinition")]
            definitions += [
                d.get("taskDefinition")
                for d in service.get("deployments", [])
                if d.get("status") in LIVE_DEPLOYMENTS
            ]
            definitions += [
                s.get("taskDefinition")
                for s in service.get("taskSets", [])
                if s.get("status") in LIVE_TASK_SETS
            ]
            for arn in definitions:
                if arn:
                    found.setdefault(str(arn), set()).add(where)
    return found


def event_buses(events: Any) -> list[str]:
    """Names of every event bus (ListEventBuses has no botocore paginator)."""
    names: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Limit": PAGE}
        if token:
            kwargs["NextToken"] = token
        response = _call(events, "list_event_buses", **kwargs)
        names += [str(b["Name"]) for b in response.get("EventBuses", [])]
        token = response.get("NextToken")
        if not token:
            return names


def scheduled_task_definitions(
    events: Any, cluster_arn: str, buses: list[str], prefix: str
) -> dict[str, set[str]]:
    """Task definition ARN (or family ARN) → where, for EventBridge rules targeting the
    cluster on any bus."""
    cluster = _name(cluster_arn)
    found: dict[str, set[str]] = {}
    for bus in buses:
        rules = _paginate(
            events,
            "list_rule_names_by_target",
            "RuleNames",
            TargetArn=cluster_arn,
            EventBusName=bus,
            PaginationConfig={"PageSize": PAGE},
        )
        for rule in list(rules):
            label = rule if bus == "default" else f"{bus}/{rule}"
            targets = _paginate(
                events,
                "list_targets_by_rule",
                "Targets",
                Rule=rule,
                EventBusName=bus,
                PaginationConfig={"PageSize": PAGE},
            )
            for target in targets:
                definition = (target.get("EcsParameters") or {}).get("TaskDefinitionArn")
                if target.get("Arn") == cluster_arn and definition:
                    found.setdefault(str(definition), set()).add(f"{prefix}{cluster}/rule/{label}")
    return found


def task_definition_images(ecs: Any, arn: str) -> list[str] | None:
    """Images of a task definition's containers; None when it does not exist (a rule may
    name a family that was deleted: it cannot start anything)."""
    try:
        response = ecs.describe_task_definition(taskDefinition=arn)
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ClientException" and "Unable to describe task definition" in str(
            error.get("Message", "")
        ):
            return None
        raise aws_error("DescribeTaskDefinition", exc) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise aws_error("DescribeTaskDefinition", exc) from exc
    containers = response.get("taskDefinition", {}).get("containerDefinitions", [])
    return [str(c["image"]) for c in containers if c.get("image")]


def read_ecs(
    ecs: Any, events: Any | None, *, prefix: str = "", running_only: bool = False
) -> SourceResult:
    """Every image an ECS workload of this account and region uses (see module docs).

    ``events`` is an EventBridge client (None: scheduled tasks are not read).
    ``prefix`` goes before every ``where`` (``<account>/`` for another account).
    Raises :class:`SourceError` on anything it cannot read.
    """
    result = SourceResult()
    clusters = list(
        _paginate(ecs, "list_clusters", "clusterArns", PaginationConfig={"PageSize": PAGE})
    )
    buses = event_buses(events) if events is not None and clusters and not running_only else []
    definitions: dict[str, set[str]] = {}
    for cluster_arn in clusters:
        result.uses += running_tasks(ecs, cluster_arn, prefix)
        if running_only:
            continue
        found = [service_task_definitions(ecs, cluster_arn, prefix)]
        if events is not None:
            found.append(scheduled_task_definitions(events, cluster_arn, buses, prefix))
        for mapping in found:
            for arn, wheres in mapping.items():
                definitions.setdefault(arn, set()).update(wheres)
    for arn, wheres in sorted(definitions.items()):
        images = task_definition_images(ecs, arn) or []
        for where in sorted(wheres):
            for image in images:
                result.uses += image_uses(SOURCE, where, image)
    return result
