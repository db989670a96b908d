"""In use on AWS Lambda: container-image functions, every published version and alias.

A published version is immutable and keeps running the image digest it was published
with, long after ``$LATEST`` moved on; an alias (``live``) may point at an old version,
or split traffic between two (``RoutingConfig.AdditionalVersionWeights``). So every
version of every ``PackageType=Image`` function counts, not only ``$LATEST``:
``Code.ResolvedImageUri`` is the digest the version runs, ``Code.ImageUri`` the tag it
was deployed from.

API calls, for F functions (all package types) with V versions in all and I image
functions with Vi versions and A aliases: ``ceil((F+V)/50)`` ListFunctions
(``FunctionVersion=ALL`` lists ``$LATEST`` and every published version), ``ceil(A/50)``
ListAliases per image function, and one GetFunction per image version (``Vi`` + I):
ListFunctions does not return the image URI.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import botocore.exceptions

from hygiene.collect.workloads.base import AWS_ERRORS, SourceResult, aws_error
from hygiene.collect.workloads.references import image_uses

SOURCE = "lambda"
PAGE = 50  # ListFunctions and ListAliases return at most 50 items per page


def _paginate(client: Any, operation: str, name: str, key: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    try:
        for page in client.get_paginator(operation).paginate(**kwargs):
            items.extend(page.get(key, []))
    except AWS_ERRORS as exc:
        raise aws_error(name, exc) from exc
    return items


def aliases_by_version(client: Any, function: str) -> dict[str, list[str]]:
    """Version → the aliases that route to it (primary or weighted), sorted."""
    aliases = _paginate(
        client,
        "list_aliases",
        "ListAliases",
        "Aliases",
        FunctionName=function,
        PaginationConfig={"PageSize": PAGE},
    )
    out: dict[str, list[str]] = defaultdict(list)
    for alias in aliases:
        versions = {str(alias.get("FunctionVersion"))}
        routing = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        versions.update(str(v) for v in routing)
        for version in versions:
            out[version].append(str(alias["Name"]))
    return {version: sorted(names) for version, names in out.items()}


def function_image(client: Any, function: str, version: str) -> dict[str, Any] | None:
    """``Code`` of one version (ImageUri, ResolvedImageUri); None if it is gone."""
    try:
        response = client.get_function(FunctionName=function, Qualifier=version)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None  # deleted between ListFunctions and now: runs nothing
        raise aws_error("GetFunction", exc) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise aws_error("GetFunction", exc) from exc
    return dict(response.get("Code") or {})


def read_lambda(client: Any, *, prefix: str = "") -> SourceResult:
    """Every image a Lambda function version of this account and region runs.

    ``where`` is ``<function>:<alias>`` for each alias routing to the version, else
    ``<function>:<version>`` (``$LATEST`` included). Raises
    :class:`~hygiene.collect.workloads.base.SourceError` on anything it cannot read.
    """
    result = SourceResult()
    configurations = _paginate(
        client,
        "list_functions",
        "ListFunctions",
        "Functions",
        FunctionVersion="ALL",
        PaginationConfig={"PageSize": PAGE},
    )
    versions: dict[str, list[str]] = defaultdict(list)
    for configuration in configurations:
        if configuration.get("PackageType") == "Image":
            versions[str(configuration["FunctionName"])].append(str(configuration["Version"]))
    for function in sorted(versions):
        aliases = aliases_by_version(client, function)
        for version in sorted(set(versions[function])):
            code = function_image(client, function, version)
            if code is None:
                continue
            labels = aliases.get(version) or [version]
            for label in labels:
                where = f"{prefix}{function}:{label}"
                result.uses += image_uses(SOURCE, where, code.get("ImageUri"))
                result.uses += image_uses(SOURCE, where, code.get("ResolvedImageUri"))
    return result
